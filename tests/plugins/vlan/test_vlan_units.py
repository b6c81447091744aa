"""vlan's logic against a fake netlink (this kernel has no 802.1Q): config
errors, the missing-kernel-support error, rollback, DEL, CHECK; and its
RTM_NEWLINK against the bytes `ip link add ... type vlan` sends."""

from __future__ import annotations

import errno

import pytest

from pycni.kernel import link as kl
from pycni.kernel.netlink import NetlinkError
from pycni.plugins.main.vlan import verbs
from pycni.plugins.main.vlan.conf import load
from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError

from support.iplink_bytes import sent_by
from support.sublink import (
    FakeNl,
    canon,
    cmd,
    fake_env,
    fixture_request,
    make_link,
    sent_by_create,
)

IPAM = {"type": "host-local"}
BASE = {"cniVersion": "1.0.0", "name": "n", "master": "mvup0", "vlanId": 100, "ipam": IPAM}


@pytest.fixture
def env(monkeypatch):
    ctr = FakeNl()
    host = FakeNl([make_link("mvup0", index=7)], target=ctr)
    calls = fake_env(monkeypatch, host, ctr)
    return host, ctr, calls


# --- bytes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, fixture",
    [
        ({"vlanId": 100}, "vlan-100"),
        ({"vlanId": 0}, "vlan-0"),
        ({}, "vlan-0"),
        ({"vlanId": 4094, "mtu": 1400}, "vlan-4094-mtu"),
    ],
)
def test_request_matches_iproute2(keys, fixture, monkeypatch):
    conf = load({"master": "mvp0", "ipam": IPAM, **keys})
    ours, iproute2 = sent_by_create("vlan", conf, fixture, monkeypatch)
    assert ours == iproute2


def test_request_differs_for_another_id(monkeypatch):
    conf = load({"master": "mvp0", "ipam": IPAM, "vlanId": 101})
    ours, iproute2 = sent_by_create("vlan", conf, "vlan-100", monkeypatch)
    assert ours != iproute2


def test_kernel_layer_802_1ad_protocol_matches_iproute2():
    """The plugin has no protocol key; the kernel layer's is held to iproute2's too."""
    payload, parent = fixture_request("vlan-802.1ad")
    ((_, ours),) = sent_by(
        lambda s: kl.link_add(
            s,
            "vlan",
            "mvtmp0",
            parent=parent,
            netns="/proc/self/ns/net",
            data={"id": 7, "protocol": "802.1ad"},
        )
    )
    assert canon(ours) == canon(payload)


# --- config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, needle",
    [
        ({"vlanId": 4095}, '"vlanId" 4095'),
        ({"vlanId": -1}, '"vlanId" -1'),
        ({"vlanId": "5"}, '"vlanId"'),
        ({"master": ""}, '"master" field is required'),
        ({"ipam": {}}, '"ipam.type" is empty'),
        ({"mtu": 1.5}, '"mtu"'),
    ],
)
def test_bad_keys_are_code_7(keys, needle):
    with pytest.raises(CNIError) as e:
        load({**BASE, **keys})
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert needle in e.value.msg


def test_vlan_id_is_checked_for_del_too_but_master_and_ipam_are_not():
    with pytest.raises(CNIError):
        load({"vlanId": 5000}, for_add=False)
    assert load({"vlanId": 5}, for_add=False).master == ""


# --- ADD ----------------------------------------------------------------------------


def test_add_creates_renames_and_configures(env):
    host, ctr, calls = env
    res = cmd(verbs, "add", {**BASE, "dns": {"nameservers": ["198.18.41.53"]}})
    assert list(ctr.links) == ["eth0"]
    assert ("configure", "eth0", [("198.18.41.2/24", 0)]) in calls
    assert not any(c[0] == "sysctls" for c in calls)  # vlan sets no notify sysctls
    assert res.dns.nameservers == ["198.18.41.53"]
    assert host.sent and ctr.sent == []


def test_missing_kernel_support_is_named(env):
    host, ctr, calls = env
    host.fail["link_add"] = NetlinkError(errno.EOPNOTSUPP, "add link", None, "Unknown device type")
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", BASE)
    assert "this kernel has no vlan support (CONFIG_VLAN_8021Q)" in e.value.msg
    assert ctr.links == {} and calls == []


def test_missing_master_is_code_7(env):
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", {**BASE, "master": "mvnope"})
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert "mvnope" in e.value.msg


def test_mtu_above_master(env):
    with pytest.raises(CNIError) as e:
        cmd(verbs, "add", {**BASE, "mtu": 9000})
    assert 'invalid "mtu" 9000: must be [0, master MTU(1500)]' in e.value.msg


def test_ipam_failure_deletes_the_link(env):
    _, ctr, calls = env
    with pytest.raises(CNIError, match="IPAM says no"):
        cmd(verbs, "add", {**BASE, "ipam": {"type": "failing"}})
    assert ctr.links == {}
    assert calls[-1] == ("ipam_del", "failing")


def test_rename_failure_deletes_the_temporary_link(env):
    _, ctr, _ = env
    ctr.fail["link_set"] = NetlinkError(errno.EBUSY, "set link")
    with pytest.raises(CNIError, match="failed to rename vlan"):
        cmd(verbs, "add", BASE)
    assert ctr.links == {}


# --- DEL, CHECK ---------------------------------------------------------------------


def test_del_without_master_twice(env):
    _, ctr, calls = env
    ctr.links["eth0"] = make_link("eth0", kind="vlan", index=3)
    conf = {"cniVersion": "1.0.0", "name": "n", "vlanId": 5, "ipam": IPAM}
    cmd(verbs, "del", conf)
    cmd(verbs, "del", conf)
    assert ctr.links == {}
    assert calls.count(("ipam_del", "host-local")) == 2


def test_del_reports_ipam_failure_but_still_deletes_the_link(env, monkeypatch):
    _, ctr, _ = env
    from pycni.plugins.pkg import sublink

    def fail(t, stdin):
        raise CNIError(11, "store broken")

    monkeypatch.setattr(sublink, "ipam_del", fail)
    ctr.links["eth0"] = make_link("eth0", kind="vlan", index=3)
    with pytest.raises(CNIError, match="store broken"):
        cmd(verbs, "del", BASE)
    assert ctr.links == {}


def test_check_compares_vlan_id_and_mtu(env, monkeypatch):
    _, ctr, _ = env
    from pycni.plugins.pkg import sublink

    monkeypatch.setattr(sublink, "validate_expected_ips", lambda *a: None)
    monkeypatch.setattr(sublink, "validate_expected_routes", lambda *a: None)
    monkeypatch.setattr(sublink, "ipam_check", lambda *a: None)
    link = make_link("eth0", kind="vlan", index=3, mtu=1400)
    link.data = {"id": 100}
    ctr.links["eth0"] = link
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": "/proc/self/ns/net"}],
    }
    cmd(verbs, "check", {**BASE, "mtu": 1400, "prevResult": prev})
    with pytest.raises(CNIError, match="VLAN ID 100, expected 101"):
        cmd(verbs, "check", {**BASE, "vlanId": 101, "prevResult": prev})
    with pytest.raises(CNIError, match="MTU 1400, expected 1300"):
        cmd(verbs, "check", {**BASE, "mtu": 1300, "prevResult": prev})
    link.kind = "macvlan"
    with pytest.raises(CNIError, match="not of type vlan"):
        cmd(verbs, "check", {**BASE, "prevResult": prev})
    with pytest.raises(CNIError, match="prevResult missing"):
        cmd(verbs, "check", BASE)
