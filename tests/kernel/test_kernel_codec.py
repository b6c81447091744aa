"""Unit tests of the netlink codec and of the exact messages the encoders build.

No kernel needed: requests go to a FakeSocket that records them.  Link kinds
this kernel lacks (ipvlan, vlan, vrf, dummy) and bridge VLAN filtering are
covered here byte for byte.
"""

from __future__ import annotations

import errno
import os
import pickle
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.kernel import bridge, link, route
from pycni.kernel import netlink as nl
from pycni.kernel.netlink import LinkNotFound, NetlinkError, RtNetlink

from support.netlink import FakeSocket, ack, nlmsg

CREATE_EXCL_ACK = nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL


# --- independent reference encoders (not using pycni's helpers) --------------


def attr(t: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)


def ifinfo(index: int = 0, family: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BBHiII", family, 0, 0, index, flags, change)


def tree(buf, schema: dict | None = None) -> list:
    """Decode attributes into [(type, value)]; schema maps a type to a nested schema
    (dict), "str", or None (raw bytes)."""
    out = []
    for t, v in nl.iter_attrs(buf):
        sub = (schema or {}).get(t)
        if isinstance(sub, dict):
            out.append((t, tree(v, sub)))
        elif sub == "str":
            out.append((t, nl.get_str(v)))
        else:
            out.append((t, bytes(v)))
    return out


LINK_SCHEMA = {
    link.IFLA_IFNAME: "str",
    link.IFLA_LINKINFO: {link.IFLA_INFO_KIND: "str", link.IFLA_INFO_DATA: {}},
}


# --- attribute codec --------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.integers(0, nl.NLA_TYPE_MASK), st.binary(max_size=40)),
        max_size=12,
    )
)
def test_attr_roundtrip(attrs):
    buf = b"".join(nl.nla(t, p) for t, p in attrs)
    assert len(buf) % 4 == 0
    assert [(t, bytes(v)) for t, v in nl.iter_attrs(buf)] == attrs
    assert buf == b"".join(attr(t, p) for t, p in attrs)


def test_attr_helpers_and_flags():
    assert nl.nla_u8(1, 7) == attr(1, b"\x07")
    assert nl.nla_u16(2, 0x1234) == attr(2, struct.pack("=H", 0x1234))
    assert nl.nla_be16(5, 0x8100) == attr(5, b"\x81\x00")
    assert nl.nla_u32(3, 2**32 - 1) == attr(3, b"\xff" * 4)
    assert nl.nla_s32(4, -1) == attr(4, b"\xff" * 4)
    assert nl.nla_str(3, "eth0") == attr(3, b"eth0\0")
    nested = nl.nla_nest(12, nl.nla_u8(4, 1), nested_flag=True)
    ((t, v),) = list(nl.iter_attrs(nested))
    assert t == 12  # NLA_F_NESTED masked off
    assert struct.unpack_from("=H", nested, 2)[0] == 12 | nl.NLA_F_NESTED
    assert [(t2, bytes(v2)) for t2, v2 in nl.iter_attrs(v)] == [(4, b"\1")]


def test_iter_attrs_stops_on_truncation():
    buf = nl.nla_u32(1, 5) + struct.pack("=HH", 40, 2) + b"\0" * 4
    assert [t for t, _ in nl.iter_attrs(buf)] == [1]


def test_get_str_strips_nul():
    assert nl.get_str(b"abc\0\0") == "abc"
    assert nl.get_str(b"abc") == "abc"


