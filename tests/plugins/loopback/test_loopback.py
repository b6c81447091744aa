"""The loopback plugin through its executable, in sandbox namespaces."""

from __future__ import annotations

import json

import pytest

from pycni.skel.testing import run_plugin
from pycni.spec import version

from support.sandbox import ip, ip_json

PLUGIN = "pycni.plugins.main.loopback"


def conf(cni_version: str = "1.0.0", **extra) -> dict:
    return {"cniVersion": cni_version, "name": "lo-net", "type": "loopback", **extra}


def lo_flags(ns) -> list[str]:
    return ip_json("link", "show", "lo", netns=ns.name)[0]["flags"]


@pytest.fixture
def ct(host_ns, netns_factory):
    ns = netns_factory("lo")
    ip("link", "set", "lo", "down", netns=ns.name)
    return ns


@pytest.mark.parametrize("cni_version", version.ALL)
def test_add_sets_lo_up_and_reports_its_addresses(ct, cni_version):
    out = run_plugin(PLUGIN, "ADD", conf(cni_version), netns=ct.path, ifname="eth7")
    assert out.ok, out
    assert "UP" in lo_flags(ct)
    result = out.json
    assert result["cniVersion"] == cni_version
    if cni_version in ("0.1.0", "0.2.0"):
        assert result["ip4"] == {"ip": "127.0.0.1/8"}
        assert result["ip6"] == {"ip": "::1/128"}
        return
    assert result["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ct.path}]
    addrs = [i["address"] for i in result["ips"]]
    assert addrs == ["127.0.0.1/8", "::1/128"]
    assert all(i["interface"] == 0 for i in result["ips"])
    if cni_version.startswith("0."):
        assert [i["version"] for i in result["ips"]] == ["4", "6"]


def test_add_passes_prev_result_through(ct):
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": ct.path}],
        "ips": [{"address": "198.18.0.5/24", "interface": 0, "gateway": "198.18.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["198.18.0.53"]},
    }
    out = run_plugin(PLUGIN, "ADD", conf(prevResult=prev), netns=ct.path)
    assert out.ok, out
    assert out.json == prev
    assert "UP" in lo_flags(ct)


def test_add_rejects_non_loopback_address_on_lo(ct):
    ip("addr", "add", "198.18.0.9/32", "dev", "lo", netns=ct.name)
    out = run_plugin(PLUGIN, "ADD", conf(), netns=ct.path)
    assert not out.ok
    assert out.error["code"] == 999
    assert "non-loopback address" in out.error["msg"]
    assert "198.18.0.9" in out.error["msg"]


def test_add_missing_netns_is_an_error(host_ns):
    out = run_plugin(PLUGIN, "ADD", conf(), netns="/run/netns/pyc-does-not-exist")
    assert not out.ok
    assert out.error["code"] == 8
    assert "/run/netns/pyc-does-not-exist" in out.error["msg"]


def test_del_sets_lo_down_and_repeats(ct):
    assert run_plugin(PLUGIN, "ADD", conf(), netns=ct.path).ok
    for _ in range(2):
        out = run_plugin(PLUGIN, "DEL", conf(), netns=ct.path)
        assert out.ok, out
        assert out.stdout == ""
        assert "UP" not in lo_flags(ct)


def test_del_without_netns_succeeds(host_ns):
    out = run_plugin(PLUGIN, "DEL", conf(), netns="")
    assert out.ok, out


def test_del_with_netns_gone_succeeds(host_ns, netns_factory):
    ns = netns_factory("gone")
    path = ns.path
    ns.close()
    out = run_plugin(PLUGIN, "DEL", conf(), netns=path)
    assert out.ok, out


def test_check_verifies_lo_is_up(ct):
    add = run_plugin(PLUGIN, "ADD", conf(), netns=ct.path)
    assert add.ok
    check_conf = conf(prevResult=add.json)
    assert run_plugin(PLUGIN, "CHECK", check_conf, netns=ct.path).ok
    ip("link", "set", "lo", "down", netns=ct.name)
    out = run_plugin(PLUGIN, "CHECK", check_conf, netns=ct.path)
    assert not out.ok
    assert out.error["msg"] == "loopback interface is down"


def test_status_and_gc_are_no_ops(host_ns):
    for verb in ("STATUS", "GC"):
        out = run_plugin(PLUGIN, verb, conf("1.1.0"))
        assert out.ok, out


def test_version(host_ns):
    out = run_plugin(PLUGIN, "VERSION", {"cniVersion": "1.1.0"})
    assert json.loads(out.stdout)["supportedVersions"] == list(version.ALL)


@pytest.mark.parametrize("cni_version", ["1.0.0"])
def test_same_as_go_loopback(netns_factory, cni_version):
    """Same result and lo state as Debian's Go loopback. (For 0.x versions the
    Go plugin prints its 1.x-shaped result with the old version number; pycni
    prints the shape of the requested version.)"""
    import os

    from support.sandbox import entered

    go = "/usr/lib/cni/loopback"
    if not os.access(go, os.X_OK):
        pytest.skip(f"Go reference plugin {go} not installed")
    results = {}
    for side, plugin in (("go", go), ("py", PLUGIN)):
        host = netns_factory("lh" + side)
        ct = netns_factory("lc" + side)
        ip("link", "set", "lo", "down", netns=ct.name)
        with entered(host):
            add = run_plugin(plugin, "ADD", conf(cni_version), netns=ct.path)
            assert add.ok, add
            assert "UP" in lo_flags(ct)
            assert run_plugin(plugin, "DEL", conf(cni_version), netns=ct.path).ok
            assert "UP" not in lo_flags(ct)
        result = add.json
        result["interfaces"][0]["sandbox"] = "<netns>"
        if result.get("dns") == {}:
            del result["dns"]
        results[side] = result
    assert results["py"] == results["go"]
