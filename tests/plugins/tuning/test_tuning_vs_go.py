"""Differential tests against the Go reference tuning (/usr/lib/cni/tuning,
Debian's 1.1.1 build).

The same config runs through Go in one container and through pycni in
another (both start with the same veth, MAC included); the result JSON, the
link attributes and sysctls after ADD, the backup file (byte for byte), the
CHECK verdict and the state after DEL must be the same. Cross restore: each
implementation's DEL puts back what the other's ADD changed, from the
other's backup file.

Known differences with this old build, none compared: it predates `txQLen`
(ignored, never backed up or restored), its CHECK does not replace IFNAME
in sysctl keys (so CHECK of such a key fails), it has no allow-list and no
duplicate-key check (both newer reference features), it prints "dns": {}
in 1.x results, and it supports CNI versions up to 1.0.0.
"""

from __future__ import annotations

import pytest

from support.sandbox import ip
from support.tuning import (
    GO,
    IFNAME,
    PLUGIN,
    backup_file,
    conf,
    files_under,
    link_state,
    make_container,
    normalize,
    run_tuning,
    sysctl,
)

SYSCTLS = ("net/ipv4/conf/eth0/arp_filter", "net/ipv4/ip_forward", "net/ipv6/conf/eth0/accept_ra")
MAC = "c2:11:22:33:44:55"

CASES: dict[str, dict] = {
    "passthrough": {},
    "sysctl": {"sysctl": {"net.ipv4.conf.eth0.arp_filter": "1", "net.ipv4.ip_forward": "1"}},
    "sysctl-ifname": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}},
    "mac": {"mac": MAC},
    "promisc": {"promisc": True},
    "promisc-false": {"promisc": False},
    "mtu": {"mtu": 1400},
    "allmulti": {"allmulti": True},
    "allmulti-false": {"allmulti": False},
    "all": {
        "sysctl": {"net.ipv6.conf.eth0.accept_ra": "0"},
        "mac": MAC,
        "promisc": True,
        "mtu": 9000,
        "allmulti": True,
    },
    "cni-args-mac": {"mac": "02:00:00:00:00:07", "_args": f"IgnoreUnknown=1;K8S_X=y;MAC={MAC}"},
    "runtime-config-mac": {"mac": "02:00:00:00:00:07", "runtimeConfig": {"mac": MAC}},
    "args-cni": {
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "mac": "02:00:00:00:00:07",
        "promisc": True,
        "mtu": 1400,
        "runtimeConfig": {"mac": "02:00:00:00:00:08"},
        "args": {
            "cni": {
                "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"},
                "mac": MAC,
                "promisc": False,
                "mtu": 1300,
                "allmulti": True,
            }
        },
    },
}
VERSIONS = ("0.2.0", "0.3.1", "0.4.0", "1.0.0")


def kernel_state(ct) -> dict:
    return {"link": link_state(ct), **{name: sysctl(ct, name) for name in SYSCTLS}}


def run_side(plugin: str, ct, data_dir, version: str, case: dict) -> dict:
    keys = dict(case)
    cni_args = keys.pop("_args", "")
    c = conf(ct, data_dir, version, **keys)
    add = run_tuning("ADD", c, ct, plugin=plugin, args=cni_args)
    assert add.ok, f"{plugin} ADD: {add}"
    out = {
        "result": normalize(add.json, ct),
        "after ADD": kernel_state(ct),
        "backup": backup_file(data_dir).read_bytes() if backup_file(data_dir).exists() else None,
    }
    if version not in ("0.2.0", "0.3.1"):  # CHECK needs 0.4.0
        check = run_tuning("CHECK", {**c, "prevResult": add.json}, ct, plugin=plugin, args=cni_args)
        out["check"] = check.ok
    delete = run_tuning("DEL", c, ct, plugin=plugin, args=cni_args)
    assert delete.ok, f"{plugin} DEL: {delete}"
    out["after DEL"] = kernel_state(ct)
    out["backup left"] = backup_file(data_dir).exists()
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_result_state_and_backup_as_go(case, version, host_ns, netns_factory, tmp_path):
    sides = {}
    for side, plugin in (("go", GO), ("py", PLUGIN)):
        ct = make_container(netns_factory, "c" + side)
        sides[side] = run_side(plugin, ct, tmp_path / side, version, CASES[case])
    go, py = sides["go"], sides["py"]
    if case == "sysctl-ifname" and "check" in go:
        # 1.1.1's CHECK reads /proc/sys/net/ipv4/conf/IFNAME/arp_filter
        assert go.pop("check") is False and py.pop("check") is True
    assert py == go


