"""The vrf plugin's logic against a stand-in netlink (support.vrf): this
kernel has no VRF links, so what ADD, DEL and CHECK do to links, addresses
and routes is held here against the kernel behaviour the stand-in models."""

from __future__ import annotations

import pytest

from pycni.plugins.meta.vrf import routing
from pycni.plugins.pkg.transaction import add_transaction
from pycni.spec.errors import CNIError

from support.vrf import MAIN, FakeNetlink, route

NS = "/run/netns/vr-fake"


def container(nl: FakeNetlink, name: str = "eth0", v6: bool = True):
    """An interface as an interface plugin leaves it: addresses, a
    connected route (scope link), a default and a static route."""
    link = nl.add_link(name)
    nl.add_addr(link.index, "198.18.30.2/24")
    nl.routes.append(route("198.18.30.0/24", link.index, scope=253))
    nl.routes.append(route(None, link.index, gateway="198.18.30.1", family=2))
    nl.routes.append(route("198.19.0.0/16", link.index, gateway="198.18.30.1"))
    if v6:
        nl.add_addr(link.index, "fd00:30::2/64")
        nl.add_addr(link.index, "fe80::1/64", scope=253)
        nl.routes.append(route("fd00:30::/64", link.index))  # IPv6: scope universe
    return link


def add(nl: FakeNetlink, name: str = "vrf-blue", table: int = 0, ifname: str = "eth0"):
    with add_transaction("vrf ADD") as undo:
        vrf = routing.ensure_vrf(nl, name, table, NS, undo)
        routing.add_interface(nl, vrf, ifname, NS, undo)
    return vrf


def test_add_creates_the_vrf_enslaves_and_moves_routes():
    nl = FakeNetlink()
    eth0 = container(nl)
    vrf = add(nl, table=100)
    assert vrf.kind == "vrf" and vrf.data == {"table": 100} and vrf.flags == 1
    assert eth0.master == vrf.index
    moved = sorted(
        (r.dst or "default", r.gateway) for r in nl.routes if r.table == 100 and r.scope == 0
    )
    assert moved == [
        ("198.19.0.0/16", "198.18.30.1"),
        ("default", "198.18.30.1"),
        ("fd00:30::/64", None),
    ]
    assert [r for r in nl.routes if r.table == MAIN] == []
    # the global IPv6 address the kernel dropped is back, the link-local is not re-added
    v6 = sorted(a.address for a in nl.addr_list(eth0.index, 10))
    assert v6 == ["fd00:30::2", "fe80::1"]
    assert any(r.dst == "fd00:30::2/128" and r.table == 100 for r in nl.routes)


def test_keep_addr_on_down_needs_no_restore():
    nl = FakeNetlink(keep_addr_on_down=True)
    container(nl)
    add(nl, table=7)
    assert not [c for c in nl.calls if c.startswith("addr_add")]


def test_free_table_is_the_lowest_not_used_by_a_vrf():
    nl = FakeNetlink()
    nl.add_link("vrf-a", "vrf", table=1)
    nl.add_link("vrf-b", "vrf", table=3)
    nl.add_link("br0", "bridge")
    container(nl, v6=False)
    vrf = add(nl, "vrf-c")
    assert vrf.data == {"table": 2}


def test_existing_vrf_is_shared_and_its_table_checked():
    nl = FakeNetlink()
    container(nl, "eth0", v6=False)
    container(nl, "eth1", v6=False)
    first = add(nl, table=10, ifname="eth0")
    second = add(nl, table=10, ifname="eth1")  # same VRF, same table: fine
    assert first.index == second.index
    assert [c for c in nl.calls if c.startswith("link_add")] == ["link_add vrf vrf-blue"]
    container(nl, "eth2", v6=False)
    with pytest.raises(
        CNIError, match="VRF vrf-blue already exist with different routing table 10"
    ):
        add(nl, table=11, ifname="eth2")
    assert nl.by_name("eth2").master == 0
    add(nl, table=0, ifname="eth2")  # no table configured: any existing one will do


def test_a_link_of_another_kind_is_refused():
    nl = FakeNetlink()
    container(nl, v6=False)
    nl.add_link("vrf-blue", "bridge")
    with pytest.raises(CNIError, match="Netlink vrf-blue is not a VRF"):
        add(nl)


def test_interface_with_a_master_is_refused_and_the_new_vrf_removed():
    nl = FakeNetlink()
    eth0 = container(nl, v6=False)
    br = nl.add_link("br0", "bridge")
    eth0.master = br.index
    with pytest.raises(CNIError, match="interface eth0 has already a master set: br0"):
        add(nl)
    assert nl.by_name("vrf-blue") is None