def test_parse_cidr_and_macs():
    assert nl.parse_cidr("198.18.0.2/24") == (nl.AF_INET, bytes([198, 18, 0, 2]), 24)
    assert nl.parse_cidr("198.18.0.2/24", mask=True)[1] == bytes([198, 18, 0, 0])
    assert nl.parse_cidr("198.18.0.2")[2] == 32
    fam, raw, plen = nl.parse_cidr("fd00::1:2/64", mask=True)
    assert (fam, plen) == (nl.AF_INET6, 64)
    assert nl.ip_unpack(fam, raw) == "fd00::"
    for bad in ("198.18.0.300/24", "198.18.0.0/33", "fd00::/129", "x/1", "1.2.3.4/a"):
        with pytest.raises(ValueError):
            nl.parse_cidr(bad)
    assert nl.mac_pack("AA:bb:0c:00:00:01") == bytes.fromhex("aabb0c000001")
    assert nl.mac_unpack(bytes.fromhex("aabb0c000001")) == "aa:bb:0c:00:00:01"
    with pytest.raises(ValueError):
        nl.mac_pack("zz:zz")


# --- errors -------------------------------------------------------------------


def test_netlink_error_shape():
    e = NetlinkError(errno.EEXIST, "add link veth1234")
    assert isinstance(e, OSError)
    assert e.errno == errno.EEXIST
    assert e.op == "add link veth1234"
    assert str(e) == "add link veth1234: File exists"
    e2 = pickle.loads(pickle.dumps(e))
    assert (type(e2), e2.errno, e2.op, str(e2)) == (NetlinkError, e.errno, e.op, str(e))
    nf = LinkNotFound(op="get link x")
    assert isinstance(nf, NetlinkError)
    assert nf.errno == errno.ENODEV
    assert str(nf) == "get link x: No such device"


@pytest.mark.parametrize(
    "err",
    [errno.EEXIST, errno.ENODEV, errno.ENOENT, errno.EBUSY, errno.EPERM, errno.EINVAL,
     errno.EOPNOTSUPP],
)  # fmt: skip
def test_kernel_errors_keep_their_errno(err):
    sock = FakeSocket([lambda seq, *_: [ack(seq, err, "kernel says no")]])
    nls = RtNetlink._with_socket(sock)
    with pytest.raises(NetlinkError) as ei:
        nls.link_add("dummy", "d0")
    assert ei.value.errno == err
    assert ei.value.op == "add link d0"
    assert str(ei.value) == f"add link d0: {os.strerror(err)}"
    assert ei.value.ext_msg == "kernel says no"
    # ENODEV on a link operation is LinkNotFound
    assert isinstance(ei.value, LinkNotFound) == (err == errno.ENODEV)


def test_request_ignores_stale_sequence_numbers(fake):
    nls, sock = fake
    sock.script = [lambda seq, *_: [ack(seq - 1, errno.EPERM), ack(seq)]]
    nls.link_set(3, up=True)  # the stale error is not ours


# --- dumps: multi-part, NLM_F_DUMP_INTR retry ------------------------------------


def _link_payload(index: int, name: str) -> bytes:
    return ifinfo(index) + attr(link.IFLA_IFNAME, name.encode() + b"\0")


def _dump_reply(links, *, intr=False, parts=2):
    def reply(seq, mtype, flags, payload):
        assert mtype == nl.RTM_GETLINK
        assert flags & nl.NLM_F_DUMP == nl.NLM_F_DUMP
        f = nl.NLM_F_MULTI | (nl.NLM_F_DUMP_INTR if intr else 0)
        msgs = [nlmsg(nl.RTM_NEWLINK, f, seq, _link_payload(i, n)) for i, n in links]
        chunks = [b"".join(msgs[k::parts]) for k in range(parts)]
        done = nlmsg(nl.NLMSG_DONE, nl.NLM_F_MULTI, seq, struct.pack("=i", 0))
        return [c for c in chunks if c] + [done]

    return reply


def test_dump_multipart(fake):
    nls, sock = fake
    links = [(i, f"if{i}") for i in range(1, 8)]
    sock.script = [_dump_reply(links, parts=3)]
    got = sorted((x.index, x.name) for x in nls.link_list())
    assert got == links


def test_dump_intr_is_retried(fake):
    nls, sock = fake
    links = [(1, "lo"), (2, "eth0")]
    sock.script = [
        _dump_reply(links[:1], intr=True),
        _dump_reply(links, intr=True),
        _dump_reply(links),
    ]
    assert [x.name for x in nls.link_list()] == ["lo", "eth0"]
    assert len(sock.sent) == 3


