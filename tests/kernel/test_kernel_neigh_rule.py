"""Neighbours and policy rules against the real kernel, read back through `ip -json`."""

from __future__ import annotations

import errno

import pytest

from pycni.kernel import neigh as N
from pycni.kernel import netlink as nlmod
from pycni.kernel.netlink import NetlinkError

from support import sandbox

V4, V6 = nlmod.AF_INET, nlmod.AF_INET6


@pytest.fixture
def link(nl, ifname):
    a = ifname("na")
    nl.link_add_veth(a, ifname("nb"))
    nl.link_set(nl.link_get(a), up=True)
    return nl.link_get(a)


def ipn(ns, name: str) -> dict:
    return {x["dst"]: x for x in sandbox.ip_json("neigh", "show", "dev", name, netns=ns.name)}


def test_neigh_add_list_del(nl, host_ns, link):
    nl.neigh_add(link.index, "198.18.0.9", "02:00:00:00:00:09")
    nl.neigh_add(link, "fd00::9", "02:00:00:00:00:0a", permanent=False)
    got = {n.ip: n for n in nl.neigh_list(link.index)}
    n4, n6 = got["198.18.0.9"], got["fd00::9"]
    assert (n4.family, n4.mac, n4.index, n4.permanent) == (
        V4,
        "02:00:00:00:00:09",
        link.index,
        True,
    )
    assert n4.state == N.NUD_PERMANENT
    assert (n6.family, n6.mac) == (V6, "02:00:00:00:00:0a")
    assert not n6.permanent
    j = ipn(host_ns, link.name)
    assert j["198.18.0.9"]["lladdr"] == "02:00:00:00:00:09"
    assert "PERMANENT" in j["198.18.0.9"]["state"]
    assert j["fd00::9"]["lladdr"] == "02:00:00:00:00:0a"

    assert {n.ip for n in nl.neigh_list(link.index, V4)} == {"198.18.0.9"}
    assert "fd00::9" in {n.ip for n in nl.neigh_list(family=V6)}

    nl.neigh_del(link.index, "198.18.0.9")
    assert "198.18.0.9" not in {n.ip for n in nl.neigh_list(link.index)}
    assert "198.18.0.9" not in ipn(host_ns, link.name)


def test_neigh_duplicate_and_replace(nl, host_ns, link):
    nl.neigh_add(link.index, "198.18.0.10", "02:00:00:00:00:10")
    with pytest.raises(NetlinkError) as ei:
        nl.neigh_add(link.index, "198.18.0.10", "02:00:00:00:00:11")
    assert ei.value.errno == errno.EEXIST
    nl.neigh_add(link.index, "198.18.0.10", "02:00:00:00:00:11", replace=True)
    (n,) = [x for x in nl.neigh_list(link.index) if x.ip == "198.18.0.10"]
    assert n.mac == "02:00:00:00:00:11"
    assert ipn(host_ns, link.name)["198.18.0.10"]["lladdr"] == "02:00:00:00:00:11"
    with pytest.raises(NetlinkError) as ei:
        nl.neigh_del(link.index, "198.18.0.99")
    assert ei.value.errno == errno.ENOENT


# --- rules --------------------------------------------------------------------------


def ipru(ns, v6: bool = False) -> list[dict]:
    return sandbox.ip_json(*(["-6"] if v6 else []), "rule", "show", netns=ns.name)


def test_default_rules(nl, host_ns):
    v4 = {(r.priority, r.table) for r in nl.rule_list(V4)}
    assert v4 == {(0, 255), (32766, 254), (32767, 253)}
    v6 = {(r.priority, r.table) for r in nl.rule_list(V6)}
    assert v6 == {(0, 255), (32766, 254)}
    assert {r.family for r in nl.rule_list()} == {V4, V6}
    assert len(nl.rule_list()) == len(ipru(host_ns)) + len(ipru(host_ns, v6=True))


def test_rule_add_list_del_v4(nl, host_ns, link):
    nl.rule_add(family=V4, table=100, priority=100, src="198.18.0.5/32")
    nl.rule_add(family=V4, table=1000, priority=101, dst="198.18.8.0/24", iif=link.name)
    nl.rule_add(family=V4, table=101, priority=102, oif=link.name)
    rules = {r.priority: r for r in nl.rule_list(V4)}
    assert (rules[100].src, rules[100].table, rules[100].dst) == ("198.18.0.5/32", 100, None)
    assert (rules[101].dst, rules[101].table, rules[101].iif) == ("198.18.8.0/24", 1000, link.name)
    assert (rules[102].oif, rules[102].table) == (link.name, 101)
    j = {r["priority"]: r for r in ipru(host_ns)}
    assert (j[100]["src"], j[100]["table"]) == ("198.18.0.5", "100")
    assert (j[101]["dst"], j[101]["dstlen"], j[101]["table"]) == ("198.18.8.0", 24, "1000")
    assert j[101]["iif"] == link.name
    assert j[102]["oif"] == link.name

    with pytest.raises(NetlinkError) as ei:
        nl.rule_add(family=V4, table=100, priority=100, src="198.18.0.5/32")
    assert ei.value.errno == errno.EEXIST

    nl.rule_del(family=V4, table=100, priority=100, src="198.18.0.5/32")
    nl.rule_del(family=V4, priority=101)
    nl.rule_del(family=V4, table=101)
    assert not {100, 101, 102} & {r.priority for r in nl.rule_list(V4)}
    assert not {100, 101, 102} & {r["priority"] for r in ipru(host_ns)}
    with pytest.raises(NetlinkError) as ei:
        nl.rule_del(family=V4, priority=100)
    assert ei.value.errno == errno.ENOENT


def test_rule_add_v6_family_from_src(nl, host_ns):
    nl.rule_add(table=200, priority=200, src="fd00:1::/64")
    (r,) = [x for x in nl.rule_list(V6) if x.priority == 200]
    assert (r.family, r.src, r.table) == (V6, "fd00:1::/64", 200)
    (j,) = [x for x in ipru(host_ns, v6=True) if x["priority"] == 200]
    assert (j["src"], j["srclen"], j["table"]) == ("fd00:1::", 64, "200")
    assert 200 not in {x.priority for x in nl.rule_list(V4)}
    nl.rule_del(family=V6, priority=200)
    assert 200 not in {x.priority for x in nl.rule_list(V6)}
