"""ipvlan's logic against a fake netlink (this kernel has no ipvlan): config
errors, chaining, the missing-kernel-support error, rollback, DEL; and its
RTM_NEWLINK against the bytes `ip link add ... type ipvlan` sends."""

from __future__ import annotations

import errno

import pytest

from pycni.kernel.netlink import NetlinkError
from pycni.plugins.main.ipvlan import verbs
from pycni.plugins.main.ipvlan.conf import load
from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError

from support.sublink import FakeNl, cmd, fake_env, make_link, make_route, sent_by_create

IPAM = {"type": "host-local"}


@pytest.fixture
def env(monkeypatch):
    uplink = make_link("mvup0", index=7)
    ctr = FakeNl()
    host = FakeNl([uplink], routes=[make_route(None, 7)], target=ctr)
    calls = fake_env(monkeypatch, host, ctr)
    return host, ctr, calls


# --- bytes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, fixture",
    [
        ({"mode": "l2"}, "ipvlan-l2"),
        ({}, "ipvlan-l2"),
        ({"mode": "l3"}, "ipvlan-l3"),
        ({"mode": "l3s"}, "ipvlan-l3s"),
        ({"mode": "l2", "flag": "private"}, "ipvlan-l2-private"),
        ({"mode": "l3", "flag": "vepa"}, "ipvlan-l3-vepa"),
        ({"mode": "l2", "flag": "bridge", "mtu": 1400}, "ipvlan-l2-bridge-mtu"),
    ],
)
def test_request_matches_iproute2(keys, fixture, monkeypatch):
    ours, iproute2 = sent_by_create("ipvlan", load(keys), fixture, monkeypatch)
    assert ours == iproute2


def test_request_differs_for_another_mode(monkeypatch):
    ours, iproute2 = sent_by_create("ipvlan", load({"mode": "l3"}), "ipvlan-l2", monkeypatch)
    assert ours != iproute2


# --- config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, needle",
    [
        ({"mode": "l4"}, 'unknown ipvlan mode: "l4"'),
        ({"flag": "open"}, 'unknown ipvlan flag: "open"'),
        ({"mode": 3}, '"mode"'),
        ({"mtu": "x"}, '"mtu"'),
        ({"linkInContainer": "yes"}, '"linkInContainer"'),
        ({"master": "a b"}, '"master"'),
    ],
)
def test_bad_keys_are_code_7(keys, needle):
    with pytest.raises(CNIError) as e:
        load(keys)
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert needle in e.value.msg


def test_del_does_not_validate_mode():
    assert load({"mode": "l4"}, strict=False).mode == "l4"


# --- ADD ----------------------------------------------------------------------------


def test_add_defaults_master_to_default_route_interface(env):
    host, ctr, calls = env
    res = cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "ipam": IPAM})
    assert ("link_add", "ipvlan", host.calls[-1][2]) in host.calls
    assert list(ctr.links) == ["eth0"]
    assert [i.name for i in res.interfaces] == ["eth0"]
    assert res.interfaces[0].sandbox == "/proc/self/ns/net"
    assert ("configure", "eth0", [("198.18.41.2/24", 0)]) in calls
    sysctls = next(c[1] for c in calls if c[0] == "sysctls")
    assert ("net/ipv4/conf/eth0/arp_notify", "1") in sysctls
    assert ("net/ipv6/conf/eth0/ndisc_notify", "1") in sysctls


def test_missing_kernel_support_is_named_and_nothing_is_left(env):
    host, _ctr, calls = env
    host.fail["link_add"] = NetlinkError(errno.EOPNOTSUPP, "add link", None, "Unknown device type")
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "ipam": IPAM})
    assert "this kernel has no ipvlan support (CONFIG_IPVLAN)" in e.value.msg
    assert "Operation not supported" in e.value.details
    assert not any(c[0] == "ipam_add" for c in calls)


def test_ipam_failure_deletes_the_link(env):
    _host, ctr, calls = env
    conf = {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "ipam": {"type": "failing"}}
    with pytest.raises(CNIError, match="IPAM says no"):
        cmd(verbs, "add", conf)
    assert ctr.links == {}
    assert calls[-1] == ("ipam_del", "failing")


def test_configure_failure_deletes_link_and_releases_ipam(env, monkeypatch):
    _host, ctr, calls = env
    from pycni.plugins.pkg import sublink

    def boom(*a):
        raise CNIError(999, "configure failed")

    monkeypatch.setattr(sublink, "container_sysctls", boom)
    with pytest.raises(CNIError, match="configure failed"):
        cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "ipam": IPAM})
    assert ctr.links == {}
    assert ("ipam_del", "host-local") in calls


def test_rename_clash_keeps_the_existing_interface(env):
    _host, ctr, _calls = env
    ctr.links["eth0"] = make_link("eth0", kind="veth", index=3)
    with pytest.raises(CNIError, match="already exists"):
        cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "ipam": IPAM})
    assert list(ctr.links) == ["eth0"] and ctr.links["eth0"].kind == "veth"