def test_dump_intr_gives_up_after_five_attempts(fake):
    nls, sock = fake
    sock.script = [_dump_reply([(1, "lo")], intr=True) for _ in range(6)]
    with pytest.raises(NetlinkError) as ei:
        nls.link_list()
    assert ei.value.errno == errno.EINTR
    assert len(sock.sent) == nl.MAX_DUMP_ATTEMPTS == 5


def test_dump_error_in_done(fake):
    nls, sock = fake

    def reply(seq, *_):
        return [nlmsg(nl.NLMSG_DONE, nl.NLM_F_MULTI, seq, struct.pack("=i", -errno.EOPNOTSUPP))]

    sock.script = [reply]
    with pytest.raises(NetlinkError) as ei:
        nls.link_list()
    assert ei.value.errno == errno.EOPNOTSUPP


# --- link creation messages, byte for byte -------------------------------------------


def _newlink(sock):
    mtype, flags, _seq, payload = sock.last
    assert mtype == nl.RTM_NEWLINK
    assert flags == CREATE_EXCL_ACK
    return payload


def test_dummy_message(fake):
    nls, sock = fake
    nls.link_add("dummy", "pycdum0", mtu=1400)
    expected = (
        ifinfo()
        + attr(3, b"pycdum0\0")
        + attr(4, struct.pack("=I", 1400))
        + attr(18, attr(1, b"dummy"))
    )
    assert _newlink(sock) == expected


def test_vlan_message(fake):
    nls, sock = fake
    nls.link_add("vlan", "pycv", parent=5, data={"id": 100, "protocol": "802.1ad"})
    expected = (
        ifinfo()
        + attr(3, b"pycv\0")
        + attr(5, struct.pack("=I", 5))
        + attr(
            18,
            attr(1, b"vlan") + attr(2, attr(1, struct.pack("=H", 100)) + attr(5, b"\x88\xa8")),
        )
    )
    payload = _newlink(sock)
    assert payload == expected
    t = tree(payload[16:], LINK_SCHEMA)
    assert t[0] == (link.IFLA_IFNAME, "pycv")
    assert t[2] == (
        link.IFLA_LINKINFO,
        [
            (link.IFLA_INFO_KIND, "vlan"),
            (
                link.IFLA_INFO_DATA,
                [(link.IFLA_VLAN_ID, b"\x64\x00"), (link.IFLA_VLAN_PROTOCOL, b"\x88\xa8")],
            ),
        ],
    )
    data_payload = attr(1, struct.pack("=H", 100)) + attr(5, b"\x88\xa8")
    assert link.decode_info_data("vlan", data_payload) == {"id": 100, "protocol": "802.1ad"}


def test_vlan_default_protocol_and_bad_id(fake):
    nls, sock = fake
    nls.link_add("vlan", "pycv", parent=5, data={"id": 7})
    t = tree(_newlink(sock)[16:], LINK_SCHEMA)
    info = dict(t[2][1])
    assert info[link.IFLA_INFO_DATA] == [(link.IFLA_VLAN_ID, struct.pack("=H", 7))]
    with pytest.raises(ValueError):
        nls.link_add("vlan", "pycv", parent=5, data={"id": 4095})


@pytest.mark.parametrize(
    ("mode", "flags", "mode_v", "flags_v"),
    [("l2", "bridge", 0, 0), ("l3", "private", 1, 1), ("l3s", "vepa", 2, 2)],
)
def test_ipvlan_message(fake, mode, flags, mode_v, flags_v):
    nls, sock = fake
    nls.link_add("ipvlan", "pycipv", parent=2, netns=None, data={"mode": mode, "flags": flags})
    data = attr(1, struct.pack("=H", mode_v)) + attr(2, struct.pack("=H", flags_v))
    expected = (
        ifinfo()
        + attr(3, b"pycipv\0")
        + attr(5, struct.pack("=I", 2))
        + attr(18, attr(1, b"ipvlan") + attr(2, data))
    )
    assert _newlink(sock) == expected
    assert link.decode_info_data("ipvlan", data) == {"mode": mode, "flags": flags}


