"""Routes against the real kernel, read back through RtNetlink and `ip -json route`."""

from __future__ import annotations

import errno

import pytest

from pycni.kernel import addr as A
from pycni.kernel import netlink as nlmod
from pycni.kernel import route as R
from pycni.kernel.netlink import NetlinkError, RtNetlink

from support import sandbox

V4, V6 = nlmod.AF_INET, nlmod.AF_INET6


def ipr(ns, *args: str, v6: bool = False) -> list[dict]:
    return sandbox.ip_json(*(["-6"] if v6 else []), "route", "show", *args, netns=ns.name)


def ipr_dst(ns, dst: str, *args: str, v6: bool = False) -> list[dict]:
    return [r for r in ipr(ns, *args, v6=v6) if r["dst"] == dst]


@pytest.fixture
def link(nl, container_ns, ifname):
    """An UP veth end with 198.18.0.2/24 and fd00::2/64, its peer UP in the container."""
    a, b = ifname("ra"), ifname("rb")
    nl.link_add_veth(a, b, peer_netns=container_ns.path)
    with RtNetlink(netns=container_ns.path) as cnl:
        cnl.link_set(cnl.link_get(b), up=True)
    lk = nl.link_get(a)
    nl.addr_add(lk.index, "198.18.0.2/24")
    nl.addr_add(lk.index, "fd00::2/64", flags=A.IFA_F_NODAD)
    nl.link_set(lk, up=True)
    return nl.link_get(a)


def mine(nl, dst: str, family: int = 0, table: int | None = None) -> list[R.Route]:
    return [r for r in nl.route_list(family, table) if r.dst == dst]


def test_add_list_del_main(nl, host_ns, link):
    nl.route_add("198.18.10.0/24", gateway="198.18.0.1")
    (r,) = mine(nl, "198.18.10.0/24", V4)
    assert (r.family, r.gateway, r.oif, r.table) == (V4, "198.18.0.1", link.index, 254)
    assert (r.protocol, r.scope, r.type) == (R.RTPROT_BOOT, R.RT_SCOPE_UNIVERSE, R.RTN_UNICAST)
    (j,) = ipr_dst(host_ns, "198.18.10.0/24")
    assert (j["gateway"], j["dev"]) == ("198.18.0.1", link.name)
    # the connected route from the address is there as well, protocol kernel, scope link
    (c,) = mine(nl, "198.18.0.0/24", V4)
    assert (c.protocol, c.scope, c.prefsrc) == (R.RTPROT_KERNEL, R.RT_SCOPE_LINK, "198.18.0.2")

    nl.route_del("198.18.10.0/24", gateway="198.18.0.1")
    assert mine(nl, "198.18.10.0/24") == []
    assert ipr_dst(host_ns, "198.18.10.0/24") == []


def test_v6_route_and_list_family(nl, host_ns, link):
    nl.route_add("fd00:10::/64", gateway="fd00::1", oif=link.index)
    (r,) = mine(nl, "fd00:10::/64", V6)
    assert (r.gateway, r.oif, r.priority) == ("fd00::1", link.index, 1024)
    (j,) = ipr_dst(host_ns, "fd00:10::/64", v6=True)
    assert (j["gateway"], j["dev"], j["metric"]) == ("fd00::1", link.name, 1024)
    assert all(r.family == V6 for r in nl.route_list(V6))
    assert all(r.family == V4 for r in nl.route_list(V4))
    assert {V4, V6} <= {r.family for r in nl.route_list()}
    nl.route_del("fd00:10::/64")
    assert mine(nl, "fd00:10::/64") == []


def test_host_bits_are_masked(nl, host_ns, link):
    nl.route_add("198.18.20.77/24", gateway="198.18.0.1")
    assert len(mine(nl, "198.18.20.0/24")) == 1
    nl.route_del("198.18.20.5/24")
    assert mine(nl, "198.18.20.0/24") == []