PREV = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "mvup0"}],
    "ips": [{"address": "198.18.43.5/24", "gateway": "198.18.43.1", "interface": 0}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {"nameservers": ["198.18.43.53"]},
}


def test_chained_master_and_ips_come_from_prev_result(env):
    host, _ctr, calls = env
    conf = {
        "cniVersion": "1.0.0",
        "name": "n",
        "prevResult": PREV,
        "dns": {"search": ["example.test"]},
    }
    res = cmd(verbs, "add", conf)
    assert host.calls[0] == ("link_get", "mvup0")
    assert not any(c[0] == "ipam_add" for c in calls)
    assert ("configure", "eth0", [("198.18.43.5/24", 0)]) in calls
    assert [i.name for i in res.interfaces] == ["eth0"]
    assert [r.dst for r in res.routes] == ["0.0.0.0/0"]
    assert res.dns.search == ["example.test"] and res.dns.nameservers == []


def test_chained_master_failure(env):
    prev = {**PREV, "interfaces": [{"name": "a"}, {"name": "b"}]}
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "prevResult": prev})
    assert "chained master failure" in e.value.msg
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG


def test_no_ipam_and_no_prev_ips_fails_before_creating(env):
    host, _ctr, _calls = env
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "ipam": {}})
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert not any(c[0] == "link_add" for c in host.calls)


def test_link_in_container_creates_through_the_container_socket(env):
    host, ctr, _calls = env
    ctr.links["mvin0"] = make_link("mvin0", index=4)
    conf = {
        "cniVersion": "1.0.0",
        "name": "n",
        "master": "mvin0",
        "linkInContainer": True,
        "ipam": IPAM,
    }
    cmd(verbs, "add", conf)
    assert not any(c[0] == "link_add" for c in host.calls)
    assert any(c[0] == "link_add" for c in ctr.calls)
    assert "eth0" in ctr.links


def test_mtu_above_master_is_code_7(env):
    with pytest.raises(CNIError) as e:
        cmd(
            verbs,
            "add",
            {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "mtu": 1501, "ipam": IPAM},
        )
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert "master MTU(1500)" in e.value.msg


def test_non_ethernet_master_is_code_7(env):
    host, _ctr, _calls = env
    host.links["mvtun"] = make_link("mvtun", index=9, type_=65534)
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", {"cniVersion": "1.0.0", "name": "n", "master": "mvtun", "ipam": IPAM})
    assert "not an Ethernet device" in e.value.msg


# --- DEL, CHECK ----------------------------------------------------------------------


def test_del_is_repeatable_and_releases_ipam(env):
    _host, ctr, calls = env
    ctr.links["eth0"] = make_link("eth0", kind="ipvlan", index=3)
    conf = {"cniVersion": "1.0.0", "name": "n", "master": "mvgone", "ipam": IPAM}
    cmd(verbs, "del", conf)
    cmd(verbs, "del", conf)
    assert ctr.links == {}
    assert calls.count(("ipam_del", "host-local")) == 2


def test_del_netns_gone(env, monkeypatch):
    _host, _ctr, calls = env
    from pycni.plugins.pkg import sublink
    from pycni.plugins.pkg.netns import NetnsGone

    def gone(netns=None):
        raise NetnsGone(netns)

    monkeypatch.setattr(sublink, "open_netlink", gone)
    cmd(verbs, "del", {"cniVersion": "1.0.0", "name": "n", "ipam": IPAM})
    cmd(verbs, "del", {"cniVersion": "1.0.0", "name": "n"}, netns="")
    assert calls == [("ipam_del", "host-local")]


def test_check_compares_mode_and_flag(env, monkeypatch):
    _host, ctr, _calls = env
    from pycni.plugins.pkg import sublink

    monkeypatch.setattr(sublink, "validate_expected_ips", lambda *a: None)
    monkeypatch.setattr(sublink, "validate_expected_routes", lambda *a: None)
    monkeypatch.setattr(sublink, "ipam_check", lambda *a: None)
    link = make_link("eth0", kind="ipvlan", index=3, mac="02:00:00:00:00:07")
    link.data = {"mode": "l3", "flags": "private"}
    ctr.links["eth0"] = link
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "eth0", "mac": "02:00:00:00:00:07", "sandbox": "/proc/self/ns/net"}
        ],
        "ips": [],
    }
    base = {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "ipam": IPAM, "prevResult": prev}
    cmd(verbs, "check", {**base, "mode": "l3", "flag": "private"})
    with pytest.raises(CNIError, match="mode l3 does not match expected value: l2"):
        cmd(verbs, "check", base)
    with pytest.raises(CNIError, match="flag private does not match expected value: vepa"):
        cmd(verbs, "check", {**base, "mode": "l3", "flag": "vepa"})
    with pytest.raises(CNIError, match="failed to lookup master 'mvnope'"):
        cmd(verbs, "check", {**base, "master": "mvnope", "mode": "l3", "flag": "private"})
