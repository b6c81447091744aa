"""host-local configuration: range canonicalisation, validation, requests."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycni.plugins.ipam.host_local import config
from pycni.plugins.ipam.host_local.allocator import Range, RangeError
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, ip_text, parse_addr


def load(ipam: dict, version: str = "1.1.0", cni_args: str = "", **top) -> config.IPAMConfig:
    conf = {"cniVersion": version, "name": "net", "ipam": {"type": "host-local", **ipam}, **top}
    return config.load(conf, cni_args, version)


def error(ipam: dict, version: str = "1.1.0", cni_args: str = "", **top) -> CNIError:
    with pytest.raises(CNIError) as info:
        load(ipam, version, cni_args, **top)
    return info.value


def sets(cfg: config.IPAMConfig) -> list[str]:
    return [str(s) for s in cfg.range_sets]


def gateways(cfg: config.IPAMConfig) -> list[str]:
    return [ip_text(r.family, r.gateway) for s in cfg.range_sets for r in s.ranges]


def addr(text: str) -> tuple[int, int]:
    return parse_addr(text)


# -- range defaults -------------------------------------------------------------------------


def test_ipv4_defaults():
    cfg = load({"ranges": [[{"subnet": "198.18.0.0/24"}]]})
    assert sets(cfg) == ["198.18.0.1-198.18.0.254"]
    assert gateways(cfg) == ["198.18.0.1"]
    r = cfg.range_sets[0].ranges[0]
    assert (str(r.subnet), r.prefixlen) == ("198.18.0.0/24", 24)


def test_ipv6_defaults_end_at_last_address_and_gateway_is_network_plus_one():
    cfg = load({"ranges": [[{"subnet": "fd00:1::/64"}]]})
    assert sets(cfg) == ["fd00:1::1-fd00:1::ffff:ffff:ffff:ffff"]
    assert gateways(cfg) == ["fd00:1::1"]


def test_explicit_start_end_gateway_are_kept():
    cfg = load(
        {
            "ranges": [
                [
                    {
                        "subnet": "198.18.0.0/16",
                        "rangeStart": "198.18.1.10",
                        "rangeEnd": "198.18.1.20",
                        "gateway": "198.18.0.254",
                    }
                ]
            ]
        }
    )
    assert sets(cfg) == ["198.18.1.10-198.18.1.20"]
    assert gateways(cfg) == ["198.18.0.254"]


def test_empty_strings_mean_unset_like_go_net_ip():
    cfg = load(
        {"ranges": [[{"subnet": "198.18.0.0/24", "rangeStart": "", "rangeEnd": "", "gateway": ""}]]}
    )
    assert sets(cfg) == ["198.18.0.1-198.18.0.254"]


def test_keys_match_case_insensitively_and_null_is_unset():
    cfg = load(
        {
            "Ranges": [[{"SUBNET": "198.18.0.0/24", "rangestart": "198.18.0.5", "gateway": None}]],
            "DataDir": "/tmp/x",
        }
    )
    assert sets(cfg) == ["198.18.0.5-198.18.0.254"]
    assert cfg.data_dir == "/tmp/x"


def test_default_data_dir():
    assert load({"ranges": [[{"subnet": "198.18.0.0/24"}]]}).data_dir == "/var/lib/cni/networks"


def test_ipv4_mapped_addresses_are_ipv4():
    cfg = load({"ranges": [[{"subnet": "198.18.0.0/24", "rangeStart": "::ffff:198.18.0.9"}]]})
    assert sets(cfg) == ["198.18.0.9-198.18.0.254"]


def test_smallest_networks():
    assert sets(load({"ranges": [[{"subnet": "198.18.0.0/30"}]]})) == ["198.18.0.1-198.18.0.2"]
    assert sets(load({"ranges": [[{"subnet": "fd00::/126"}]]})) == ["fd00::1-fd00::3"]


# -- range validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subnet, network",
    [
        ("198.18.0.5/24", "198.18.0.0"),
        ("198.18.3.0/22", "198.18.0.0"),
        ("fd00::1/64", "fd00::"),
    ],
)
def test_host_bits_are_rejected(subnet, network):
    length = subnet.rsplit("/")[1]
    err = error({"ranges": [[{"subnet": subnet}]]})
    assert err.code == 7
    assert err.msg == (
        f"invalid range set 0: Network has host bits set. For a subnet mask of "
        f"length {length} the network address is {network}"
    )


@pytest.mark.parametrize("subnet", ["198.18.0.0/31", "198.18.0.1/32", "fd00::/127", "fd00::/128"])
def test_too_small_networks(subnet):
    err = error({"ranges": [[{"subnet": subnet}]]})
    assert err.msg == f"invalid range set 0: Network {subnet} too small to allocate from"


@pytest.mark.parametrize(
    "key, value, msg",
    [
        ("rangeStart", "198.18.1.5", "RangeStart 198.18.1.5 not in network 198.18.0.0/24"),
        ("rangeEnd", "198.19.0.5", "RangeEnd 198.19.0.5 not in network 198.18.0.0/24"),
        ("rangeStart", "fd00::5", "RangeStart fd00::5 not in network 198.18.0.0/24"),
        (
            "rangeStart",
            "198.18.1.300",
            "ipam.ranges[0][0]: rangeStart 198.18.1.300 is not a valid IP",
        ),
        ("rangeEnd", "nope", "ipam.ranges[0][0]: rangeEnd nope is not a valid IP"),
        ("gateway", "198.18.0.0/24", "ipam.ranges[0][0]: gateway 198.18.0.0/24 is not a valid IP"),
        ("gateway", "fd00::1", "gateway fd00::1 is not an IPv4 address like subnet 198.18.0.0/24"),
        ("rangeStart", 5, "ipam.ranges[0][0]: rangeStart must be a string, got number"),
    ],
)
def test_start_end_gateway_validation(key, value, msg):
    err = error({"ranges": [[{"subnet": "198.18.0.0/24", key: value}]]})
    assert (err.code, err.msg) == (7, f"invalid range set 0: {msg}")


def test_range_end_before_start():
    err = error(
        {
            "ranges": [
                [
                    {
                        "subnet": "198.18.0.0/24",
                        "rangeStart": "198.18.0.50",
                        "rangeEnd": "198.18.0.40",
                    }
                ]
            ]
        }
    )
    assert err.msg == (
        "invalid range set 0: RangeEnd 198.18.0.40 is lower than RangeStart 198.18.0.50"
    )


def test_gateway_outside_the_subnet_is_allowed():
    assert gateways(load({"ranges": [[{"subnet": "198.18.0.0/24", "gateway": "198.19.0.1"}]]})) == [
        "198.19.0.1"
    ]


@pytest.mark.parametrize(
    "ipam, msg",
    [
        ({}, "no IP ranges specified"),
        ({"ranges": []}, "no IP ranges specified"),
        ({"ranges": [[]]}, "invalid range set 0: empty range set"),
        ({"ranges": [None]}, "invalid range set 0: empty range set"),
        ({"ranges": [[None]]}, "invalid range set 0: ipam.ranges[0][0]: subnet is required"),
        ({"ranges": [[{}]]}, "invalid range set 0: ipam.ranges[0][0]: subnet is required"),
        (
            {"ranges": [[{"subnet": "198.18.0.0/33"}]]},
            "invalid range set 0: ipam.ranges[0][0]: subnet 198.18.0.0/33 is not a valid CIDR",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0"}]]},
            "invalid range set 0: ipam.ranges[0][0]: subnet 198.18.0.0 is not a valid CIDR",
        ),
        (
            {"ranges": [[{"subnet": 7}]]},
            "invalid range set 0: ipam.ranges[0][0]: subnet must be a string, got number",
        ),
        (
            {"ranges": "198.18.0.0/24"},
            "invalid ipam.ranges: expected a list of range sets, got string",
        ),
        (
            {"ranges": [{"subnet": "198.18.0.0/24"}]},
            "invalid range set 0: ipam.ranges[0]: expected a list of ranges, got object",
        ),
        (
            {"ranges": [["198.18.0.0/24"]]},
            "invalid range set 0: ipam.ranges[0][0]: expected a range object, got string",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}, {"subnet": "fd00::/64"}]]},
            "invalid range set 0: mixed address families",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}, {"subnet": "198.18.0.0/25"}]]},
            "invalid range set 0: subnets 198.18.0.1-198.18.0.254 and "
            "198.18.0.1-198.18.0.126 overlap",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}], [{"subnet": "198.18.0.128/25"}]]},
            "range set 0 overlaps with 1",
        ),
        (
            {
                "ranges": [
                    [{"subnet": "fd00::/64"}],
                    [{"subnet": "198.18.0.0/24"}],
                    [{"subnet": "fd00::/48"}],
                ]
            },
            "range set 0 overlaps with 2",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}]], "routes": [{"dst": "nope"}]},
            "invalid ipam.routes[0]: dst nope is not a valid CIDR",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}]], "routes": [{"gw": "198.18.0.1"}]},
            "invalid ipam.routes[0]: dst is required",
        ),
        (
            {
                "ranges": [[{"subnet": "198.18.0.0/24"}]],
                "routes": [{"dst": "0.0.0.0/0", "gw": "x"}],
            },
            "invalid ipam.routes[0]: gw x is not a valid IP",
        ),
        (
            {
                "ranges": [[{"subnet": "198.18.0.0/24"}]],
                "routes": [{"dst": "0.0.0.0/0", "mtu": "9"}],
            },
            'invalid ipam.routes[0]: "mtu": cannot unmarshal string into Go value of type int',
        ),
        *(
            (
                {"ranges": [[{"subnet": subnet}]]},
                f"invalid range set 0: ipam.ranges[0][0]: subnet {subnet} cannot be a "
                f"container subnet: it includes the {block}",
            )
            for subnet, block in [
                ("0.0.0.0/0", '"this network" block 0.0.0.0/8'),
                ("0.0.0.0/1", '"this network" block 0.0.0.0/8'),
                ("0.0.0.0/24", '"this network" block 0.0.0.0/8'),
                ("127.0.0.0/24", "loopback block 127.0.0.0/8"),
                ("224.0.0.0/24", "multicast block 224.0.0.0/4"),
                ("255.255.255.0/24", "limited broadcast address block 255.255.255.255/32"),
                ("::/0", "unspecified address block ::/128"),
                ("::/96", "unspecified address block ::/128"),
                ("ff02::/64", "multicast block ff00::/8"),
            ]
        ),
        *(
            (
                {
                    "ranges": [[{"subnet": "198.18.0.0/24"}]],
                    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "198.19.0.0/16", key: value}],
                },
                f'invalid ipam.routes[1]: "{key}" {value} is out of range (0 to {top})',
            )
            for key, value, top in [
                ("priority", 2**32, 2**32 - 1),
                ("priority", -1, 2**32 - 1),
                ("table", 2**40, 2**32 - 1),
                ("table", -2, 2**32 - 1),
                ("scope", 256, 255),
                ("scope", -1, 255),
                ("mtu", 2**63 - 1, 2**32 - 1),
                ("advmss", -5, 2**32 - 1),
            ]
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}]], "routes": {"dst": "0.0.0.0/0"}},
            'invalid ipam.routes: "routes": cannot unmarshal object into Go value of type '
            "[]interface {}",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}]], "dataDir": 5},
            "invalid ipam.dataDir: expected a string, got number",
        ),
        (
            {"ranges": [[{"subnet": "198.18.0.0/24"}]], "resolvConf": ["/etc/resolv.conf"]},
            "invalid ipam.resolvConf: expected a string, got array",
        ),
    ],
)
def test_invalid_configs(ipam, msg):
    err = error(ipam)
    assert (err.code, err.msg) == (7, msg)


def test_missing_ipam_key():
    with pytest.raises(CNIError) as info:
        config.load({"cniVersion": "1.0.0", "name": "n"}, "", "1.0.0")
    assert (info.value.code, info.value.msg) == (7, "IPAM config missing 'ipam' key")


def test_overlap_between_set_ranges_not_subnets():
    # Two ranges of one subnet that do not share an address are fine.
    cfg = load(
        {
            "ranges": [
                [
                    {"subnet": "198.18.0.0/24", "rangeEnd": "198.18.0.100"},
                    {"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.101"},
                ]
            ]
        }
    )
    assert sets(cfg) == ["198.18.0.1-198.18.0.100,198.18.0.101-198.18.0.254"]


# -- ordering of the final set list ---------------------------------------------------------


def test_legacy_range_is_prepended_to_ranges_and_runtime_ranges_before_all():
    cfg = load(
        {
            "subnet": "198.18.1.0/24",
            "rangeStart": "198.18.1.10",
            "gateway": "198.18.1.254",
            "ranges": [[{"subnet": "198.18.2.0/24"}], [{"subnet": "fd00:2::/64"}]],
        },
        runtimeConfig={"ipRanges": [[{"subnet": "198.18.3.0/24"}]]},
    )
    assert sets(cfg) == [
        "198.18.3.1-198.18.3.254",
        "198.18.1.10-198.18.1.254",
        "198.18.2.1-198.18.2.254",
        "fd00:2::1-fd00:2::ffff:ffff:ffff:ffff",
    ]
    assert gateways(cfg)[1] == "198.18.1.254"


def test_legacy_fields_without_subnet_are_ignored():
    cfg = load({"rangeStart": "1.2.3.4", "ranges": [[{"subnet": "198.18.0.0/24"}]]})
    assert sets(cfg) == ["198.18.0.1-198.18.0.254"]


def test_legacy_range_alone():
    assert sets(load({"subnet": "fd00::/120"})) == ["fd00::1-fd00::ff"]


def test_errors_name_the_final_set_index():
    err = error(
        {"ranges": [[{"subnet": "198.18.0.5/24"}]]},
        runtimeConfig={"ipRanges": [[{"subnet": "198.18.1.0/24"}]]},
    )
    assert err.msg.startswith("invalid range set 1: Network has host bits set.")
    err = error(
        {"ranges": [[{"subnet": "198.18.0.0/24"}]]}, runtimeConfig={"ipRanges": [[{"subnet": "x"}]]}
    )
    assert err.msg == (
        "invalid range set 0: runtimeConfig.ipRanges[0][0]: subnet x is not a valid CIDR"
    )


# -- versions -------------------------------------------------------------------------------


TWO_V4 = {"ranges": [[{"subnet": "198.18.0.0/24"}], [{"subnet": "198.18.1.0/24"}]]}
V4_V6 = {"ranges": [[{"subnet": "198.18.0.0/24"}], [{"subnet": "fd00::/64"}]]}


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_legacy_versions_allow_one_set_per_family(version):
    assert len(load(V4_V6, version).range_sets) == 2
    err = error(TWO_V4, version)
    assert (err.code, err.msg) == (
        7,
        f"CNI version {version} does not support more than 1 address per family",
    )


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_later_versions_allow_several_sets_per_family(version):
    assert len(load(TWO_V4, version).range_sets) == 2


# -- requested addresses --------------------------------------------------------------------


BASE = {"ranges": [[{"subnet": "198.18.0.0/24"}], [{"subnet": "fd00::/64"}]]}


def test_requested_from_cni_args():
    assert load(BASE, cni_args="IP=198.18.0.9").requested == [addr("198.18.0.9")]
    assert load(BASE, cni_args="IgnoreUnknown=1;K8S_POD_NAME=x;IP=fd00::9/64").requested == [
        addr("fd00::9")
    ]
    assert load(BASE, cni_args="IP=").requested == []


def test_cni_args_are_strict():
    err = error(BASE, cni_args="K8S_POD_NAME=x")
    assert err.code == 4 and "unknown args" in err.msg
    err = error(BASE, cni_args="IP=198.18.0.300")
    assert (err.code, err.msg) == (
        4,
        'ARGS: error parsing value of pair "IP=198.18.0.300": invalid IP address 198.18.0.300',
    )


def test_requested_from_args_and_runtime_config():
    cfg = load(
        BASE,
        args={"cni": {"ips": ["198.18.0.7/24"]}},
        runtimeConfig={"ips": ["fd00::7", "198.18.0.7"]},
    )
    assert cfg.requested == [addr("198.18.0.7"), addr("fd00::7")]


def test_args_cni_ips_take_precedence_over_cni_args_ip():
    cfg = load(BASE, cni_args="IP=198.18.0.5", args={"cni": {"ips": ["198.18.0.6"]}})
    assert cfg.requested == [addr("198.18.0.6")]


def test_cni_args_ip_comes_first_and_combines_with_runtime_config():
    cfg = load(BASE, cni_args="IP=198.18.0.5", runtimeConfig={"ips": ["fd00::5", "198.18.0.8"]})
    assert cfg.requested == [addr("198.18.0.5"), addr("fd00::5"), addr("198.18.0.8")]


def test_unknown_parts_of_args_are_ignored():
    assert load(BASE, args={"cni": "x", "other": 1}).requested == []
    assert load(BASE, args=["x"]).requested == []
    assert load(BASE, args={"cni": {"labels": [{"key": "a", "value": "b"}]}}).requested == []


@pytest.mark.parametrize(
    "top, msg",
    [
        ({"args": {"cni": {"ips": ["x"]}}}, "invalid args.cni.ips[0]: invalid IP address x"),
        (
            {"args": {"cni": {"ips": [5]}}},
            "invalid args.cni.ips[0]: expected an IP address string, got number",
        ),
        (
            {"args": {"cni": {"ips": "198.18.0.5"}}},
            'invalid args.cni.ips: "ips": cannot unmarshal string into Go value of type '
            "[]interface {}",
        ),
        (
            {"runtimeConfig": {"ips": ["198.18.0.5/99"]}},
            "invalid runtimeConfig.ips[0]: invalid IP address 198.18.0.5/99",
        ),
        ({"runtimeConfig": "x"}, "invalid runtimeConfig: expected an object, got string"),
        (
            {"runtimeConfig": {"ipRanges": {"subnet": "198.18.9.0/24"}}},
            "invalid runtimeConfig.ipRanges: expected a list of range sets, got object",
        ),
    ],
)
def test_invalid_requests(top, msg):
    err = error(BASE, **top)
    assert (err.code, err.msg) == (7, msg)


# -- Range directly -------------------------------------------------------------------------


def test_range_canonical_and_contains():
    r = Range.canonical(IPNet.parse("198.18.0.0/28"), addr("198.18.0.4"), addr("198.18.0.8"))
    assert str(r) == "198.18.0.4-198.18.0.8"
    assert r.contains(*addr("198.18.0.4")) and r.contains(*addr("198.18.0.8"))
    assert not r.contains(*addr("198.18.0.3")) and not r.contains(*addr("198.18.0.9"))
    assert not r.contains(*addr("fd00::4"))
    assert r.size() == 5  # the gateway .1 is outside the range
    with pytest.raises(RangeError):
        Range.canonical(IPNet.parse("198.18.0.0/28"), addr("198.18.0.20"))


# -- arbitrary input never gives a traceback ------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "198.18.0.0/24",
            "198.18.0.5",
            "fd00::/64",
            "fd00::1",
            "198.18.0.0/31",
            "::ffff:198.18.0.1",
            "198.18.0.300",
            "",
            "0.0.0.0/0",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "subnet",
                    "rangeStart",
                    "rangeEnd",
                    "gateway",
                    "ranges",
                    "ips",
                    "cni",
                    "dst",
                    "gw",
                    "mtu",
                    "table",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def config_strategy(mostly) -> st.SearchStrategy:
    """Top-level configs whose every value is drawn through `mostly(good)`."""
    range_obj = st.fixed_dictionaries(
        {
            "subnet": mostly(
                st.sampled_from(
                    [
                        "198.18.0.0/24",
                        "198.18.0.0/30",
                        "fd00::/120",
                        "198.18.0.4/30",
                        "fd00::/127",
                        "x",
                    ]
                )
            )
        },
        optional={
            "rangeStart": mostly(st.sampled_from(["198.18.0.10", "fd00::10", "198.18.0.2", ""])),
            "rangeEnd": mostly(st.sampled_from(["198.18.0.20", "fd00::20", "198.18.0.1"])),
            "gateway": mostly(st.sampled_from(["198.18.0.1", "fd00::1", "198.18.0.15"])),
        },
    )
    ipam_obj = st.fixed_dictionaries(
        {},
        optional={
            "ranges": mostly(
                st.lists(
                    mostly(st.lists(mostly(range_obj), min_size=1, max_size=2)),
                    min_size=1,
                    max_size=3,
                )
            ),
            "subnet": mostly(st.sampled_from(["198.18.1.0/24", "fd00:1::/64"])),
            "routes": mostly(
                st.lists(
                    mostly(
                        st.fixed_dictionaries(
                            {"dst": mostly(st.sampled_from(["0.0.0.0/0", "fd00:9::/64", "x"]))},
                            optional={
                                "gw": mostly(st.sampled_from(["198.18.0.1", "fd00::1"])),
                                "mtu": mostly(st.integers(0, 9000)),
                                "table": mostly(st.integers(0, 255)),
                            },
                        )
                    ),
                    max_size=2,
                )
            ),
            "dataDir": mostly(st.just("/tmp/host-local-fuzz")),
            "resolvConf": mostly(st.just("/etc/resolv.conf")),
        },
    )
    return st.fixed_dictionaries(
        {"ipam": mostly(ipam_obj)},
        optional={
            "runtimeConfig": mostly(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "ipRanges": mostly(
                            st.lists(
                                st.lists(mostly(range_obj), min_size=1, max_size=2), max_size=2
                            )
                        ),
                        "ips": mostly(
                            st.lists(
                                mostly(st.sampled_from(["198.18.0.5", "fd00::5/64", "x"])),
                                max_size=2,
                            )
                        ),
                    },
                )
            ),
            "args": mostly(
                st.fixed_dictionaries(
                    {
                        "cni": mostly(
                            st.fixed_dictionaries(
                                {
                                    "ips": mostly(
                                        st.lists(
                                            mostly(st.sampled_from(["198.18.1.5", "fd00:1::5"])),
                                            max_size=2,
                                        )
                                    )
                                }
                            )
                        )
                    }
                )
            ),
        },
    )


# Any JSON anywhere, and well-formed documents with good or bad values.
chaotic_configs = config_strategy(lambda good: good | json_values)
structured_configs = config_strategy(lambda good: good)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=chaotic_configs | structured_configs,
    version=st.sampled_from(["0.2.0", "1.0.0", "1.1.0"]),
    cni_args=st.sampled_from(["", "IP=198.18.0.9", "IP=x", "IgnoreUnknown=1;A=b", "A=b"]),
)
def test_config_parser_gives_a_config_or_a_cni_error(top, version, cni_args):
    conf = {"cniVersion": version, "name": "net", **top}
    json.dumps(conf)  # a JSON document
    try:
        cfg = config.load(conf, cni_args, version)
    except CNIError as err:
        assert err.code in (4, 7) and err.msg
        return
    assert cfg.range_sets
    for rset in cfg.range_sets:
        for r in rset.ranges:
            assert r.subnet.contains(r.family, r.start) and r.subnet.contains(r.family, r.end)
            assert r.start <= r.end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=chaotic_configs | structured_configs,
    version=st.sampled_from(["0.1.0", "0.2.0", "0.4.0", "1.0.0", "1.1.0"]),
    cni_args=st.sampled_from(["", "IP=198.18.0.9", "IP=fd00::9/64", "IP=x", "A=b"]),
)
def test_add_prints_a_result_or_a_cni_error(top, version, cni_args):
    """The whole ADD in-process through skel: a Result or an error object,
    never an unexpected exception (which skel would turn into code 999)."""
    import io
    import tempfile

    from pycni import skel
    from pycni.plugins.ipam.host_local.verbs import cmd_add, cmd_del
    from pycni.spec.result import Result

    with tempfile.TemporaryDirectory() as tmp:
        conf = {"cniVersion": version, "name": "net", "type": "host-local", **top}
        if isinstance(conf["ipam"], dict):
            conf["ipam"] = {**conf["ipam"], "dataDir": tmp}
        environ = {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "ctr",
            "CNI_NETNS": "/nonexistent",
            "CNI_IFNAME": "eth0",
            "CNI_ARGS": cni_args,
            "CNI_PATH": "/nonexistent",
        }
        out = io.StringIO()
        stdin = io.BytesIO(json.dumps(conf).encode())
        code = skel.run(
            environ, stdin, out, io.StringIO(), skel.Plugin(add=cmd_add, delete=cmd_del)
        )
        printed = json.loads(out.getvalue())
        if code == 0:
            result = Result.from_dict(printed)
            assert result.cni_version == version
        else:
            assert printed["code"] in (1, 4, 5, 6, 7) or printed["msg"].startswith(
                ("failed to allocate", "cannot convert")
            ), printed
