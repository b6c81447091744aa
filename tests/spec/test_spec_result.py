"""Results of every version: parsing, the conversion matrix, printing."""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import go_dumps
from pycni.spec.result import DNS, Interface, IPConfig, Result, Route, parse_prev_result
from pycni.spec.version import ALL

FAMILY = {v: ("020" if v < "0.3.0" else "040" if v < "1.0.0" else "100") for v in ALL}


def err_of(fn, *args, **kwargs) -> CNIError:
    with pytest.raises(CNIError) as info:
        fn(*args, **kwargs)
    return info.value


# -- representative results of each family, and what each prints as --------------------

DNS_FULL = {
    "nameservers": ["10.1.0.1", "2001:db8::1"],
    "domain": "example.com",
    "search": ["example.com", "corp"],
    "options": ["ndots:5"],
}


def src_100(version: str) -> dict:
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": "cni0", "mac": "00:11:22:33:44:55"},
            {
                "name": "eth0",
                "mac": "0a:58:0a:01:00:05",
                "mtu": 1450,
                "sandbox": "/var/run/netns/blue",
                "socketPath": "/run/vhost.sock",
                "pciID": "0000:03:00.1",
            },
        ],
        "ips": [
            {"interface": 1, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
            {"interface": 0, "address": "2001:db8::5/64", "gateway": "2001:db8::1"},
            {"interface": 1, "address": "10.2.0.5/16"},
        ],
        "routes": [
            {
                "dst": "0.0.0.0/0",
                "gw": "10.1.0.1",
                "mtu": 1400,
                "advmss": 1360,
                "priority": 10,
                "table": 0,
                "scope": 0,
            },
            {"dst": "::/0"},
            {"dst": "192.168.0.0/24", "gw": "10.2.0.1", "table": 100, "scope": 253},
        ],
        "dns": DNS_FULL,
    }


def expect_from_100(target: str) -> dict:
    family = FAMILY[target]
    if family == "100":
        return src_100(target)
    if family == "040":
        return {
            "cniVersion": target,
            "interfaces": [
                {"name": "cni0", "mac": "00:11:22:33:44:55"},
                {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/blue"},
            ],
            "ips": [
                {"version": "4", "interface": 1, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
                {
                    "version": "6",
                    "interface": 0,
                    "address": "2001:db8::5/64",
                    "gateway": "2001:db8::1",
                },
                {"version": "4", "interface": 1, "address": "10.2.0.5/16"},
            ],
            "routes": src_100(target)["routes"],
            "dns": DNS_FULL,
        }
    return {
        "cniVersion": target,
        "ip4": {
            "ip": "10.1.0.5/16",
            "gateway": "10.1.0.1",
            "routes": [
                {"dst": "0.0.0.0/0", "gw": "10.1.0.1"},
                {"dst": "192.168.0.0/24", "gw": "10.2.0.1"},
            ],
        },
        "ip6": {"ip": "2001:db8::5/64", "gateway": "2001:db8::1", "routes": [{"dst": "::/0"}]},
        "dns": DNS_FULL,
    }


def src_040(version: str) -> dict:
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/blue"}
        ],
        "ips": [
            {"version": "6", "interface": 0, "address": "2001:db8::5/64"},
            {"version": "4", "interface": 0, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "table": 254}],
        "dns": {},
    }


def expect_from_040(target: str) -> dict:
    family = FAMILY[target]
    if family == "040":
        return src_040(target)
    if family == "100":
        return {
            "cniVersion": target,
            "interfaces": src_040(target)["interfaces"],
            "ips": [
                {"interface": 0, "address": "2001:db8::5/64"},
                {"interface": 0, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "table": 254}],
        }
    return {
        "cniVersion": target,
        "ip4": {
            "ip": "10.1.0.5/16",
            "gateway": "10.1.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
        },
        "ip6": {"ip": "2001:db8::5/64"},
        "dns": {},
    }


def src_020(version: str) -> dict:
    return {
        "cniVersion": version,
        "ip4": {
            "ip": "10.1.0.5/16",
            "gateway": "10.1.0.1",
            "routes": [
                {"dst": "0.0.0.0/0"},
                {"dst": "10.9.0.0/16", "gw": "10.1.0.254", "mtu": 1300},
            ],
        },
        "ip6": {"ip": "2001:db8::5/64", "routes": [{"dst": "::/0", "gw": "2001:db8::1"}]},
        "dns": {"nameservers": ["10.1.0.1"]},
    }