@pytest.mark.parametrize(
    ("mode", "value"),
    [("private", 1), ("vepa", 2), ("bridge", 4), ("passthru", 8), ("source", 16)],
)
def test_macvlan_message(fake, mode, value):
    nls, sock = fake
    nls.link_add("macvlan", "pycmv", parent=9, mac="02:00:00:00:00:05", data={"mode": mode})
    data = attr(1, struct.pack("=I", value))
    expected = (
        ifinfo()
        + attr(3, b"pycmv\0")
        + attr(1, bytes.fromhex("020000000005"))
        + attr(5, struct.pack("=I", 9))
        + attr(18, attr(1, b"macvlan") + attr(2, data))
    )
    assert _newlink(sock) == expected
    assert link.decode_info_data("macvlan", data) == {"mode": mode}


def test_vrf_message(fake):
    nls, sock = fake
    nls.link_add("vrf", "pycvrf", data={"table": 1001})
    data = attr(1, struct.pack("=I", 1001))
    expected = ifinfo() + attr(3, b"pycvrf\0") + attr(18, attr(1, b"vrf") + attr(2, data))
    assert _newlink(sock) == expected
    assert link.decode_info_data("vrf", data) == {"table": 1001}


def test_link_add_in_netns_uses_net_ns_fd(fake):
    nls, sock = fake
    r, w = os.pipe()
    try:
        nls.link_add("dummy", "pycd", netns=r)  # an fd is passed through untouched
    finally:
        os.close(r)
        os.close(w)
    attrs = dict(tree(_newlink(sock)[16:]))
    assert struct.unpack("=I", attrs[link.IFLA_NET_NS_FD])[0] == r


def test_unknown_data_keys_rejected(fake):
    nls, _ = fake
    with pytest.raises(ValueError):
        nls.link_add("vrf", "x", data={"tabel": 1})
    with pytest.raises(ValueError):
        nls.link_add("macvlan", "x", data={"mode": "nonsense"})


def test_raw_info_data_passthrough(fake):
    nls, sock = fake
    nls.link_add("dummy", "pycraw", data=b"\x08\x00\x01\x00\x01\x00\x00\x00")
    t = tree(_newlink(sock)[16:], LINK_SCHEMA)
    assert dict(t[1][1])[link.IFLA_INFO_DATA] == [(1, b"\x01\x00\x00\x00")]


def test_bridge_and_veth_messages(fake):
    nls, sock = fake
    nls.link_add_bridge("pycbr", mtu=9000)
    assert _newlink(sock) == (
        ifinfo()
        + attr(3, b"pycbr\0")
        + attr(4, struct.pack("=I", 9000))
        + attr(18, attr(1, b"bridge"))
    )
    nls.link_add_bridge("pycbr", vlan_filtering=True)
    assert _newlink(sock) == (
        ifinfo() + attr(3, b"pycbr\0") + attr(18, attr(1, b"bridge") + attr(2, attr(7, b"\1")))
    )
    nls.link_add_veth("eth0", "veth1", mtu=1400, mac="02:00:00:00:00:01")
    peer = ifinfo() + attr(3, b"veth1\0") + attr(4, struct.pack("=I", 1400))
    assert _newlink(sock) == (
        ifinfo()
        + attr(3, b"eth0\0")
        + attr(4, struct.pack("=I", 1400))
        + attr(1, bytes.fromhex("020000000001"))
        + attr(18, attr(1, b"veth") + attr(2, attr(1, peer)))
    )


# --- link_set / link_del messages -----------------------------------------------------


