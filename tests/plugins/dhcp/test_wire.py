"""Result <-> Go current.Result dicts (wire.py), and through gob."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.plugins.ipam.dhcp import gob, wire
from pycni.spec.result import DNS, Interface, IPConfig, Result, Route

V4MAPPED = bytes(10) + b"\xff\xff"


def _through_gob(result: Result) -> Result:
    d = gob.decode(gob.encode(wire.result_to_go(result), wire.RESULT), wire.RESULT)
    return wire.result_from_go(d, result.cni_version)


def test_dhcp_daemon_shape_v4():
    """What Go's daemon answers: one IPv4 with gateway, routes, no DNS."""
    r = Result(
        "1.0.0",
        ips=[IPConfig("198.18.0.5/24", "198.18.0.1")],
        routes=[Route("0.0.0.0/0", "198.18.0.1"), Route("198.19.0.0/16", priority=100)],
    )
    d = wire.result_to_go(r)
    assert d["IPs"] == [
        {
            "Interface": None,
            "Address": {"IP": bytes([198, 18, 0, 5]), "Mask": b"\xff\xff\xff\x00"},
            "Gateway": bytes([198, 18, 0, 1]),
        }
    ]
    assert d["Routes"][0]["Dst"] == {"IP": bytes(4), "Mask": bytes(4)}
    assert d["Routes"][0]["GW"] == bytes([198, 18, 0, 1])
    assert d["Routes"][1]["GW"] == b""
    assert d["Routes"][1]["Priority"] == 100
    assert d["DNS"] == {"Nameservers": [], "Domain": "", "Search": [], "Options": []}
    assert _through_gob(r) == r


def test_ipv6_gateway_absent_and_dns():
    r = Result(
        "1.1.0",
        interfaces=[Interface("eth0", "02:00:00:00:00:07", "/run/netns/gb", mtu=1400)],
        ips=[IPConfig("fd00::7/64", interface=1), IPConfig("198.18.1.7/15")],
        routes=[Route("::/0", "fd00::1", mtu=1300, advmss=1200, table=7, scope=253)],
        dns=DNS(["fd00::53"], "gb.test", ["gb.test"], ["ndots:1"]),
    )
    d = wire.result_to_go(r)
    assert d["IPs"][0]["Address"] == {
        "IP": bytes.fromhex("fd00" + "00" * 13 + "07"),
        "Mask": b"\xff" * 8 + bytes(8),
    }
    assert d["IPs"][0]["Gateway"] == b""
    assert d["Interfaces"][0]["Mtu"] == 1400
    assert _through_gob(r) == r


def test_host_bits_are_kept():
    r = Result("1.0.0", ips=[IPConfig("198.18.3.9/15")], routes=[Route("198.18.3.0/15")])
    assert wire.result_from_go(wire.result_to_go(r), "1.0.0").ips[0].address == "198.18.3.9/15"


def test_from_go_accepts_16_byte_ipv4_and_16_byte_masks():
    """Go's daemon may send net.ParseIP's 16-byte form; masks of 16 bytes on
    an IPv4 address keep their last 4 bytes, as IPNet.String() does."""
    d = {
        "CNIVersion": "1.0.0",
        "IPs": [
            {
                "Address": {
                    "IP": V4MAPPED + bytes([198, 18, 0, 9]),
                    "Mask": b"\xff" * 15 + b"\x00",
                },
                "Gateway": V4MAPPED + bytes([198, 18, 0, 1]),
            }
        ],
        "Routes": [{"Dst": {"IP": bytes(4), "Mask": bytes(4)}}],
    }
    r = wire.result_from_go(d, "0.4.0")
    assert r.cni_version == "0.4.0"
    assert r.ips == [IPConfig("198.18.0.9/24", "198.18.0.1")]
    assert r.routes == [Route("0.0.0.0/0")]
    assert r.dns.is_empty() and r.interfaces == []


@pytest.mark.parametrize(
    "address",
    [
        {"IP": bytes([1, 2, 3]), "Mask": bytes(4)},
        {"IP": bytes(4), "Mask": b"\xff\x00\xff\x00"},
        {"IP": bytes(16), "Mask": bytes(4)},
        {"IP": b"", "Mask": b""},
    ],
)
def test_from_go_rejects_bad_ipnets(address):
    with pytest.raises(ValueError):
        wire.result_from_go({"IPs": [{"Address": address}]}, "1.0.0")


def test_ip_text_is_gos():
    assert wire.ip_text(b"") is None
    assert wire.ip_text(V4MAPPED + bytes([10, 0, 0, 1])) == "10.0.0.1"
    assert wire.ip_text(bytes.fromhex("20010db8" + "00" * 11 + "01")) == "2001:db8::1"
    with pytest.raises(ValueError):
        wire.ip_text(b"\x01\x02")


def test_cmdargs():
    assert wire.cmdargs("c", "/run/netns/x", "eth0", "A=1", "/opt/cni/bin", b"{}") == {
        "ContainerID": "c",
        "Netns": "/run/netns/x",
        "IfName": "eth0",
        "Args": "A=1",
        "Path": "/opt/cni/bin",
        "StdinData": b"{}",
    }


_V4 = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
    lambda t: "{}.{}.{}.{}/{}".format(*t[0].to_bytes(4, "big"), t[1])
)
_V6 = st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
    lambda t: wire.ip_text(t[0].to_bytes(16, "big")) + f"/{t[1]}"
)
_CIDR = (_V4 | _V6).filter(lambda c: not c.startswith("::ffff:"))


@given(st.lists(_CIDR, max_size=3), st.lists(st.tuples(_CIDR, st.booleans()), max_size=3))
def test_round_trip_property(addresses, routes):
    r = Result(
        "1.0.0",
        ips=[
            IPConfig(a, a.partition("/")[0] if i % 2 else None, i or None)
            for i, a in enumerate(addresses)
        ],
        routes=[Route(dst, dst.partition("/")[0] if gw else None) for dst, gw in routes],
    )
    assert _through_gob(r) == r
