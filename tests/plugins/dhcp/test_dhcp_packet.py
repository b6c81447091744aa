"""DHCPv4 messages and frames (pycni.plugins.ipam.dhcp.packet): codec round
trips, the client's messages, and what an ACK means for a CNI result."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.plugins.ipam.dhcp import packet as pk

MAC = bytes.fromhex("02aabbccddee")
CID = pk.client_id_option("ctr/net/eth0")

addrs = st.binary(min_size=4, max_size=4)
option_values = st.binary(min_size=0, max_size=600)
option_codes = st.integers(1, 254)


@st.composite
def packets(draw) -> pk.Packet:
    return pk.Packet(
        draw(st.sampled_from([pk.BOOTREQUEST, pk.BOOTREPLY])),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.binary(min_size=1, max_size=16)),
        htype=draw(st.integers(0, 255)),
        hops=draw(st.integers(0, 255)),
        secs=draw(st.integers(0, 0xFFFF)),
        flags=draw(st.integers(0, 0xFFFF)),
        ciaddr=draw(addrs),
        yiaddr=draw(addrs),
        siaddr=draw(addrs),
        giaddr=draw(addrs),
        sname=draw(st.binary(max_size=63).map(lambda b: b.replace(b"\0", b"x"))),
        file=draw(st.binary(max_size=127).map(lambda b: b.replace(b"\0", b"x"))),
        options=draw(
            st.dictionaries(
                option_codes.filter(lambda c: c != pk.OPT_OVERLOAD), option_values, max_size=8
            )
        ),
    )


@given(packets())
def test_round_trip(p):
    data = p.encode()
    assert len(data) >= pk.BOOTP_MIN_LEN
    assert pk.Packet.decode(data) == p


@given(st.binary(max_size=700))
def test_decode_never_fails_but_with_malformed(data):
    try:
        pk.Packet.decode(data)
    except pk.MalformedPacket:
        pass


@given(st.binary(max_size=400))
def test_garbage_options_decode_without_error(data):
    assert isinstance(pk.Packet.decode(b"\0" * 236 + pk.MAGIC + data).options, dict)


def test_long_option_is_split_and_joined_again():
    """RFC 3396: a value over 255 bytes travels in consecutive instances."""
    p = pk.Packet(options={pk.OPT_CLASSLESS_ROUTES: bytes(300)})
    data = p.encode()
    assert data.count(bytes((pk.OPT_CLASSLESS_ROUTES, 255))) == 1
    assert pk.Packet.decode(data).options[pk.OPT_CLASSLESS_ROUTES] == bytes(300)


def test_overloaded_file_and_sname_carry_options():
    p = pk.Packet(pk.BOOTREPLY, 1, MAC, options={pk.OPT_OVERLOAD: b"\x03"})
    data = bytearray(p.encode())
    data[108:112] = bytes((pk.OPT_ROUTER, 2, 1, 2))  # file: router, continued in sname
    data[112] = pk.OPT_END
    data[44:48] = bytes((pk.OPT_ROUTER, 2, 3, 4))
    data[48] = pk.OPT_END
    assert pk.Packet.decode(bytes(data)).options[pk.OPT_ROUTER] == b"\x01\x02\x03\x04"


def test_truncated_options_stop_the_list():
    data = pk.Packet(options={3: b"abcd"}).encode()
    cut = data[: 240 + 2 + 2]  # code, length 4, two bytes of value
    assert pk.Packet.decode(cut).options == {}


def test_decode_rejects_short_or_cookieless():
    with pytest.raises(pk.MalformedPacket):
        pk.Packet.decode(b"\0" * 239)
    with pytest.raises(pk.MalformedPacket):
        pk.Packet.decode(b"\0" * 300)


def test_discover_carries_client_id_options_and_request_list():
    p = pk.discover(MAC, CID, [(12, b"host"), (55, bytes([3, 1]))])
    assert p.op == pk.BOOTREQUEST and p.message_type == pk.DISCOVER
    assert p.chaddr == MAC and p.flags == 0 and p.ciaddr == pk.ZERO
    assert p.options[pk.OPT_CLIENT_ID] == b"\0ctr/net/eth0"
    assert p.options[12] == b"host" and p.options[55] == b"\x03\x01"
    assert pk.discover(MAC, CID, [], broadcast=True).flags == pk.FLAG_BROADCAST


def test_provided_client_id_overrides_the_generated_one():
    """As the reference: `provide` options are applied after the client ID."""
    p = pk.discover(MAC, CID, [(61, b"mine")])
    assert p.options[61] == b"mine"


def offer_from(server: bytes = b"\xc6\x12\x01\x01") -> pk.Packet:
    return pk.Packet(
        pk.BOOTREPLY,
        0x1234,
        MAC,
        yiaddr=b"\xc6\x12\x01\x0a",
        options={pk.OPT_MESSAGE_TYPE: bytes([pk.OFFER]), pk.OPT_SERVER_ID: server},
    )


def test_request_selects_the_offer():
    offer = offer_from()
    p = pk.request_from_offer(offer, MAC, CID, [])
    assert p.xid == offer.xid and p.message_type == pk.REQUEST
    assert p.ciaddr == pk.ZERO
    assert p.options[pk.OPT_REQUESTED_IP] == offer.yiaddr
    assert p.options[pk.OPT_SERVER_ID] == offer.server_id


def test_renew_and_release():
    ack = offer_from()
    renew = pk.renew_from_ack(ack, MAC, CID, [(55, b"\x03")])
    assert renew.ciaddr == ack.yiaddr and renew.message_type == pk.REQUEST
    assert pk.OPT_SERVER_ID not in renew.options and pk.OPT_REQUESTED_IP not in renew.options
    release = pk.release_from_ack(ack, MAC, CID)
    assert release.message_type == pk.RELEASE and release.ciaddr == ack.yiaddr
    assert release.options[pk.OPT_SERVER_ID] == ack.server_id
    assert release.options[pk.OPT_CLIENT_ID] == CID


def test_client_id_option_has_type_zero():
    assert pk.client_id_option("a/b/c") == b"\x00a/b/c"


# --- frames -------------------------------------------------------------------------------


def _ones_complement_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


@given(st.binary(max_size=600), addrs, addrs)
def test_udp_frame_checksums_and_parse(payload, src, dst):
    frame = pk.udp_frame(payload, src, dst, 68, 67)
    assert _ones_complement_ok(frame[:20])
    pseudo = src + dst + struct.pack("!BBH", 0, 17, 8 + len(payload))
    assert _ones_complement_ok(pseudo + frame[20:])
    assert pk.parse_udp_frame(frame + b"\0" * 10) == (src, dst, 68, 67, payload)


def test_parse_udp_frame_skips_other_traffic():
    frame = bytearray(pk.udp_frame(b"x", pk.ZERO, pk.BROADCAST, 68, 67))
    assert pk.parse_udp_frame(bytes(frame[:19])) is None
    tcp = bytearray(frame)
    tcp[9] = 6
    assert pk.parse_udp_frame(bytes(tcp)) is None
    fragment = bytearray(frame)
    fragment[6] = 0x20  # more fragments
    assert pk.parse_udp_frame(bytes(fragment)) is None
    v6 = bytearray(frame)
    v6[0] = 0x60
    assert pk.parse_udp_frame(bytes(v6)) is None


# --- what an ACK means --------------------------------------------------------------------


def ack_with(**options: bytes) -> pk.Packet:
    codes = {
        "mask": pk.OPT_SUBNET_MASK,
        "router": pk.OPT_ROUTER,
        "static": pk.OPT_STATIC_ROUTES,
        "classless": pk.OPT_CLASSLESS_ROUTES,
        "lease": pk.OPT_LEASE_TIME,
        "t1": pk.OPT_RENEWAL_TIME,
        "t2": pk.OPT_REBINDING_TIME,
    }
    p = pk.Packet(pk.BOOTREPLY, 1, MAC, yiaddr=bytes([198, 18, 5, 20]))
    p.options[pk.OPT_MESSAGE_TYPE] = bytes([pk.ACK])
    for name, value in options.items():
        p.options[codes[name]] = value
    return p


def ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def test_subnet_needs_a_contiguous_mask():
    assert pk.subnet(ack_with(mask=ip("255.255.255.0"))) == "198.18.5.20/24"
    assert pk.subnet(ack_with(mask=ip("255.255.255.255"))) == "198.18.5.20/32"
    with pytest.raises(ValueError, match="Subnet Mask not found in DHCPACK"):
        pk.subnet(ack_with())
    with pytest.raises(ValueError, match="not a netmask"):
        pk.subnet(ack_with(mask=ip("255.0.255.0")))


@given(st.integers(0, 32))
def test_mask_prefix(prefix):
    mask = ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF).to_bytes(4, "big")
    assert pk.mask_prefix(mask) == prefix


def test_router_option_gives_gateway_and_default_route():
    ack = ack_with(router=ip("198.18.5.1") + ip("198.18.5.2"))
    assert pk.gateway(ack) == "198.18.5.1"
    assert pk.routes(ack) == [("0.0.0.0/0", "198.18.5.1", None)]
    assert pk.gateway(ack_with(router=b"\x01\x02\x03")) is None


def test_static_routes_are_classful_and_come_before_the_default():
    value = ip("10.1.2.0") + ip("198.18.5.9") + ip("172.16.0.0") + ip("198.18.5.9")
    value += ip("192.0.2.0") + ip("198.18.5.9") + ip("224.0.0.0") + ip("198.18.5.9")
    ack = ack_with(static=value, router=ip("198.18.5.1"))
    assert pk.routes(ack) == [
        ("10.1.2.0/8", "198.18.5.9", None),
        ("172.16.0.0/16", "198.18.5.9", None),
        ("192.0.2.0/24", "198.18.5.9", None),
        ("0.0.0.0/0", "198.18.5.1", None),
    ]


def test_classless_routes_win_over_static_and_router():
    """RFC 3442: with option 121, options 33 and 3 give no route; a 0.0.0.0
    next hop is on-link (scope link, 253)."""
    value = bytes([24, 10, 9, 8]) + ip("198.18.5.7")
    value += bytes([32]) + ip("203.0.113.5") + ip("0.0.0.0")
    value += bytes([0]) + ip("198.18.5.1")
    ack = ack_with(classless=value, static=ip("10.0.0.0") + ip("1.1.1.1"), router=ip("9.9.9.9"))
    assert pk.routes(ack) == [
        ("10.9.8.0/24", "198.18.5.7", None),
        ("203.0.113.5/32", "0.0.0.0", pk.SCOPE_LINK),
        ("0.0.0.0/0", "198.18.5.1", None),
    ]


@pytest.mark.parametrize(
    "value",
    [bytes([33]) + bytes(8), bytes([24, 10, 9]), bytes([8, 10]) + bytes(3)],
    ids=["width>32", "short", "short-gw"],
)
def test_bad_classless_routes_fall_back_to_router(value):
    ack = ack_with(classless=value, router=ip("198.18.5.1"))
    assert pk.routes(ack) == [("0.0.0.0/0", "198.18.5.1", None)]


def secs(n: int) -> bytes:
    return n.to_bytes(4, "big")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, (1800, 3060, 3600)),
        ({"lease": secs(120)}, (60, 102, 120)),
        ({"lease": secs(120), "t1": secs(5), "t2": secs(8)}, (5, 8, 120)),
        ({"lease": secs(100), "t2": secs(200)}, (50, 85, 100)),  # T2 past the lease
        ({"lease": secs(100), "t1": secs(90), "t2": secs(80)}, (50, 80, 100)),  # T1 past T2
        ({"lease": b"\x01"}, (1800, 3060, 3600)),  # not 4 bytes: default
    ],
)
def test_timers(options, expected):
    assert pk.timers(ack_with(**options)) == expected