def test_state_really_changes(host_ns, netns_factory, tmp_path):
    """The differential cases compare something: ADD changed the state and
    DEL changed it back, on both sides."""
    for plugin in (GO, PLUGIN):
        ct = make_container(netns_factory, "chg")
        out = run_side(plugin, ct, tmp_path / plugin.replace("/", "_"), "1.0.0", CASES["all"])
        assert out["after ADD"]["link"]["mtu"] == 9000
        assert out["after ADD"]["link"]["mac"] == MAC
        assert out["after DEL"]["link"]["mtu"] == 1500
        assert out["backup"] is not None and not out["backup left"]


CROSS = {
    "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"},
    "mac": MAC,
    "promisc": True,
    "mtu": 1400,
    "allmulti": True,
}


@pytest.mark.parametrize(("adder", "deleter"), [(GO, PLUGIN), (PLUGIN, GO)])
def test_cross_restore(adder, deleter, ct, tmp_path):
    start = link_state(ct)
    data_dir = tmp_path / "tuning"
    c = conf(ct, data_dir, **CROSS)
    assert run_tuning("ADD", c, ct, plugin=adder).ok
    changed = link_state(ct)
    assert (changed["mac"], changed["mtu"], changed["promisc"], changed["allmulti"]) == (
        MAC,
        1400,
        True,
        True,
    )
    delete = run_tuning("DEL", c, ct, plugin=deleter)
    assert delete.ok, delete
    assert link_state(ct) == start
    assert not backup_file(data_dir).exists()
    if adder == PLUGIN:
        # the reference does not know pycni's GC marker; a GC removes it
        assert files_under(data_dir) == [f"pycni-gc/tunnet/tun-ctr-1_{IFNAME}"]
    else:
        assert files_under(data_dir) == []


def test_go_del_of_a_pycni_backup_with_txqlen(ct, tmp_path):
    """1.1.1 ignores txQLen in the backup: it restores the rest."""
    start = link_state(ct)
    data_dir = tmp_path / "tuning"
    c = conf(ct, data_dir, mtu=1400, txQLen=77)
    assert run_tuning("ADD", c, ct).ok
    assert run_tuning("DEL", c, ct, plugin=GO).ok
    assert link_state(ct) == {**start, "txqlen": 77}
    assert not backup_file(data_dir).exists()


def test_pycni_del_after_go_add_with_the_netns_gone(host_ns, netns_factory, tmp_path):
    ct = make_container(netns_factory, "gone")
    data_dir = tmp_path / "tuning"
    c = conf(ct, data_dir, mtu=1400)
    assert run_tuning("ADD", c, ct, plugin=GO).ok
    ct.close()
    assert run_tuning("DEL", c, ct).ok
    assert files_under(data_dir) == []


BOTH_FAIL = {
    "no-prev-result": ({"mtu": 1400}, False),
    "outside-net": ({"sysctl": {"kernel.hostname": "x"}}, True),
    "mtu-string": ({"mtu": "1400"}, True),
    "promisc-string": ({"promisc": "true"}, True),
    "bad-mac": ({"mac": "zz"}, True),
    "sysctl-number": ({"sysctl": {"net.ipv4.ip_forward": 1}}, True),
    "missing-sysctl": ({"sysctl": {"net.ipv4.no_such": "1"}}, True),
}


@pytest.mark.parametrize("case", sorted(BOTH_FAIL))
def test_both_refuse(case, host_ns, netns_factory, tmp_path):
    keys, prev = BOTH_FAIL[case]
    for plugin in (GO, PLUGIN):
        ct = make_container(netns_factory, "bad")
        out = run_tuning("ADD", conf(ct, tmp_path / "d", prev=prev, **keys), ct, plugin=plugin)
        assert out.exit_code == 1 and out.json["code"] in (4, 7, 999), (plugin, out)


def test_go_and_pycni_share_a_data_dir(ct, tmp_path, netns_factory):
    """Two containers, one tuned by each, one folder: each DEL restores its own."""
    other = make_container(netns_factory, "oth")
    ip("link", "set", IFNAME, "mtu", "1450", netns=other.name)
    data_dir = tmp_path / "shared"
    c1, c2 = conf(ct, data_dir, mtu=1400), conf(other, data_dir, mtu=1300)
    assert run_tuning("ADD", c1, ct, plugin=GO, container_id="tun-go").ok
    assert run_tuning("ADD", c2, other, container_id="tun-py").ok
    assert run_tuning("DEL", c2, other, plugin=GO, container_id="tun-py").ok
    assert run_tuning("DEL", c1, ct, container_id="tun-go").ok
    assert link_state(ct)["mtu"] == 1500 and link_state(other)["mtu"] == 1450