def test_link_set_message(fake):
    nls, sock = fake
    nls.link_set(7, up=True, promisc=False, mtu=1300, master=0, alias="hi", name="new0")
    mtype, flags, _, payload = sock.last
    assert mtype == nl.RTM_SETLINK
    assert flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK
    assert payload[:16] == ifinfo(7, flags=link.IFF_UP, change=link.IFF_UP | link.IFF_PROMISC)
    assert dict(tree(payload[16:])) == {
        link.IFLA_IFNAME: b"new0\0",
        link.IFLA_MTU: struct.pack("=I", 1300),
        link.IFLA_MASTER: struct.pack("=I", 0),
        link.IFLA_IFALIAS: b"hi",
    }


def test_link_del_by_name_and_index(fake):
    nls, sock = fake
    nls.link_del("pycx")
    assert sock.last[0] == nl.RTM_DELLINK
    assert sock.last[3] == ifinfo() + attr(3, b"pycx\0")
    nls.link_del(12)
    assert sock.last[3] == ifinfo(12)
    with pytest.raises(TypeError):
        nls.link_del(1.5)


# --- bridge ports and VLANs ----------------------------------------------------------


def test_bridge_port_set_message(fake):
    nls, sock = fake
    nls.bridge_port_set(4, hairpin=True, isolated=False, learning=None, cost=100)
    mtype, _flags, _, payload = sock.last
    assert mtype == nl.RTM_SETLINK
    expected_protinfo = attr(4, b"\1") + attr(33, b"\0") + attr(3, struct.pack("=I", 100))
    assert payload == ifinfo(4, family=nl.AF_BRIDGE) + attr(12 | nl.NLA_F_NESTED, expected_protinfo)
    with pytest.raises(TypeError):
        nls.bridge_port_set(4, hairpinn=True)


@pytest.mark.parametrize(
    ("kw", "bflags", "vflags"),
    [
        ({}, bridge.BRIDGE_FLAGS_MASTER, 0),
        ({"pvid": True, "untagged": True}, bridge.BRIDGE_FLAGS_MASTER, 6),
        ({"master": False, "self_": True}, bridge.BRIDGE_FLAGS_SELF, 0),
        ({"master": False}, 0, 0),
    ],
)
def test_bridge_vlan_add_del_messages(fake, kw, bflags, vflags):
    nls, sock = fake
    nls.bridge_vlan_add(6, 100, **kw)
    spec = (attr(0, struct.pack("=H", bflags)) if bflags else b"") + attr(
        2, struct.pack("=HH", vflags, 100)
    )
    expected = ifinfo(6, family=nl.AF_BRIDGE) + attr(26, spec)
    assert sock.last[0] == nl.RTM_SETLINK
    assert sock.last[3] == expected
    assert bridge.parse_vlans(spec) == [(100, vflags)]
    nls.bridge_vlan_del(6, 100, **kw)
    assert sock.last[0] == nl.RTM_DELLINK
    assert sock.last[3] == expected


def test_bridge_vlan_bad_vid(fake):
    nls, _ = fake
    for vid in (0, 4095):
        with pytest.raises(ValueError):
            nls.bridge_vlan_add(6, vid)


def test_bridge_vlan_list_parses_dump(fake):
    nls, sock = fake
    spec = (
        attr(2, struct.pack("=HH", 0, 1))
        + attr(2, struct.pack("=HH", bridge.BRIDGE_VLAN_INFO_RANGE_BEGIN, 10))
        + attr(2, struct.pack("=HH", bridge.BRIDGE_VLAN_INFO_RANGE_END | 4, 12))
    )

    def reply(seq, mtype, flags, payload):
        assert payload == ifinfo(family=nl.AF_BRIDGE) + attr(29, struct.pack("=I", 2))
        other = nlmsg(nl.RTM_NEWLINK, 2, seq, ifinfo(3, family=7) + attr(26, attr(2, b"\0\0\5\0")))
        mine = nlmsg(nl.RTM_NEWLINK, 2, seq, ifinfo(6, family=7) + attr(26, spec))
        return [other + mine, nlmsg(nl.NLMSG_DONE, 2, seq, b"\0" * 4)]

    sock.script = [reply]
    assert nls.bridge_vlan_list(6) == [(1, 0), (10, 4), (11, 4), (12, 4)]


