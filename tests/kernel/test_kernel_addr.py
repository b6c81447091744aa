"""Addresses and the DAD wait against the real kernel, read back through `ip -json`."""

from __future__ import annotations

import errno
import time

import pytest

from pycni.kernel import addr as A
from pycni.kernel import netlink as nlmod
from pycni.kernel import sysctl
from pycni.kernel.netlink import LinkNotFound, NetlinkError, RtNetlink

from support import sandbox


def ipa(name: str, ns) -> list[dict]:
    (out,) = sandbox.ip_json("addr", "show", "dev", name, netns=ns.name)
    return out.get("addr_info", [])


def by_local(infos: list[dict]) -> dict:
    return {f"{x['local']}/{x['prefixlen']}": x for x in infos}


@pytest.fixture
def veth(nl, ifname):
    """An (up) veth end in the sandbox host netns; its peer stays down."""
    a, b = ifname("aa"), ifname("ab")
    nl.link_add_veth(a, b)
    link = nl.link_get(a)
    nl.link_set(link, up=True)
    return nl.link_get(a)


def test_v4_add_list_del(nl, host_ns, veth):
    nl.addr_add(veth.index, "198.18.0.2/24")
    nl.addr_add(veth, "198.18.1.2/32", scope="link", label=f"{veth.name}:x")
    (a1,) = [x for x in nl.addr_list(veth.index) if x.cidr == "198.18.0.2/24"]
    assert (a1.family, a1.address, a1.prefixlen, a1.index) == (
        nlmod.AF_INET,
        "198.18.0.2",
        24,
        veth.index,
    )
    assert a1.broadcast == "198.18.0.255"
    assert a1.scope == A.RT_SCOPE_UNIVERSE and a1.label == veth.name
    assert a1.flags & A.IFA_F_PERMANENT and not a1.tentative
    (a2,) = [x for x in nl.addr_list(veth.index) if x.cidr == "198.18.1.2/32"]
    assert a2.scope == A.RT_SCOPE_LINK and a2.label == f"{veth.name}:x"

    j = by_local(ipa(veth.name, host_ns))
    assert j["198.18.0.2/24"]["broadcast"] == "198.18.0.255"
    assert j["198.18.0.2/24"]["scope"] == "global"
    assert j["198.18.1.2/32"]["scope"] == "link"
    assert j["198.18.1.2/32"]["label"] == f"{veth.name}:x"

    nl.addr_del(veth.index, "198.18.0.2/24")
    assert "198.18.0.2/24" not in {x.cidr for x in nl.addr_list(veth.index)}
    assert "198.18.0.2/24" not in by_local(ipa(veth.name, host_ns))


def test_v6_add_with_flags(nl, host_ns, veth):
    flags = A.IFA_F_NODAD | A.IFA_F_NOPREFIXROUTE
    nl.addr_add(veth.index, "fd00:1::2/64", flags=flags)
    (a,) = [x for x in nl.addr_list(veth.index, nlmod.AF_INET6) if x.address == "fd00:1::2"]
    assert a.cidr == "fd00:1::2/64" and a.family == nlmod.AF_INET6
    assert a.flags & flags == flags  # IFA_FLAGS (32 bits) is read, not just the u8
    assert not a.tentative and not a.dadfailed
    j = by_local(ipa(veth.name, host_ns))["fd00:1::2/64"]
    assert j.get("nodad") is True and j.get("noprefixroute") is True
    # noprefixroute: no fd00:1::/64 route was added
    assert "fd00:1::/64" not in {r.dst for r in nl.route_list(nlmod.AF_INET6)}

    nl.addr_del(veth, "fd00:1::2/64")
    assert "fd00:1::2" not in {x.address for x in nl.addr_list(veth.index)}


def test_addr_list_filters(nl, veth, ifname):
    other = ifname("af")
    nl.link_add_veth(other, ifname("ag"))
    o = nl.link_get(other)
    nl.addr_add(veth.index, "198.18.2.1/24")
    nl.addr_add(o.index, "198.18.3.1/24")
    nl.addr_add(o.index, "fd00:3::1/64", flags=A.IFA_F_NODAD)
    assert {x.cidr for x in nl.addr_list(o.index, nlmod.AF_INET)} == {"198.18.3.1/24"}
    assert "fd00:3::1/64" in {x.cidr for x in nl.addr_list(o.index, nlmod.AF_INET6)}
    assert all(x.family == nlmod.AF_INET for x in nl.addr_list(family=nlmod.AF_INET))
    everything = {(x.index, x.cidr) for x in nl.addr_list()}
    assert {(veth.index, "198.18.2.1/24"), (o.index, "198.18.3.1/24")} <= everything
    assert (1, "127.0.0.1/8") in everything