@pytest.mark.parametrize("table", [100, 1000])
def test_other_table(nl, host_ns, link, table):
    nl.route_add("198.18.30.0/24", gateway="198.18.0.1", table=table)
    nl.route_add("fd00:30::/64", gateway="fd00::1", table=table)
    # like the reference, the default listing is the main table only
    assert mine(nl, "198.18.30.0/24") == []
    (r,) = mine(nl, "198.18.30.0/24", table=table)
    assert r.table == table and r.gateway == "198.18.0.1"
    assert [x.table for x in mine(nl, "198.18.30.0/24", table=0)] == [table]
    assert {x.table for x in nl.route_list(table=table)} == {table}
    assert len(mine(nl, "fd00:30::/64", V6, table)) == 1
    # table 0 lists every table, the local one included
    assert R.RT_TABLE_LOCAL in {x.table for x in nl.route_list(table=0)}
    (j,) = ipr_dst(host_ns, "198.18.30.0/24", "table", str(table))
    assert j["gateway"] == "198.18.0.1"
    assert ipr_dst(host_ns, "198.18.30.0/24") == []

    nl.route_del("198.18.30.0/24", table=table)
    nl.route_del("fd00:30::/64", table=table)
    assert mine(nl, "198.18.30.0/24", table=0) == []
    assert mine(nl, "fd00:30::/64", table=0) == []


def test_scope_link_route(nl, host_ns, link):
    nl.route_add("198.18.40.0/24", oif=link.index, scope="link")
    (r,) = mine(nl, "198.18.40.0/24")
    assert r.scope == R.RT_SCOPE_LINK and r.gateway is None and r.oif == link.index
    (j,) = ipr_dst(host_ns, "198.18.40.0/24")
    assert j["scope"] == "link" and j["dev"] == link.name and "gateway" not in j


def test_onlink(nl, host_ns, link):
    with pytest.raises(NetlinkError) as ei:  # gateway outside every connected subnet
        nl.route_add("198.18.50.0/24", gateway="198.19.0.1", oif=link.index)
    assert ei.value.errno == errno.ENETUNREACH
    nl.route_add("198.18.50.0/24", gateway="198.19.0.1", oif=link.index, onlink=True)
    (r,) = mine(nl, "198.18.50.0/24")
    assert r.flags & R.RTNH_F_ONLINK and r.gateway == "198.19.0.1"
    (j,) = ipr_dst(host_ns, "198.18.50.0/24")
    assert "onlink" in j["flags"]


def test_priority_and_metrics(nl, host_ns, link):
    nl.route_add("198.18.60.0/24", gateway="198.18.0.1", priority=50, mtu=1300, advmss=1200)
    nl.route_add("198.18.60.0/24", gateway="198.18.0.1", priority=60)
    rs = sorted(mine(nl, "198.18.60.0/24"), key=lambda r: r.priority)
    assert [(r.priority, r.mtu, r.advmss) for r in rs] == [(50, 1300, 1200), (60, 0, 0)]
    js = sorted(ipr_dst(host_ns, "198.18.60.0/24"), key=lambda j: j["metric"])
    assert [j["metric"] for j in js] == [50, 60]
    assert js[0]["metrics"] == [{"mtu": 1300, "advmss": 1200}]
    nl.route_del("198.18.60.0/24", priority=60)
    assert [r.priority for r in mine(nl, "198.18.60.0/24")] == [50]


def test_replace(nl, host_ns, link):
    nl.route_add("198.18.70.0/24", gateway="198.18.0.1")
    nl.route_add("198.18.70.0/24", gateway="198.18.0.3", replace=True)
    assert [r.gateway for r in mine(nl, "198.18.70.0/24")] == ["198.18.0.3"]
    assert [j["gateway"] for j in ipr_dst(host_ns, "198.18.70.0/24")] == ["198.18.0.3"]
    # replace also creates
    nl.route_add("198.18.71.0/24", gateway="198.18.0.1", replace=True)
    assert len(mine(nl, "198.18.71.0/24")) == 1


def test_identical_route_is_eexist(nl, link):
    nl.route_add("198.18.80.0/24", gateway="198.18.0.1")
    with pytest.raises(NetlinkError) as ei:
        nl.route_add("198.18.80.0/24", gateway="198.18.0.1")
    assert ei.value.errno == errno.EEXIST
    assert str(ei.value) == "add route 198.18.80.0/24 via 198.18.0.1: File exists"
    nl.route_add("fd00:80::/64", gateway="fd00::1")
    with pytest.raises(NetlinkError) as ei:
        nl.route_add("fd00:80::/64", gateway="fd00::1")
    assert ei.value.errno == errno.EEXIST