# --- route messages ----------------------------------------------------------------


def _rt(payload):
    return struct.unpack_from("=BBBBBBBBI", payload), dict(tree(payload[12:]))


def test_route_add_flags(fake):
    nls, sock = fake
    nls.route_add("198.18.3.7/24", gateway="198.18.0.1")
    mtype, flags, _, payload = sock.last
    assert mtype == nl.RTM_NEWROUTE
    assert flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE  # no EXCL
    hdr, attrs = _rt(payload)
    assert hdr == (nl.AF_INET, 24, 0, 0, 254, route.RTPROT_BOOT, 0, route.RTN_UNICAST, 0)
    assert attrs[route.RTA_DST] == bytes([198, 18, 3, 0])  # masked like Go's ParseCIDR
    assert attrs[route.RTA_GATEWAY] == bytes([198, 18, 0, 1])
    assert attrs[route.RTA_TABLE] == struct.pack("=I", 254)
    nls.route_add("198.18.3.0/24", gateway="198.18.0.1", exclusive=True)
    assert sock.last[1] & nl.NLM_F_EXCL
    nls.route_add("198.18.3.0/24", gateway="198.18.0.1", replace=True)
    assert sock.last[1] & (nl.NLM_F_REPLACE | nl.NLM_F_EXCL) == nl.NLM_F_REPLACE


def test_route_add_all_fields(fake):
    nls, sock = fake
    nls.route_add(
        None,
        gateway="fd00::1",
        oif=3,
        table=1000,
        priority=50,
        scope="link",
        src="fd00::2",
        mtu=1280,
        advmss=1200,
        onlink=True,
    )
    hdr, attrs = _rt(sock.last[3])
    assert hdr == (nl.AF_INET6, 0, 0, 0, 0, 3, 253, 1, route.RTNH_F_ONLINK)
    assert route.RTA_DST not in attrs
    assert attrs[route.RTA_TABLE] == struct.pack("=I", 1000)
    assert attrs[route.RTA_OIF] == struct.pack("=I", 3)
    assert attrs[route.RTA_PRIORITY] == struct.pack("=I", 50)
    assert attrs[route.RTA_PREFSRC] == nl.ip_pack("fd00::2")[1]
    assert tree(attrs[route.RTA_METRICS]) == [
        (route.RTAX_MTU, struct.pack("=I", 1280)),
        (route.RTAX_ADVMSS, struct.pack("=I", 1200)),
    ]


def test_route_default_needs_family(fake):
    nls, sock = fake
    with pytest.raises(ValueError):
        nls.route_add(None, oif=2)
    nls.route_add("::/0", oif=2)
    assert _rt(sock.last[3])[0][0] == nl.AF_INET6
    nls.route_add(None, oif=2, family=nl.AF_INET)
    assert _rt(sock.last[3])[0][0] == nl.AF_INET


def test_route_del_matches_any_scope(fake):
    nls, sock = fake
    nls.route_del("198.18.3.0/24", table=100)
    mtype, flags, _, payload = sock.last
    assert (mtype, flags) == (nl.RTM_DELROUTE, nl.NLM_F_REQUEST | nl.NLM_F_ACK)
    hdr, attrs = _rt(payload)
    assert hdr == (nl.AF_INET, 24, 0, 0, 100, 0, route.RT_SCOPE_NOWHERE, 0, 0)
    assert attrs == {
        route.RTA_TABLE: struct.pack("=I", 100),
        route.RTA_DST: bytes([198, 18, 3, 0]),
    }


def test_route_del_by_preferred_source(fake):
    nls, sock = fake
    nls.route_del("198.18.3.0/24", src="198.18.3.2")
    _hdr, attrs = _rt(sock.last[3])
    assert attrs[route.RTA_PREFSRC] == bytes([198, 18, 3, 2])