def expect_from_020(target: str) -> dict:
    family = FAMILY[target]
    if family == "020":
        return src_020(target)
    routes = [
        {"dst": "0.0.0.0/0"},
        {"dst": "10.9.0.0/16", "gw": "10.1.0.254", "mtu": 1300},
        {"dst": "::/0", "gw": "2001:db8::1"},
    ]
    if family == "040":
        ips = [
            {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
            {"version": "6", "address": "2001:db8::5/64"},
        ]
        return {
            "cniVersion": target,
            "ips": ips,
            "routes": routes,
            "dns": {"nameservers": ["10.1.0.1"]},
        }
    ips = [{"address": "10.1.0.5/16", "gateway": "10.1.0.1"}, {"address": "2001:db8::5/64"}]
    return {
        "cniVersion": target,
        "ips": ips,
        "routes": routes,
        "dns": {"nameservers": ["10.1.0.1"]},
    }


SOURCES = {
    "100": (src_100, expect_from_100),
    "040": (src_040, expect_from_040),
    "020": (src_020, expect_from_020),
}


@pytest.mark.parametrize("target", ALL)
@pytest.mark.parametrize("source", ALL)
def test_conversion_matrix(source: str, target: str) -> None:
    make, expect = SOURCES[FAMILY[source]]
    result = Result.from_dict(make(source))
    assert result.cni_version == source
    # to_json compares key order too: go_dumps keeps the expected dict's order.
    assert result.to_json(target) == go_dumps(expect(target))
    assert result.to_dict(target) == expect(target)


@pytest.mark.parametrize("version", ALL)
def test_print_in_own_version_is_identity(version: str) -> None:
    doc = SOURCES[FAMILY[version]][0](version)
    assert Result.from_dict(doc).to_dict() == doc
    assert Result.from_json(json.dumps(doc)).to_dict() == doc


def test_exact_text_of_a_1_1_0_result() -> None:
    result = Result(
        "1.1.0",
        interfaces=[Interface("eth0", mac="aa:bb:cc:dd:ee:ff", sandbox="/run/netns/x", mtu=9000)],
        ips=[IPConfig("10.0.0.2/24", "10.0.0.1", interface=0)],
        routes=[Route("0.0.0.0/0", table=0)],
        dns=DNS(domain="a<b>&c"),
    )
    assert result.to_json() == (
        "{\n"
        '    "cniVersion": "1.1.0",\n'
        '    "interfaces": [\n'
        "        {\n"
        '            "name": "eth0",\n'
        '            "mac": "aa:bb:cc:dd:ee:ff",\n'
        '            "mtu": 9000,\n'
        '            "sandbox": "/run/netns/x"\n'
        "        }\n"
        "    ],\n"
        '    "ips": [\n'
        "        {\n"
        '            "interface": 0,\n'
        '            "address": "10.0.0.2/24",\n'
        '            "gateway": "10.0.0.1"\n'
        "        }\n"
        "    ],\n"
        '    "routes": [\n'
        "        {\n"
        '            "dst": "0.0.0.0/0",\n'
        '            "table": 0\n'
        "        }\n"
        "    ],\n"
        '    "dns": {\n'
        '        "domain": "a\\u003cb\\u003e\\u0026c"\n'
        "    }\n"
        "}"
    )


def test_exact_text_of_a_0_2_0_result() -> None:
    result = Result("0.2.0", ips=[IPConfig("10.0.0.2/24")])
    assert result.to_json() == (
        '{\n    "cniVersion": "0.2.0",\n    "ip4": {\n        "ip": "10.0.0.2/24"\n    },\n'
        '    "dns": {}\n}'
    )


# -- lossy down-conversion to 0.1.0 / 0.2.0 ----------------------------------------------


def test_down_conversion_keeps_first_ip_of_each_family() -> None:
    result = Result(
        ips=[
            IPConfig("2001:db8::9/64"),
            IPConfig("10.0.0.2/24", "10.0.0.1"),
            IPConfig("10.0.0.3/24", "10.0.0.254"),
            IPConfig("2001:db8::10/64", "2001:db8::1"),
        ]
    )
    out = result.to_dict("0.2.0")
    assert out["ip4"] == {"ip": "10.0.0.2/24", "gateway": "10.0.0.1"}
    assert out["ip6"] == {"ip": "2001:db8::9/64"}


def test_down_conversion_assigns_routes_by_destination_family() -> None:
    result = Result(
        "1.0.0",
        ips=[IPConfig("10.0.0.2/24")],
        routes=[
            Route("::/0", "2001:db8::1"),
            Route("10.10.0.0/16", "10.0.0.1", mtu=1400, table=7),
            Route("0.0.0.0/0"),
        ],
    )
    out = result.to_dict("0.1.0")
    # The IPv6 route has no ip6 block to go to and is dropped; extended fields go.
    assert out == {
        "cniVersion": "0.1.0",
        "ip4": {
            "ip": "10.0.0.2/24",
            "routes": [{"dst": "10.10.0.0/16", "gw": "10.0.0.1"}, {"dst": "0.0.0.0/0"}],
        },
        "dns": {},
    }


@pytest.mark.parametrize("source", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
@pytest.mark.parametrize("target", ["0.1.0", "0.2.0"])
def test_cannot_convert_without_ips(source: str, target: str) -> None:
    result = Result(source, interfaces=[Interface("lo")], dns=DNS(domain="x"))
    err = err_of(result.to_dict, target)
    assert (err.code, err.msg) == (1, "cannot convert: no valid IP addresses")


def test_legacy_result_without_ips_converts_between_legacy_versions() -> None:
    result = Result.from_dict({"cniVersion": "0.1.0", "dns": {"domain": "x"}})
    assert result.to_dict("0.2.0") == {"cniVersion": "0.2.0", "dns": {"domain": "x"}}
    assert result.to_dict("1.0.0") == {"cniVersion": "1.0.0", "dns": {"domain": "x"}}


def test_legacy_route_in_the_wrong_block_is_kept() -> None:
    doc = {"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24", "routes": [{"dst": "::/0"}]}}
    assert Result.from_dict(doc).to_dict()["ip4"]["routes"] == [{"dst": "::/0"}]


# -- versions ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["1.0.1", "2.0.0", "0.5.0", "1.0", "x"])
def test_no_converter_for_unknown_target(bad: str) -> None:
    err = err_of(Result().to_dict, bad)
    assert (err.code, err.msg) == (1, f"no converter for CNI result version 1.1.0 to {bad}")


def test_no_converter_from_unknown_own_version() -> None:
    err = err_of(Result("1.2.0").to_dict)
    assert err.msg == "no converter for CNI result version 1.2.0 to 1.2.0"
    assert err_of(Result("1.2.0").to_dict, "1.0.0").msg == (
        "no converter for CNI result version 1.2.0 to 1.0.0"
    )


def test_empty_target_means_0_1_0_and_empty_own_version_means_current() -> None:
    assert Result(ips=[IPConfig("10.0.0.1/8")]).to_dict("")["cniVersion"] == "0.1.0"
    assert Result("").to_dict() == {"cniVersion": "1.1.0"}


@pytest.mark.parametrize("version", ["1.0.1", "0.5.0", "2.0.0", "1.0"])
def test_unsupported_result_version(version: str) -> None:
    err = err_of(Result.from_dict, {"cniVersion": version})
    assert (err.code, err.msg) == (1, f'unsupported CNI result version "{version}"')
    err = err_of(Result.from_dict, {"cniVersion": "1.0.0"}, version)
    assert err.msg == f'unsupported CNI result version "{version}"'


@pytest.mark.parametrize(
    ("version", "own", "supports"),
    [
        ("1.0.0", "0.4.0", "[1.0.0 1.1.0]"),
        ("1.1.0", "", "[1.0.0 1.1.0]"),
        ("0.4.0", "1.0.0", "[0.3.0 0.3.1 0.4.0]"),
        ("0.3.0", "0.2.0", "[0.3.0 0.3.1 0.4.0]"),
        ("0.2.0", "0.3.1", "[ 0.1.0 0.2.0]"),
        ("", "1.1.0", "[ 0.1.0 0.2.0]"),
    ],
)
def test_family_mismatch(version: str, own: str, supports: str) -> None:
    err = err_of(Result.from_dict, {"cniVersion": own}, version)
    assert err.code == 6
    assert err.msg == f'result type supports {supports} but unmarshalled CNIVersion is "{own}"'


def test_same_family_versions_parse_as_their_own_version() -> None:
    assert Result.from_dict({"cniVersion": "1.0.0"}, "1.1.0").cni_version == "1.0.0"
    assert Result.from_dict({"cniVersion": "0.3.0"}, "0.4.0").cni_version == "0.3.0"
    assert Result.from_dict({"cniVersion": "0.2.0"}, "0.1.0").cni_version == "0.2.0"


def test_missing_or_empty_cni_version_is_0_1_0() -> None:
    for doc in ({}, {"cniVersion": ""}, {"cniVersion": None}):
        result = Result.from_dict(doc)
        assert result.cni_version == "0.1.0"
        assert result.to_dict() == {"cniVersion": "0.1.0", "dns": {}}
    assert Result.from_dict({}, "0.2.0").cni_version == "0.1.0"


def test_0_3_0_uses_the_ips_key() -> None:
    doc = {"cniVersion": "0.3.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]}
    result = Result.from_dict(doc)
    assert [i.address for i in result.ips] == ["10.0.0.2/24"]
    assert result.to_dict() == {**doc, "dns": {}}


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_interface_index_zero_is_emitted(version: str) -> None:
    out = Result(version, ips=[IPConfig("10.0.0.2/24", interface=0)]).to_dict()
    assert out["ips"][0]["interface"] == 0
    out = Result(version, ips=[IPConfig("10.0.0.2/24")]).to_dict()
    assert "interface" not in out["ips"][0]


def test_dns_rules() -> None:
    for version in ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0"):
        assert Result(version, ips=[IPConfig("10.0.0.2/24")]).to_dict()["dns"] == {}
    for version in ("1.0.0", "1.1.0"):
        assert "dns" not in Result(version).to_dict()
        assert Result(version, dns=DNS(options=["a"])).to_dict()["dns"] == {"options": ["a"]}
    assert DNS().is_empty()
    assert not DNS(domain="x").is_empty()
    assert not DNS(search=["x"]).is_empty()


def test_route_fields() -> None:
    route = Route("10.0.0.0/8", table=0, scope=0)
    assert Result("1.1.0", routes=[route]).to_dict()["routes"] == [
        {"dst": "10.0.0.0/8", "table": 0, "scope": 0}
    ]
    assert Result("1.1.0", routes=[Route("10.0.0.0/8")]).to_dict()["routes"] == [
        {"dst": "10.0.0.0/8"}
    ]


# -- parsing -------------------------------------------------------------------------------


def test_addresses_are_canonical_and_keep_host_bits() -> None:
    doc = {
        "cniVersion": "1.0.0",
        "ips": [
            {"address": "10.1.2.3/16", "gateway": "10.1.0.1"},
            {"address": "2001:DB8:0:0:0::5/64", "gateway": "2001:0db8::0001"},
            {"address": "::ffff:10.0.0.9/120"},
        ],
        "routes": [{"dst": "10.1.2.3/16", "gw": "FE80::1"}, {"dst": "::1.2.3.4/128"}],
    }
    out = Result.from_dict(doc).to_dict()
    assert out["ips"] == [
        {"address": "10.1.2.3/16", "gateway": "10.1.0.1"},
        {"address": "2001:db8::5/64", "gateway": "2001:db8::1"},
        {"address": "10.0.0.9/24"},
    ]
    assert out["routes"] == [{"dst": "10.1.2.3/16", "gw": "fe80::1"}, {"dst": "::102:304/128"}]


def test_empty_gateway_is_no_gateway() -> None:
    ipc = Result.from_dict(
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/8", "gateway": ""}]}
    ).ips[0]
    assert ipc.gateway is None


def test_keys_match_case_insensitively_and_unknown_keys_are_dropped() -> None:
    doc = {
        "CNIVersion": "1.0.0",
        "IPs": [{"Address": "10.0.0.2/24", "INTERFACE": 0, "extra": 1}],
        "Routes": [{"DST": "0.0.0.0/0"}],
        "DNS": {"NameServers": ["1.1.1.1"]},
        "unknown": {"x": 1},
    }
    assert Result.from_dict(doc).to_dict() == {
        "cniVersion": "1.0.0",
        "ips": [{"interface": 0, "address": "10.0.0.2/24"}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["1.1.1.1"]},
    }


def test_0_x_interfaces_drop_1_1_fields_and_ip_version_follows_the_address() -> None:
    doc = {
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "eth0", "mtu": 1500, "socketPath": "/s", "pciID": "p"}],
        "ips": [{"version": "4", "address": "2001:db8::1/64"}],
    }
    result = Result.from_dict(doc)
    assert result.interfaces == [Interface("eth0")]
    assert result.to_dict("1.1.0")["interfaces"] == [{"name": "eth0"}]
    assert result.to_dict()["ips"] == [{"version": "6", "address": "2001:db8::1/64"}]


