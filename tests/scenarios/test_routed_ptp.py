"""The talk's "routed + IPAM" order (issue 9, 4 (b)): two containers on
examples/routed-ptp/routed-ptp.conflist (ptp + host-local) in one sandbox
host netns reach each other and the host through host routes only, both
ways and in both families; DEL leaves nothing behind.

The conflist is the example file itself; only host-local's dataDir is
pointed at the test's tmp_path. The network runs through pycni's runtime
(libcni's add/check/del of a list), with launchers of this checkout's
plugins as CNI_PATH.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pycni.runtime.api import CNIConfig, RuntimeConf
from pycni.runtime.loader import network_conf_from_bytes

from support.bridge import links
from support.cni import reservations
from support.ptp import host_veths, no_rules_left, routes_of, settle
from support.sandbox import in_netns

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "routed-ptp" / "routed-ptp.conflist"


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "pt"}


def ping_argv(address: str) -> list[str]:
    """One echo, two seconds to answer: ping, else busybox's."""
    if shutil.which("ping"):
        return ["ping", "-c", "1", "-W", "2", address]
    if shutil.which("busybox"):
        return ["busybox", "ping", "-c", "1", "-W", "2", address]
    pytest.skip("neither ping nor busybox is installed")
    raise AssertionError  # not reached


def pings(ns_name: str, address: str) -> bool:
    proc = in_netns(ns_name, *ping_argv(address), capture_output=True, text=True, timeout=10)
    return proc.returncode == 0


def load_example(data_dir: Path):
    doc = json.loads(EXAMPLE.read_text())
    doc["plugins"][0]["ipam"]["dataDir"] = str(data_dir)
    return doc, network_conf_from_bytes(json.dumps(doc).encode())


def test_two_routed_containers_reach_each_other_and_the_host(
    host_ns, netns_factory, launcher_dir, tmp_path
):
    doc, netconf = load_example(tmp_path / "ipam")
    cni = CNIConfig(path=[str(launcher_dir)], cache_dir=str(tmp_path / "cache"))
    cts = {"a": netns_factory("ra"), "b": netns_factory("rb")}
    rts = {
        k: RuntimeConf(container_id=f"routed-{k}", netns=ns.path, ifname="eth0")
        for k, ns in cts.items()
    }
    addrs = {}
    try:
        for k in ("a", "b"):
            result = cni.add_network_list(netconf, rts[k])
            assert result is not None
            v4 = next(i.address for i in result.ips if ":" not in i.address)
            v6 = next(i.address for i in result.ips if ":" in i.address)
            addrs[k] = (v4.split("/")[0], v6.split("/")[0])
            assert [i.gateway for i in result.ips] == ["198.18.64.1", "fd00:18:64::1"]
        settle([None, cts["a"].name, cts["b"].name])

        # routed, not bridged: the host has veths with host routes and no bridge
        kinds = {link.get("linkinfo", {}).get("info_kind") for link in links().values()}
        assert "bridge" not in kinds
        assert len(host_veths()) == 2
        assert sorted(r.split(" dev ")[0] for r in routes_of(None)) == sorted(
            a[0] for a in addrs.values()
        )
        assert routes_of(cts["a"].name)[0].startswith("198.18.64.0/24 via 198.18.64.1 dev eth0")
        assert "default via 198.18.64.1 dev eth0" in routes_of(cts["a"].name)

        for src, dst in (("a", "b"), ("b", "a")):
            for family in (0, 1):
                assert pings(cts[src].name, addrs[dst][family]), f"{src} -> {addrs[dst][family]}"
        for k in ("a", "b"):
            assert pings(cts[k].name, "198.18.64.1"), f"{k} -> host"
            assert pings(cts[k].name, "fd00:18:64::1"), f"{k} -> host (IPv6)"
            assert pings(host_ns.name, addrs[k][0]), f"host -> {k}"
            assert pings(host_ns.name, addrs[k][1]), f"host -> {k} (IPv6)"
        for k in ("a", "b"):
            cni.check_network_list(netconf, rts[k])
    finally:
        for k in ("b", "a"):
            cni.del_network_list(netconf, rts[k])

    assert host_veths() == []
    assert routes_of(None) == [] and routes_of(None, "-6") == []
    for ns in cts.values():
        assert "eth0" not in links(ns.name)
    assert reservations(tmp_path / "ipam", doc["name"]) == []
    assert no_rules_left()
    assert cni.get_cached_attachments() == []
