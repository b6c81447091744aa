"""Differential tests of macvlan against the Go reference (/usr/lib/cni, 1.1.1).

The same config runs through /usr/lib/cni/macvlan + host-local in one
sandbox (a host netns with the uplink `mvup0` as the default route's
interface, and a container netns) and through pycni in another; the result
JSON (random MAC and netns path normalized) and the kernel state (links with
kind, macvlan mode, flags, MTU, parent, an asked-for MAC and addresses;
routes of both namespaces; the container sysctls) must be the same after ADD
and after DEL, and CHECK must agree.

Intended differences with this old build, not compared: 1.1.1 creates the
macvlan with txqueuelen 0 (its LinkAttrs literal), pycni and later reference
versions with the kernel's default; pycni and later versions also set
ndisc_notify=1 and keep_addr_on_down=1 (tests in test_macvlan.py).
"""

from __future__ import annotations

import pytest

from support.bridge import go_plugin
from support.differential import compare, run_both, version_matrix
from support.sandbox import entered
from support.sublink import PLUGINS, conf, make_uplink, normalize_result, snapshot

CONTAINER_ID = "mv-diff-1"
MAC = "02:00:c6:12:29:01"

CASES: dict[str, dict] = {
    "plain": {"keys": {"master": "mvup0"}},
    "default-master": {"keys": {}},
    "private": {"keys": {"master": "mvup0", "mode": "private"}},
    "vepa": {"keys": {"master": "mvup0", "mode": "vepa"}},
    "passthru": {"keys": {"master": "mvup0", "mode": "passthru"}},
    "mtu": {"keys": {"master": "mvup0", "mtu": 1400}},
    "mac-config": {"keys": {"master": "mvup0", "mac": MAC}, "macs": (MAC,)},
    "mac-cni-args": {
        "keys": {"master": "mvup0"},
        "args": f"IgnoreUnknown=1;MAC={MAC}",
        "macs": (MAC,),
    },
    "mac-runtime-config": {
        "keys": {"master": "mvup0", "mac": "02:00:c6:12:29:99", "runtimeConfig": {"mac": MAC}},
        "args": "IgnoreUnknown=1;MAC=02:00:c6:12:29:98",
        "macs": (MAC,),
    },
    "l2": {"keys": {"master": "mvup0"}, "l2": True},
    "ipv6": {"keys": {"master": "mvup0"}, "subnets": ("fd00:18:41::/64",)},
    "dual-stack": {"keys": {"master": "mvup0"}, "subnets": ("198.18.41.0/24", "fd00:18:41::/64")},
    "routes-dns": {
        "keys": {
            "master": "mvup0",
            "dns": {"nameservers": ["198.18.41.53"], "search": ["example.test"]},
        },
        "ipam_extra": {
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "198.19.0.0/16", "gw": "198.18.41.9"}]
        },
    },
}


def _conf(case: dict, cni_version: str, data_dir) -> dict:
    return conf(
        "macvlan",
        data_dir,
        cni_version=cni_version,
        subnets=case.get("subnets", ("198.18.41.0/24",)),
        l2=case.get("l2", False),
        name="mvdiff",
        ipam_extra=case.get("ipam_extra"),
        **case["keys"],
    )


def _side(plugin: str, path: list[str], host, ct, c: dict, case: dict):
    macs = case.get("macs", ())
    with entered(host):
        make_uplink()
        kw = {
            "netns": ct.path,
            "container_id": CONTAINER_ID,
            "path": path,
            "args": case.get("args", ""),
        }
        add = run_any(plugin, "ADD", c, **kw)
        assert add.ok, f"{plugin} ADD failed: {add}"
        state = snapshot(ct.name, fixed_macs=macs)
        check = None
        if c["cniVersion"] not in ("0.2.0", "0.3.1"):
            check = run_any(plugin, "CHECK", {**c, "prevResult": add.json}, **kw)
        delete = run_any(plugin, "DEL", c, **kw)
        assert delete.ok, f"{plugin} DEL failed: {delete}"
        after = snapshot(ct.name, fixed_macs=macs)
    return normalize_result(add.json, ct.path, macs), state, check, after


def run_any(plugin: str, command: str, c: dict, **kw):
    from pycni.skel.testing import run_plugin

    return run_plugin(plugin, command, c, **kw)