def test_null_values_are_unset() -> None:
    doc = {
        "cniVersion": "1.1.0",
        "interfaces": None,
        "ips": [{"address": "10.0.0.1/8", "gateway": None, "interface": None}],
        "routes": [{"dst": "0.0.0.0/0", "table": None, "mtu": None}],
        "dns": None,
    }
    assert Result.from_dict(doc).to_dict() == {
        "cniVersion": "1.1.0",
        "ips": [{"address": "10.0.0.1/8"}],
        "routes": [{"dst": "0.0.0.0/0"}],
    }


@pytest.mark.parametrize(
    ("doc", "msg"),
    [
        (
            {"ips": "x"},
            "json: cannot unmarshal string into Go struct field Result.ips of type []IPConfig",
        ),
        (
            {"ips": [1]},
            "json: cannot unmarshal number into Go struct field Result.ips of type IPConfig",
        ),
        (
            {"ips": [{"address": 5}]},
            "json: cannot unmarshal number into Go struct field ipConfig.address of type string",
        ),
        ({"ips": [{"address": "10.0.0.1"}]}, "invalid CIDR address: 10.0.0.1"),
        ({"ips": [{"address": "10.0.0.1/33"}]}, "invalid CIDR address: 10.0.0.1/33"),
        ({"ips": [{"address": ""}]}, "invalid CIDR address: "),
        ({"ips": [{}]}, 'missing required field "address" in ipConfig'),
        ({"ips": [{"address": "10.0.0.1/8", "gateway": "x"}]}, "invalid IP address: x"),
        (
            {"ips": [{"address": "10.0.0.1/8", "interface": 1.5}]},
            "json: cannot unmarshal number 1.5 into Go struct field ipConfig.interface of type int",
        ),
        (
            {"ips": [{"address": "10.0.0.1/8", "interface": True}]},
            "json: cannot unmarshal bool into Go struct field ipConfig.interface of type int",
        ),
        (
            {"interfaces": [{"name": 1}]},
            "json: cannot unmarshal number into Go struct field Interface.name of type string",
        ),
        (
            {"interfaces": [{"name": "a", "mtu": "1500"}]},
            "json: cannot unmarshal string into Go struct field Interface.mtu of type int",
        ),
        ({"routes": [{"dst": "fe80::1%eth0/64"}]}, "invalid CIDR address: fe80::1%eth0/64"),
        ({"routes": [{"gw": "10.0.0.1"}]}, 'missing required field "dst" in route'),
        (
            {"routes": [{"dst": "0.0.0.0/0", "table": 2**64}]},
            "json: cannot unmarshal number 1.8446744073709552e+19 into Go struct field"
            " route.table of type int",
        ),
        (
            {"dns": []},
            "json: cannot unmarshal array into Go struct field Result.dns of type types.DNS",
        ),
        (
            {"dns": {"search": "x"}},
            "json: cannot unmarshal string into Go struct field DNS.search of type []string",
        ),
        (
            {"dns": {"domain": 1}},
            "json: cannot unmarshal number into Go struct field DNS.domain of type string",
        ),
    ],
)
def test_type_and_value_errors(doc: dict, msg: str) -> None:
    err = err_of(Result.from_dict, {"cniVersion": "1.0.0", **doc})
    assert (err.code, err.msg) == (6, msg)


