"""The firewall where it belongs: chained after bridge in a conflist, driven
by pycni's runtime (launchers of this checkout). ADD passes bridge's result
through and writes rules for its address and bridge; CHECK and GC with the
runtime's own requests; DEL (in reverse order, firewall first) cleans up."""

from __future__ import annotations

import json

import pytest

from support.cni import bridge_conflist
from support.firewall import filter_table, nft_rules


def conflist(backend: str, data_dir, bridge: str) -> bytes:
    doc = bridge_conflist("fwchain", bridge, "198.18.40.0/24", data_dir)
    doc["plugins"].append({"type": "firewall", "backend": backend, "ingressPolicy": "same-bridge"})
    return json.dumps(doc).encode()


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_bridge_then_firewall(backend, host_ns, netns_factory, launcher_dir, tmp_path):
    from pycni.runtime import CNIConfig, RuntimeConf
    from pycni.spec.config import network_config_list_from_bytes

    ct = netns_factory("ct")
    data = tmp_path / "ipam"
    data.mkdir()
    net = network_config_list_from_bytes(conflist(backend, data, "fwchbr0"))
    cni = CNIConfig([str(launcher_dir)], cache_dir=str(tmp_path / "cache"))
    rt = RuntimeConf("fwchain-ctr", ct.path, "eth0")
    result = cni.add_network_list(net, rt)
    assert result is not None
    ip = result.ips[0].ip
    assert ip.startswith("198.18.40.") and result.interfaces[0].name == "fwchbr0"
    if backend == "nftables":
        comments = [r.get("comment") for r in nft_rules("forward")]
        assert comments.count("fwchain:fwchain-ctr:eth0") == 2
        assert [r["comment"] for r in nft_rules("isolation_stage_2")] == [
            "ingressPolicy: to bridge fwchbr0"
        ]
    else:
        rules = filter_table()
        assert f"-A CNI-FORWARD -s {ip}/32 -j ACCEPT" in rules
        assert any(r.startswith("-A CNI-ISOLATION-STAGE-2 -o fwchbr0") for r in rules)
    cni.check_network_list(net, rt)
    cni.gc_network_list(net, [("fwchain-ctr", "eth0")])  # still valid: kept
    if backend == "nftables":
        assert len(nft_rules("forward")) == 4  # isolation jump, admin jump, 2 of ours
    cni.del_network_list(net, rt)
    if backend == "nftables":
        assert [r.get("comment") for r in nft_rules("forward")] == [
            "CNI firewall plugin rules (ingressPolicy)",
            "CNI firewall plugin admin overrides",
        ]
    else:
        assert not any(ip + "/32" in r for r in filter_table())
    cni.del_network_list(net, rt)  # twice