def test_missing_interface():
    nl = FakeNetlink()
    with pytest.raises(CNIError, match="could not get link by name eth0"):
        add(nl)
    assert nl.by_name("vrf-blue") is None


def test_failure_after_enslaving_is_rolled_back():
    nl = FakeNetlink()
    eth0 = container(nl)
    before = sorted((r.dst or "default", r.gateway, r.table) for r in nl.routes if r.scope == 0)
    nl.fail_on = "route_add 198.19.0.0/16 table 5 "
    with pytest.raises(CNIError, match=r"could not add route '198\.19\.0\.0/16"):
        add(nl, table=5)
    assert nl.by_name("vrf-blue") is None
    assert eth0.master == 0
    after = sorted(
        (r.dst or "default", r.gateway, r.table) for r in nl.routes if r.scope == 0 and r.table
    )
    assert [x for x in after if x[2] == MAIN] == before
    assert "fd00:30::2" in [a.address for a in nl.addr_list(eth0.index)]


def test_no_vrf_support_is_named():
    nl = FakeNetlink(vrf_supported=False)
    eth0 = container(nl)
    with pytest.raises(CNIError) as info:
        add(nl)
    assert "this kernel has no VRF support (CONFIG_NET_VRF" in info.value.msg
    assert info.value.code == 999
    assert eth0.master == 0 and nl.by_name("vrf-blue") is None


def test_restored_address_whose_route_never_shows_up(monkeypatch):
    nl = FakeNetlink()
    container(nl)
    monkeypatch.setattr(routing, "WAIT_BASE_S", 0.0001)
    real = nl.addr_add

    def no_route(link, cidr, **kw):
        nl.links[getattr(link, "index", link)].master, master = 0, nl.links[link.index].master
        real(link, cidr)
        nl.links[link.index].master = master

    nl.addr_add = no_route  # type: ignore[method-assign]
    with pytest.raises(CNIError, match="failed getting local/host addresses for eth0 in table"):
        add(nl, table=9)
    assert nl.by_name("vrf-blue") is None


def test_del_releases_and_deletes_the_vrf_with_its_last_member():
    nl = FakeNetlink()
    eth0, eth1 = container(nl, "eth0", v6=False), container(nl, "eth1", v6=False)
    vrf = add(nl, ifname="eth0")
    add(nl, ifname="eth1")
    routing.remove_interface(nl, "vrf-blue", "eth0")
    assert eth0.master == 0 and eth1.master == vrf.index
    assert nl.by_name("vrf-blue") is not None
    routing.remove_interface(nl, "vrf-blue", "eth1")
    assert nl.by_name("vrf-blue") is None
    routing.remove_interface(nl, "vrf-blue", "eth1")  # twice: nothing to do


def test_del_when_the_interface_is_gone_still_deletes_an_empty_vrf():
    nl = FakeNetlink()
    eth0 = container(nl, v6=False)
    add(nl)
    del nl.links[eth0.index]
    routing.remove_interface(nl, "vrf-blue", "eth0")
    assert nl.by_name("vrf-blue") is None


def test_del_leaves_links_that_are_not_its_own_alone():
    nl = FakeNetlink()
    nl.add_link("vrf-blue", "bridge")
    eth0 = container(nl, v6=False)
    other = nl.add_link("vrf-red", "vrf", table=3)
    eth0.master = other.index
    routing.remove_interface(nl, "vrf-blue", "eth0")  # not a VRF: untouched
    vrf = nl.add_link("vrf-green", "vrf", table=4)
    routing.remove_interface(nl, "vrf-green", "eth0")  # eth0 is vrf-red's: untouched
    assert eth0.master == other.index
    assert nl.by_name("vrf-blue") is not None and nl.by_name("vrf-green") is None
    assert vrf.index not in nl.links


def test_check():
    nl = FakeNetlink()
    container(nl, "eth0", v6=False)
    container(nl, "eth1", v6=False)
    add(nl, table=10)
    routing.check_interface(nl, "vrf-blue", "eth0", 10)
    routing.check_interface(nl, "vrf-blue", "eth0", 0)
    with pytest.raises(CNIError, match="failed to find eth1 associated to vrf vrf-blue"):
        routing.check_interface(nl, "vrf-blue", "eth1", 0)
    with pytest.raises(CNIError, match="has routing table 10, configured 11"):
        routing.check_interface(nl, "vrf-blue", "eth0", 11)
    with pytest.raises(CNIError, match="VRF vrf-red not found"):
        routing.check_interface(nl, "vrf-red", "eth0", 0)