def test_legacy_shape_errors() -> None:
    assert err_of(Result.from_dict, {"ip4": "x"}).msg == (
        "json: cannot unmarshal string into Go struct field Result.ip4 of type types020.IPConfig"
    )
    assert err_of(Result.from_dict, {"ip4": {}}).msg == 'missing required field "ip" in ipConfig'
    assert err_of(Result.from_dict, {"ip6": {"ip": "::/0", "routes": [7]}}).code == 6


def test_non_object_and_bad_version_type() -> None:
    assert err_of(Result.from_dict, []).msg == (
        "json: cannot unmarshal array into Go value of type types.Result"
    )
    err = err_of(Result.from_dict, {"cniVersion": 1})
    assert (err.code, err.msg) == (
        6,
        "decoding version from network config: json: cannot unmarshal number into Go struct "
        "field .cniVersion of type string",
    )
    assert err_of(Result.from_dict, {"cniVersion": 1}, "1.0.0").msg.startswith("json: ")


def test_from_json() -> None:
    doc = src_100("1.1.0")
    assert Result.from_json(json.dumps(doc).encode()).to_dict() == doc
    assert Result.from_json(json.dumps(doc)).to_dict() == doc
    assert Result.from_json(b"null").cni_version == "0.1.0"
    err = err_of(Result.from_json, b"{nope")
    assert err.code == 6
    assert err.msg.startswith("decoding version from network config: ")
    assert not err_of(Result.from_json, b"{nope", "1.0.0").msg.startswith("decoding")
    assert err_of(Result.from_json, b'{"cniVersion": NaN}').code == 6
    assert Result.from_json(b'{"cniVersion": "0.4.0"}', "0.3.1").cni_version == "0.4.0"