def test_route_parse_multipath():
    gw = attr(route.RTA_GATEWAY, nl.ip_pack("fd00::1")[1])
    hop1 = struct.pack("=HBBi", 8 + len(gw), 0, 0, 3) + gw
    hop2 = struct.pack("=HBBi", 8, 0, 0, 4)
    body = struct.pack("=BBBBBBBBI", nl.AF_INET6, 64, 0, 0, 254, 3, 0, 1, 0)
    body += attr(route.RTA_DST, nl.ip_pack("fd00:5::")[1]) + attr(route.RTA_MULTIPATH, hop1 + hop2)
    r = route.Route.from_payload(body)
    assert r.dst == "fd00:5::/64"
    assert r.multipath == [("fd00::1", 3), (None, 4)]


# --- address / neighbour / rule messages ----------------------------------------------


def test_addr_add_message(fake):
    from pycni.kernel import addr

    nls, sock = fake
    nls.addr_add(4, "198.18.0.2/24")
    mtype, flags, _, payload = sock.last
    assert mtype == nl.RTM_NEWADDR
    assert flags == CREATE_EXCL_ACK
    assert payload[:8] == struct.pack("=BBBBi", nl.AF_INET, 24, 0, 0, 4)
    attrs = dict(tree(payload[8:]))
    assert attrs[addr.IFA_LOCAL] == attrs[addr.IFA_ADDRESS] == bytes([198, 18, 0, 2])
    assert attrs[addr.IFA_BROADCAST] == bytes([198, 18, 0, 255])
    nls.addr_add(4, "198.18.0.2/31")
    assert addr.IFA_BROADCAST not in dict(tree(sock.last[3][8:]))
    nls.addr_add(4, "fd00::2/64", flags=addr.IFA_F_NODAD | addr.IFA_F_NOPREFIXROUTE)
    payload = sock.last[3]
    assert payload[:8] == struct.pack("=BBBBi", nl.AF_INET6, 64, addr.IFA_F_NODAD, 0, 4)
    attrs = dict(tree(payload[8:]))
    assert attrs[addr.IFA_FLAGS] == struct.pack("=I", 0x202)
    assert addr.IFA_BROADCAST not in attrs


def test_neigh_and_rule_messages(fake):
    from pycni.kernel import neigh, rule

    nls, sock = fake
    nls.neigh_add(3, "198.18.0.9", "02:00:00:00:00:09")
    mtype, flags, _, payload = sock.last
    assert (mtype, flags) == (nl.RTM_NEWNEIGH, CREATE_EXCL_ACK)
    assert payload[:12] == struct.pack("=BxxxiHBB", nl.AF_INET, 3, neigh.NUD_PERMANENT, 0, 0)
    nls.neigh_add(3, "198.18.0.9", "02:00:00:00:00:09", permanent=False, replace=True)
    assert sock.last[1] & (nl.NLM_F_REPLACE | nl.NLM_F_EXCL) == nl.NLM_F_REPLACE

    nls.rule_add(family=nl.AF_INET6, table=1000, priority=10, src="fd00::5/64", iif="eth0")
    mtype, flags, _, payload = sock.last
    assert (mtype, flags) == (nl.RTM_NEWRULE, CREATE_EXCL_ACK)
    assert struct.unpack_from("=BBBBBBBBI", payload) == (10, 0, 64, 0, 0, 0, 0, 1, 0)
    attrs = dict(tree(payload[12:]))
    assert attrs[rule.FRA_TABLE] == struct.pack("=I", 1000)
    assert attrs[rule.FRA_SRC] == nl.ip_pack("fd00::")[1]
    assert attrs[rule.FRA_IIFNAME] == b"eth0\0"
    with pytest.raises(ValueError):
        nls.rule_add(family=nl.AF_INET, table=5, src="fd00::/8")


def test_closed_socket(fake):
    nls, sock = fake
    nls.close()
    assert sock.closed
    with pytest.raises(ValueError):
        nls.link_list()