def test_addr_errors(nl, veth):
    nl.addr_add(veth.index, "198.18.4.1/24")
    with pytest.raises(NetlinkError) as ei:
        nl.addr_add(veth, "198.18.4.1/24")  # a Link names itself in the message
    assert ei.value.errno == errno.EEXIST
    assert str(ei.value) == f"add address 198.18.4.1/24 to link {veth.name}: File exists"
    with pytest.raises(NetlinkError) as ei:
        nl.addr_del(veth.index, "198.18.9.9/24")
    assert ei.value.errno == errno.EADDRNOTAVAIL
    with pytest.raises(LinkNotFound):
        nl.addr_add(999999, "198.18.4.2/24")
    with pytest.raises(ValueError):
        nl.addr_add(veth.index, "198.18.4.300/24")


# --- DAD --------------------------------------------------------------------------------


def _fast_dad(name: str) -> None:
    # one NS 100 ms after a short random delay keeps the tests quick
    sysctl.set(f"net/ipv6/neigh/{name}/retrans_time_ms", "100")
    sysctl.set(f"net/ipv6/conf/{name}/router_solicitation_delay", "0")


@pytest.fixture
def up_pair(nl, container_ns, ifname):
    """A veth pair with both ends UP: host end here, peer in the container netns."""
    a, b = ifname("da"), ifname("db")
    nl.link_add_veth(a, b, peer_netns=container_ns.path)
    _fast_dad(a)
    with RtNetlink(netns=container_ns.path) as cnl:
        cnl.link_set(cnl.link_get(b), up=True)
    nl.link_set(nl.link_get(a), up=True)
    return nl.link_get(a), b


def test_wait_dad_nodad_is_immediate(nl, up_pair):
    link, _ = up_pair
    nl.wait_dad(link.index)  # let the link-local address settle first
    nl.addr_add(link.index, "fd00:5::1/64", flags=A.IFA_F_NODAD)
    t0 = time.monotonic()
    nl.wait_dad(link.index)
    assert time.monotonic() - t0 < 0.2
    (a,) = [x for x in nl.addr_list(link.index) if x.address == "fd00:5::1"]
    assert not a.tentative


def test_wait_dad_waits_for_tentative(nl, host_ns, up_pair):
    link, _ = up_pair
    nl.addr_add(link.index, "fd00:6::1/64")
    (a,) = [x for x in nl.addr_list(link.index) if x.address == "fd00:6::1"]
    assert a.tentative
    assert by_local(ipa(link.name, host_ns))["fd00:6::1/64"].get("tentative") is True
    nl.wait_dad(link.index, timeout=5.0)
    (a,) = [x for x in nl.addr_list(link.index) if x.address == "fd00:6::1"]
    assert not a.tentative and not a.dadfailed
    assert "tentative" not in by_local(ipa(link.name, host_ns))["fd00:6::1/64"]


def test_wait_dad_fails_on_dadfailed(nl, container_ns, up_pair):
    link, peer = up_pair
    with RtNetlink(netns=container_ns.path) as cnl:
        cnl.addr_add(cnl.link_get(peer).index, "fd00:7::1/64", flags=A.IFA_F_NODAD)
    nl.addr_add(link.index, "fd00:7::1/64")  # the same address on our side: a duplicate
    with pytest.raises(NetlinkError) as ei:
        nl.wait_dad(link.index, timeout=5.0)
    assert "DADFAILED" in str(ei.value)
    assert f"link {link.name} has address fd00:7::1 in DADFAILED state" in str(ei.value)
    (a,) = [x for x in nl.addr_list(link.index) if x.address == "fd00:7::1"]
    assert a.dadfailed


def test_wait_dad_timeout_with_link_up_fails(nl, up_pair):
    link, _ = up_pair
    nl.wait_dad(link.index)
    sysctl.set(f"net/ipv6/conf/{link.name}/dad_transmits", "50")
    nl.addr_add(link.index, "fd00:8::1/64")
    with pytest.raises(NetlinkError) as ei:
        nl.wait_dad(link.index, timeout=0.3)
    assert ei.value.errno == errno.ETIMEDOUT
    assert "still has tentative addresses" in str(ei.value)


def test_wait_dad_timeout_with_link_down_is_ok(nl, veth):
    # peer down: operstate LOWERLAYERDOWN, the address stays tentative
    nl.addr_add(veth.index, "fd00:9::1/64")
    (a,) = [x for x in nl.addr_list(veth.index) if x.address == "fd00:9::1"]
    assert a.tentative
    assert not nl.link_get(index=veth.index).oper_up
    nl.wait_dad(veth.index, timeout=0.2)


def test_wait_dad_missing_link(nl):
    with pytest.raises(LinkNotFound):
        nl.wait_dad(999999, timeout=0.1)