# -- the model -------------------------------------------------------------------------------


def test_ipconfig_properties_and_canonical_constructor() -> None:
    ipc = IPConfig("2001:DB8::0:1/64", "2001:db8::FFFF", 0)
    assert (ipc.address, ipc.gateway, ipc.interface) == ("2001:db8::1/64", "2001:db8::ffff", 0)
    assert (ipc.family, ipc.ip, ipc.prefixlen) == (6, "2001:db8::1", 64)
    ipc = IPConfig("192.168.1.7/24", "")
    assert (ipc.family, ipc.ip, ipc.prefixlen, ipc.gateway) == (4, "192.168.1.7", 24, None)
    assert err_of(IPConfig, "300.1.1.1/24").msg == "invalid CIDR address: 300.1.1.1/24"
    assert err_of(IPConfig, "10.0.0.1/8", "nope").msg == "invalid IP address: nope"
    assert err_of(Route, "nope").code == 6
    assert Route("::FFFF:10.1.2.3/104").family == 4


def test_constructor_defaults() -> None:
    result = Result()
    assert (result.cni_version, result.interfaces, result.ips, result.routes) == (
        "1.1.0",
        [],
        [],
        [],
    )
    assert result.dns == DNS()
    iface = Interface("eth0")
    assert (iface.mac, iface.mtu, iface.sandbox, iface.socket_path, iface.pci_id) == (
        "",
        0,
        "",
        "",
        "",
    )
    route = Route("0.0.0.0/0")
    assert (route.gw, route.mtu, route.advmss, route.priority, route.table, route.scope) == (
        None,
        0,
        0,
        0,
        None,
        None,
    )