# every case at 1.0.0; the result conversions on both families, routes and
# DNS, and an L2 result (no IPs)
@pytest.mark.parametrize(
    ("case", "cni_version"), version_matrix(CASES, ["dual-stack", "routes-dns", "l2"])
)
def test_same_result_and_kernel_state_as_go(case, cni_version, netns_factory, tmp_path, cni_path):
    if CASES[case].get("l2") and cni_version == "0.2.0":
        pytest.skip("an L2 result has no IPs, which 0.2.0 cannot express (both fail)")
    go_plugin("host-local")

    def side(name: str, plugin: str, path: list[str], host, ct, data) -> tuple:
        return _side(plugin, path, host, ct, _conf(CASES[case], cni_version, data), CASES[case])

    go, py = run_both(
        netns_factory, tmp_path, go_plugin("macvlan"), PLUGINS["macvlan"], cni_path, side
    )
    problems = compare(go, py)
    assert not problems, "\n".join(problems)


def test_ipam_failure_leaves_no_macvlan_behind_unlike_go(netns_factory, tmp_path, cni_path):
    """The reference's known failure: its IPAM error path shadows `err`, so
    the deferred link deletion never runs and the macvlan stays."""
    go_plugin("host-local")

    def side(name: str, plugin: str, path: list[str], host, ct, data) -> list[str]:
        c = conf("macvlan", tmp_path / "nonexistent-dir-file", master="mvup0")
        c["ipam"]["ranges"] = [[{"subnet": "198.18.41.0/24", "rangeStart": "198.18.42.1"}]]
        with entered(host):
            make_uplink()
            out = run_any(plugin, "ADD", c, netns=ct.path, container_id=CONTAINER_ID, path=path)
        assert not out.ok, out
        return sorted(snapshot(ct.name)["ct"])

    go, py = run_both(
        netns_factory, tmp_path, go_plugin("macvlan"), PLUGINS["macvlan"], cni_path, side
    )
    assert go == ["eth0", "lo"]  # the reference's leak, still there in 1.1.1
    assert py == ["lo"]


BAD = {
    "unknown-mode": {"master": "mvup0", "mode": "bridgee"},
    "missing-master": {"master": "mvnothere"},
    "mtu-above-master": {"master": "mvup0", "mtu": 1501},
    "negative-mtu": {"master": "mvup0", "mtu": -1},
    "mtu-wrong-type": {"master": "mvup0", "mtu": "1400"},
    "bad-mac": {"master": "mvup0", "mac": "02:00:00"},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_like_go_and_leaves_nothing(case, netns_factory, tmp_path, cni_path):
    go = go_plugin("macvlan")
    for plugin, path in ((str(go), [str(go.parent)]), (PLUGINS["macvlan"], cni_path)):
        host, ct = netns_factory("h"), netns_factory("c")
        c = conf("macvlan", None, l2=True, **BAD[case])
        with entered(host):
            make_uplink()
            out = run_any(plugin, "ADD", c, netns=ct.path, container_id=CONTAINER_ID, path=path)
            host_links = sorted(snapshot(ct.name)["host"])
        assert out.exit_code == 1 and out.json["msg"], (plugin, out)
        assert sorted(snapshot(ct.name)["ct"]) == ["lo"], plugin
        assert host_links == ["lo", "mvup0", "mvup1"], plugin


@pytest.mark.parametrize("how", ["twice", "netns-gone", "no-netns", "link-gone"])
def test_del_cases_succeed_like_go(how, netns_factory, tmp_path, cni_path):
    go_plugin("host-local")

    def side(name: str, plugin: str, path: list[str], host, ct, data) -> None:
        c = conf("macvlan", data, master="mvup0", name="mvdel")
        with entered(host):
            make_uplink()
            kw = {"container_id": CONTAINER_ID, "path": path}
            ok_add = run_any(plugin, "ADD", c, netns=ct.path, **kw)
            assert ok_add.ok, ok_add
            netns = ct.path
            if how == "twice":
                assert run_any(plugin, "DEL", c, netns=netns, **kw).ok
            elif how == "netns-gone":
                ct.close()
            elif how == "no-netns":
                netns = ""
            else:
                from support.sandbox import ip

                ip("link", "del", "eth0", netns=ct.name)
            out = run_any(plugin, "DEL", c, netns=netns, **kw)
        assert out.ok, (name, out)
        assert not [p for p in (data / "mvdel").iterdir() if p.name[0].isdigit()], name

    run_both(netns_factory, tmp_path, go_plugin("macvlan"), PLUGINS["macvlan"], cni_path, side)
