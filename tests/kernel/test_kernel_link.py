"""Link operations against the real kernel, read back through RtNetlink and `ip -json`."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest

from pycni.kernel import netns
from pycni.kernel.link import IF_OPER_UP
from pycni.kernel.netlink import LinkNotFound, NetlinkError, RtNetlink

from support import sandbox

UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTSUP)


def ipl(name: str, ns) -> dict:
    """`ip -json -d link show dev name` in the sandbox ns."""
    (out,) = sandbox.ip_json("-d", "link", "show", "dev", name, netns=ns.name)
    return out


def ip_names(ns) -> set[str]:
    return {x["ifname"] for x in sandbox.ip_json("link", "show", netns=ns.name)}


def _skip_if_unsupported(e: NetlinkError, what: str) -> None:
    if e.errno in UNSUPPORTED or "unknown" in (e.ext_msg or "").lower():
        pytest.skip(f"kernel refuses {what}: {e} ({e.ext_msg})")


# --- veth and namespaces --------------------------------------------------------------


@pytest.mark.parametrize("by_fd", [False, True])
def test_veth_pair_across_namespaces(nl, host_ns, container_ns, ifname, by_fd):
    host, peer = ifname("vh"), ifname("vp")
    fd = netns.open_netns(container_ns.path) if by_fd else None
    try:
        nl.link_add_veth(
            host,
            peer,
            peer_netns=fd if by_fd else container_ns.path,
            mtu=1400,
            mac="02:00:00:00:00:aa",
            peer_mac="02:00:00:00:00:bb",
        )
        if fd is not None:
            os.fstat(fd)  # a caller's fd is left open
    finally:
        if fd is not None:
            os.close(fd)

    h = nl.link_get(host)
    assert (h.kind, h.mtu, h.mac, h.up) == ("veth", 1400, "02:00:00:00:00:aa", False)
    assert h.link_netnsid is not None
    assert nl.link_find(peer) is None  # the peer is not in this netns
    assert peer not in ip_names(host_ns)

    with RtNetlink(netns=container_ns.path) as cnl:
        p = cnl.link_get(peer)
    assert (p.kind, p.mtu, p.mac) == ("veth", 1400, "02:00:00:00:00:bb")
    assert h.link == p.index and p.link == h.index  # IFLA_LINK is the peer index

    ih, ip_ = ipl(host, host_ns), ipl(peer, container_ns)
    assert ih["ifindex"] == h.index and ih["link_index"] == p.index
    assert ih["link_netnsid"] == h.link_netnsid
    assert ih["address"] == h.mac and ih["mtu"] == 1400
    assert ih["linkinfo"]["info_kind"] == "veth"
    assert ip_["ifindex"] == p.index and ip_["link_index"] == h.index
    assert ip_["address"] == "02:00:00:00:00:bb"


def test_veth_same_namespace(nl, host_ns, ifname):
    a, b = ifname("va"), ifname("vb")
    nl.link_add_veth(a, b)
    la, lb = nl.link_get(a), nl.link_get(b)
    assert la.link == lb.index and lb.link == la.index
    assert la.link_netnsid is None
    assert ipl(a, host_ns)["link"] == b


def test_link_list_matches_ip(nl, host_ns, ifname):
    nl.link_add_veth(ifname("la"), ifname("lb"))
    nl.link_add_bridge(ifname("br"))
    ours = {link.index: link for link in nl.link_list()}
    theirs = {x["ifindex"]: x for x in sandbox.ip_json("-d", "link", "show", netns=host_ns.name)}
    assert set(ours) == set(theirs)
    for idx, x in theirs.items():
        link = ours[idx]
        assert link.name == x["ifname"]
        assert link.mtu == x["mtu"]
        assert link.mac == x["address"]
        assert link.kind == x.get("linkinfo", {}).get("info_kind", "")
        assert link.up == ("UP" in x["flags"])


def test_link_get_by_index(nl, ifname):
    a = ifname("gi")
    nl.link_add_veth(a, ifname("gj"))
    link = nl.link_get(a)
    assert nl.link_get(index=link.index).name == a
    with pytest.raises(ValueError):
        nl.link_get()


# --- errors ----------------------------------------------------------------------------


def test_duplicate_link_is_eexist(nl, ifname):
    a, b = ifname("da"), ifname("db")
    nl.link_add_veth(a, b)
    with pytest.raises(NetlinkError) as ei:
        nl.link_add_veth(a, ifname("dc"))
    assert ei.value.errno == errno.EEXIST
    assert str(ei.value) == f"add link {a}: File exists"
    with pytest.raises(NetlinkError) as ei:
        nl.link_add_bridge(b)
    assert ei.value.errno == errno.EEXIST


def test_missing_link_is_link_not_found(nl, ifname):
    name = ifname("no")
    assert nl.link_find(name) is None
    for call in (
        lambda: nl.link_get(name),
        lambda: nl.link_get(index=999999),
        lambda: nl.link_del(name),
        lambda: nl.link_del(999999),
        lambda: nl.link_set(999999, up=True),
    ):
        with pytest.raises(LinkNotFound) as ei:
            call()
        assert ei.value.errno == errno.ENODEV
        assert isinstance(ei.value, NetlinkError)
    with pytest.raises(LinkNotFound) as ei:
        nl.link_get(name)
    assert str(ei.value) == f"get link {name}: No such device"


def test_link_del(nl, host_ns, ifname):
    a, b = ifname("xa"), ifname("xb")
    nl.link_add_veth(a, b)
    nl.link_del(nl.link_get(a))  # deleting one end removes both
    assert nl.link_find(a) is None and nl.link_find(b) is None
    assert not {a, b} & ip_names(host_ns)
    c, d = ifname("xc"), ifname("xd")
    nl.link_add_veth(c, d)
    nl.link_del(c)
    nl.link_add_veth(c, d)
    nl.link_del(nl.link_get(d).index)
    assert nl.link_find(c) is None


# --- bridge, master / nomaster -------------------------------------------------------------


def test_bridge_and_master(nl, host_ns, ifname):
    br, a, b = ifname("br"), ifname("pa"), ifname("pb")
    nl.link_add_bridge(br, mtu=1450)
    bridge = nl.link_get(br)
    assert (bridge.kind, bridge.mtu) == ("bridge", 1450)
    assert ipl(br, host_ns)["linkinfo"]["info_kind"] == "bridge"

    nl.link_add_veth(a, b)
    nl.link_set(nl.link_get(a), master=bridge.index)
    port = nl.link_get(a)
    assert port.master == bridge.index
    assert port.slave_kind == "bridge"
    assert port.brport is not None and port.brport["hairpin"] is False
    j = ipl(a, host_ns)
    assert j["master"] == br
    assert j["linkinfo"]["info_slave_kind"] == "bridge"

    nl.link_set(port, master=0)  # nomaster
    port = nl.link_get(a)
    assert port.master == 0 and port.brport is None
    assert "master" not in ipl(a, host_ns)


def test_bridge_vlan_filtering(nl, host_ns, ifname):
    br = ifname("bv")
    try:
        nl.link_add_bridge(br, vlan_filtering=True)
    except NetlinkError as e:
        _skip_if_unsupported(e, "bridge vlan_filtering")
        raise
    assert nl.link_get(br).data == {"vlan_filtering": True}
    assert ipl(br, host_ns)["linkinfo"]["info_data"]["vlan_filtering"] == 1


def test_bridge_vlan_add_del(nl, host_ns, ifname):
    br, a, b = ifname("bv"), ifname("va"), ifname("vb")
    nl.link_add_bridge(br)
    nl.link_add_veth(a, b)
    port = nl.link_get(a)
    nl.link_set(port, master=nl.link_get(br).index)
    try:
        nl.bridge_vlan_add(port.index, 100, pvid=True, untagged=True)
    except NetlinkError as e:
        _skip_if_unsupported(e, "bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")
        raise
    assert (100, 6) in nl.bridge_vlan_list(port.index)
    shown = json.loads(
        subprocess.run(
            ["bridge", "-n", host_ns.name, "-json", "vlan", "show", "dev", a],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    vids = {v["vlan"]: v.get("flags", []) for v in shown[0]["vlans"]}
    assert set(vids[100]) == {"PVID", "Egress Untagged"}
    nl.bridge_vlan_del(port.index, 100)
    assert all(v != 100 for v, _ in nl.bridge_vlan_list(port.index))


def test_bridge_vlan_list_without_vlans(nl, ifname):
    br, a, b = ifname("bl"), ifname("la"), ifname("lb")
    nl.link_add_bridge(br)
    nl.link_add_veth(a, b)
    nl.link_set(nl.link_get(a), master=nl.link_get(br).index)
    assert nl.bridge_vlan_list(nl.link_get(a).index) in ([], [(1, 6)])


def test_bridge_port_flags(nl, host_ns, ifname):
    br, a, b = ifname("bh"), ifname("ha"), ifname("hb")
    nl.link_add_bridge(br)
    nl.link_add_veth(a, b)
    port = nl.link_get(a)
    nl.link_set(port, master=nl.link_get(br).index)

    nl.bridge_port_set(port.index, hairpin=True, isolated=True, learning=False)
    got = nl.link_get(a).brport
    assert (got["hairpin"], got["isolated"], got["learning"]) == (True, True, False)
    slave = ipl(a, host_ns)["linkinfo"]["info_slave_data"]
    assert (slave["hairpin"], slave["isolated"], slave["learning"]) == (True, True, False)
    # the list path decodes the same data
    (listed,) = [x for x in nl.link_list() if x.name == a]
    assert listed.brport == got

    nl.bridge_port_set(port, hairpin=False, isolated=False, learning=True)
    got = nl.link_get(a).brport
    assert (got["hairpin"], got["isolated"], got["learning"]) == (False, False, True)
    slave = ipl(a, host_ns)["linkinfo"]["info_slave_data"]
    assert (slave["hairpin"], slave["isolated"], slave["learning"]) == (False, False, True)


def test_bridge_port_set_on_non_port_fails(nl, ifname):
    a = ifname("np")
    nl.link_add_veth(a, ifname("nq"))
    with pytest.raises(NetlinkError) as ei:
        nl.bridge_port_set(nl.link_get(a).index, hairpin=True)
    assert ei.value.errno in (errno.EOPNOTSUPP, errno.EINVAL)


# --- link_set attributes ----------------------------------------------------------


def test_up_down_and_operstate(nl, host_ns, ifname):
    a, b = ifname("ua"), ifname("ub")
    nl.link_add_veth(a, b)
    la = nl.link_get(a)
    assert not la.up
    nl.link_set(la, up=True)
    la = nl.link_get(a)
    assert la.up and not la.oper_up  # peer still down
    assert "UP" in ipl(a, host_ns)["flags"]
    nl.link_set(nl.link_get(b), up=True)
    la = nl.link_get(a)
    assert la.oper_up and la.operstate == IF_OPER_UP
    assert ipl(a, host_ns)["operstate"] == "UP"
    nl.link_set(la.index, up=False)
    la = nl.link_get(a)
    assert not la.up and not la.oper_up
    assert "UP" not in ipl(a, host_ns)["flags"]


def test_mtu_mac_alias_promisc_allmulti_txqlen(nl, host_ns, ifname):
    a = ifname("ma")
    nl.link_add_veth(a, ifname("mb"))
    link = nl.link_get(a)
    nl.link_set(
        link,
        mtu=1280,
        mac="02:00:00:00:12:34",
        alias="pycni test",
        promisc=True,
        allmulti=True,
        txqlen=77,
    )
    link = nl.link_get(a)
    assert (link.mtu, link.mac, link.alias) == (1280, "02:00:00:00:12:34", "pycni test")
    assert link.promisc and link.txqlen == 77
    j = ipl(a, host_ns)
    assert (j["mtu"], j["address"], j["ifalias"], j["txqlen"]) == (
        1280,
        "02:00:00:00:12:34",
        "pycni test",
        77,
    )
    assert "PROMISC" in j["flags"] and "ALLMULTI" in j["flags"]

    nl.link_set(link, promisc=False, allmulti=False, alias="")
    link = nl.link_get(a)
    assert not link.promisc and link.alias == ""
    j = ipl(a, host_ns)
    assert "PROMISC" not in j["flags"] and "ALLMULTI" not in j["flags"]
    assert "ifalias" not in j


def test_invalid_mtu_is_einval(nl, ifname):
    a = ifname("mi")
    nl.link_add_veth(a, ifname("mj"))
    with pytest.raises(NetlinkError) as ei:
        nl.link_set(nl.link_get(a), mtu=10)
    assert ei.value.errno == errno.EINVAL


def test_rename(nl, host_ns, ifname):
    a, new = ifname("ra"), ifname("rn")
    nl.link_add_veth(a, ifname("rb"))
    idx = nl.link_get(a).index
    nl.link_set(idx, name=new)
    assert nl.link_find(a) is None
    assert nl.link_get(new).index == idx
    assert ipl(new, host_ns)["ifindex"] == idx
    # a name that exists already
    other = ifname("ro")
    nl.link_add_bridge(other)
    with pytest.raises(NetlinkError) as ei:
        nl.link_set(idx, name=other)
    assert ei.value.errno == errno.EEXIST


@pytest.mark.parametrize("by_fd", [False, True])
def test_move_to_netns(nl, host_ns, container_ns, ifname, by_fd):
    a, b, renamed = ifname("mv"), ifname("mw"), ifname("mr")
    nl.link_add_veth(a, b)
    link = nl.link_get(a)
    if by_fd:
        fd = netns.open_netns(container_ns.path)
        try:
            nl.link_set(link, netns=fd, name=renamed)
        finally:
            os.close(fd)
    else:
        nl.link_set(link, netns=container_ns.path, name=renamed)
    assert nl.link_find(a) is None and nl.link_find(renamed) is None
    assert a not in ip_names(host_ns)
    assert renamed in ip_names(container_ns)
    with RtNetlink(netns=container_ns.path) as cnl:
        moved = cnl.link_get(renamed)
        assert moved.kind == "veth" and moved.link_netnsid is not None
        assert moved.link == nl.link_get(b).index
        # and back again, under the old name
        cnl.link_set(moved, netns=host_ns.path, name=a)
    assert nl.link_get(a).link == nl.link_get(b).index


# --- other kinds -------------------------------------------------------------------------


def test_macvlan_in_other_netns(nl, host_ns, container_ns, ifname):
    parent, peer, mv = ifname("mp"), ifname("mq"), ifname("mv")
    nl.link_add_veth(parent, peer)
    p = nl.link_get(parent)
    try:
        nl.link_add(
            "macvlan",
            mv,
            parent=p.index,
            netns=container_ns.path,
            mtu=1400,
            data={"mode": "bridge"},
        )
    except NetlinkError as e:
        _skip_if_unsupported(e, "macvlan")
        raise
    assert nl.link_find(mv) is None
    with RtNetlink(netns=container_ns.path) as cnl:
        link = cnl.link_get(mv)
    assert (link.kind, link.mtu, link.data) == ("macvlan", 1400, {"mode": "bridge"})
    assert link.link == p.index and link.link_netnsid is not None
    j = ipl(mv, container_ns)
    assert j["linkinfo"]["info_kind"] == "macvlan"
    assert j["linkinfo"]["info_data"]["mode"] == "bridge"


def test_link_add_missing_parent(nl, ifname):
    with pytest.raises(NetlinkError) as ei:
        nl.link_add("macvlan", ifname("mx"), parent=999999, data={"mode": "bridge"})
    assert ei.value.errno in (errno.ENODEV, errno.EINVAL)


@pytest.mark.parametrize(
    ("kind", "data", "ip_data"),
    [
        ("dummy", None, {}),
        ("ipvlan", {"mode": "l3", "flags": "private"}, {"mode": "l3", "private": True}),
        ("vlan", {"id": 100}, {"protocol": "802.1Q", "id": 100}),
        ("vrf", {"table": 1001}, {"table": 1001}),
    ],
)
def test_kinds_this_kernel_may_lack(nl, host_ns, ifname, kind, data, ip_data):
    parent = None
    if kind in ("ipvlan", "vlan"):
        pname = ifname("pp")
        nl.link_add_veth(pname, ifname("pq"))
        parent = nl.link_get(pname).index
    name = ifname(kind[:3])
    try:
        nl.link_add(kind, name, parent=parent, data=data)
    except NetlinkError as e:
        _skip_if_unsupported(e, f"link kind {kind!r}")
        raise
    link = nl.link_get(name)
    assert link.kind == kind
    if parent:
        assert link.link == parent
    info = ipl(name, host_ns)["linkinfo"]
    assert info["info_kind"] == kind
    for k, v in ip_data.items():
        assert info["info_data"][k] == v


# --- big dumps --------------------------------------------------------------------------


def test_dump_of_many_links_is_multipart(nl, host_ns, ifname, monkeypatch):
    """120 veth ends make a dump far larger than one netlink datagram."""
    pairs = 60
    names = set()
    for i in range(pairs):
        a, b = f"pyc{i}a{os.urandom(2).hex()}", f"pyc{i}b{os.urandom(2).hex()}"
        nl.link_add_veth(a, b)
        names |= {a, b}
    calls = []
    orig = nl._recv

    def counting():
        msgs = orig()
        calls.append(len(msgs))
        return msgs

    monkeypatch.setattr(nl, "_recv", counting)
    links = nl.link_list()
    monkeypatch.undo()
    assert len(calls) > 1  # the kernel answered in several parts
    got = {x.name for x in links}
    assert names <= got
    assert got == ip_names(host_ns)
    assert len({x.index for x in links}) == len(links) == 2 * pairs + 1
    # peers are consistent
    by_index = {x.index: x for x in links}
    for x in links:
        if x.kind == "veth":
            assert by_index[x.link].link == x.index