def test_copy_is_deep() -> None:
    result = Result.from_dict(src_100("1.1.0"))
    clone = result.copy()
    assert clone == result and clone is not result
    clone.interfaces[0].name = "x"
    clone.ips[0].interface = 7
    clone.routes[0].table = 9
    clone.dns.nameservers.append("9.9.9.9")
    assert result.to_dict() == src_100("1.1.0")


def test_to_dict_shares_nothing_with_the_result() -> None:
    result = Result.from_dict(src_100("1.1.0"))
    out = result.to_dict()
    out["dns"]["nameservers"].append("x")
    out["ips"][0]["address"] = "x"
    assert result.to_dict() == src_100("1.1.0")


# -- prevResult ------------------------------------------------------------------------------


def test_parse_prev_result() -> None:
    assert parse_prev_result({"cniVersion": "1.0.0"}) is None
    assert parse_prev_result({"cniVersion": "1.0.0", "prevResult": None}) is None
    prev = parse_prev_result(
        {"cniVersion": "1.1.0", "prevResult": {"ips": [{"address": "10.0.0.2/24"}]}}
    )
    assert prev is not None and prev.cni_version == "1.1.0"
    assert prev.ips == [IPConfig("10.0.0.2/24")]
    # The prevResult's own version wins when it is in the same family.
    prev = parse_prev_result({"cniVersion": "1.1.0", "prevResult": {"cniVersion": "1.0.0"}})
    assert prev is not None and prev.cni_version == "1.0.0"
    prev = parse_prev_result({"cniVersion": "", "prevResult": {"ip4": {"ip": "10.0.0.2/24"}}})
    assert prev is not None and prev.cni_version == "0.1.0"
    prev = parse_prev_result({"CNIVersion": "0.4.0", "PrevResult": {"cniVersion": ""}})
    assert prev is not None and prev.cni_version == "0.4.0"