def test_ecmp_v4_without_excl_keeps_two_entries(nl, host_ns, link):
    nl.route_add("198.18.90.0/24", gateway="198.18.0.1")
    nl.route_add("198.18.90.0/24", gateway="198.18.0.3")
    assert sorted(r.gateway for r in mine(nl, "198.18.90.0/24")) == ["198.18.0.1", "198.18.0.3"]
    js = ipr_dst(host_ns, "198.18.90.0/24")
    assert sorted(j["gateway"] for j in js) == ["198.18.0.1", "198.18.0.3"]
    # with EXCL the second one is refused
    with pytest.raises(NetlinkError) as ei:
        nl.route_add("198.18.90.0/24", gateway="198.18.0.4", exclusive=True)
    assert ei.value.errno == errno.EEXIST
    # delete exactly one of them
    nl.route_del("198.18.90.0/24", gateway="198.18.0.1")
    assert [r.gateway for r in mine(nl, "198.18.90.0/24")] == ["198.18.0.3"]


def test_ecmp_v6_merges_into_multipath(nl, host_ns, link):
    nl.route_add("fd00:90::/64", gateway="fd00::1")
    nl.route_add("fd00:90::/64", gateway="fd00::3")
    (r,) = mine(nl, "fd00:90::/64", V6)
    assert sorted(r.multipath) == [("fd00::1", link.index), ("fd00::3", link.index)]
    (j,) = ipr_dst(host_ns, "fd00:90::/64", v6=True)
    assert sorted(h["gateway"] for h in j["nexthops"]) == ["fd00::1", "fd00::3"]
    with pytest.raises(NetlinkError) as ei:
        nl.route_add("fd00:90::/64", gateway="fd00::4", exclusive=True)
    assert ei.value.errno == errno.EEXIST


def test_multipath_add(nl, host_ns, link):
    nl.route_add(
        "198.18.95.0/24", multipath=[("198.18.0.1", link.index), ("198.18.0.3", link.index)]
    )
    (r,) = mine(nl, "198.18.95.0/24")
    assert r.gateway is None
    assert r.multipath == [("198.18.0.1", link.index), ("198.18.0.3", link.index)]
    (j,) = ipr_dst(host_ns, "198.18.95.0/24")
    assert [h["gateway"] for h in j["nexthops"]] == ["198.18.0.1", "198.18.0.3"]


@pytest.mark.parametrize(
    ("dst", "gw", "fam"),
    [(None, "198.18.0.1", V4), ("0.0.0.0/0", "198.18.0.1", V4), ("::/0", "fd00::1", V6)],
)
def test_default_route_and_get(nl, host_ns, link, dst, gw, fam):
    nl.route_add(dst, gateway=gw)
    (r,) = [x for x in nl.route_list(fam) if x.dst is None]
    assert r.is_default and r.gateway == gw and r.oif == link.index
    (j,) = [x for x in ipr(host_ns, v6=fam == V6) if x["dst"] == "default"]
    assert j["gateway"] == gw
    target = "198.19.1.1" if fam == V4 else "fd01::1"
    got = nl.route_get(target)
    assert (got.gateway, got.oif) == (gw, link.index)
    (jg,) = sandbox.ip_json("route", "get", target, netns=host_ns.name)
    assert jg["gateway"] == gw and jg["dev"] == link.name
    nl.route_del(dst, gateway=gw, family=fam)
    assert [x for x in nl.route_list(fam) if x.dst is None] == []


def test_route_get_connected(nl, link):
    r = nl.route_get("198.18.0.9")
    assert r.gateway is None and r.oif == link.index and r.prefsrc == "198.18.0.2"
    with pytest.raises(NetlinkError) as ei:
        nl.route_get("198.19.200.1")  # no default route
    assert ei.value.errno == errno.ENETUNREACH


def test_route_del_missing_is_esrch(nl, link):
    with pytest.raises(NetlinkError) as ei:
        nl.route_del("198.18.99.0/24")
    assert ei.value.errno == errno.ESRCH
    with pytest.raises(NetlinkError) as ei:
        nl.route_del("fd00:99::/64")
    assert ei.value.errno == errno.ESRCH