def test_parse_prev_result_errors() -> None:
    err = err_of(parse_prev_result, {"cniVersion": "1.0.0", "prevResult": {"cniVersion": "0.4.0"}})
    assert (err.code, err.msg) == (
        6,
        "could not parse prevResult: result type supports [1.0.0 1.1.0] but unmarshalled "
        'CNIVersion is "0.4.0"',
    )
    err = err_of(parse_prev_result, {"cniVersion": "1.0.0", "prevResult": [1]})
    assert err.msg == (
        "could not parse prevResult: json: cannot unmarshal array into Go struct field "
        "PluginConf.prevResult of type map[string]interface {}"
    )
    err = err_of(parse_prev_result, {"cniVersion": "9.0.0", "prevResult": {}})
    assert (err.code, err.msg) == (
        1,
        'could not parse prevResult: unsupported CNI result version "9.0.0"',
    )
    err = err_of(parse_prev_result, {"cniVersion": 1, "prevResult": {}})
    assert err.msg.startswith("could not parse prevResult: json: cannot unmarshal number")
    err = err_of(
        parse_prev_result, {"cniVersion": "1.0.0", "prevResult": {"ips": [{"address": "x"}]}}
    )
    assert err.msg == "could not parse prevResult: invalid CIDR address: x"


# -- properties ------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
_ip4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ip6 = st.binary(min_size=16, max_size=16).map(lambda b: socket.inet_ntop(socket.AF_INET6, b))
_ip = _ip4 | _ip6
_cidr = st.tuples(_ip4, st.integers(0, 32)) | st.tuples(_ip6, st.integers(0, 128))
_cidrs = _cidr.map(lambda t: f"{t[0]}/{t[1]}")
_small = st.integers(0, 70000)
_opt = st.none() | st.integers(0, 255)

results = st.builds(
    Result,
    cni_version=st.just("1.1.0"),
    interfaces=st.lists(
        st.builds(Interface, _text, _text, _text, _small, _text, _text), max_size=3
    ),
    ips=st.lists(
        st.builds(IPConfig, _cidrs, st.none() | _ip, st.none() | st.integers(0, 3)), max_size=4
    ),
    routes=st.lists(
        st.builds(Route, _cidrs, st.none() | _ip, _small, _small, _small, _opt, _opt), max_size=4
    ),
    dns=st.builds(
        DNS,
        st.lists(_ip, max_size=2),
        _text,
        st.lists(_text, max_size=2),
        st.lists(_text, max_size=2),
    ),
)


def _printed(result: Result, version: str) -> dict | None:
    try:
        return result.to_dict(version)
    except CNIError as err:
        assert err.msg == "cannot convert: no valid IP addresses"
        assert not result.ips
        return None


@settings(max_examples=60, deadline=None)
@given(results)
def test_parse_print_parse_is_identity(result: Result) -> None:
    for version in ALL:
        doc = _printed(result, version)
        if doc is None:
            continue
        parsed = Result.from_dict(doc)
        assert parsed.cni_version == version
        assert parsed.to_dict() == doc
        reparsed = Result.from_json(parsed.to_json())
        assert reparsed == parsed


@settings(max_examples=60, deadline=None)
@given(results)
def test_up_then_down_keeps_what_the_lower_version_holds(result: Result) -> None:
    for i, low in enumerate(ALL):
        doc = _printed(result, low)
        if doc is None:
            continue
        for high in ALL[i + 1 :]:
            up = Result.from_dict(doc).to_dict(high)
            assert Result.from_dict(up).to_dict(low) == doc


@settings(max_examples=60, deadline=None)
@given(results)
def test_to_dict_never_mutates_the_source(result: Result) -> None:
    before = result.copy()
    for version in ALL:
        _printed(result, version)
        _printed(Result.from_dict(result.to_dict()), version)
    assert result == before
