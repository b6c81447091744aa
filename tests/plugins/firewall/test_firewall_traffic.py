"""Traffic through the sandbox host: the rules do what they are for.

Containers sit behind the sandbox host, which routes between them. With a
forward policy of DROP (iptables: FORWARD's policy; nftables: the policy an
admin sets on our `forward` chain) nothing passes until the firewall ADDs
the containers; after the DEL of one, new connections from it are dropped
again while replies to the other's connections still pass (the conntrack
rule). The same-bridge ingress policy drops traffic between two bridges.
"""

from __future__ import annotations

import pytest

from support.firewall import PLUGIN, Routed, iptables, make_conf, nft, prev_result, run
from support.outcomes import ok


def conf_for(i: int, backend: str, bridge: str = "fwbr0", **keys) -> dict:
    return make_conf("1.0.0", prev_result((f"198.18.{i}.2/24",), bridge), backend=backend, **keys)


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_forward_drop_is_overridden_for_the_containers(backend, host_ns, netns_factory):
    net = Routed(netns_factory, host_ns)
    a, b = net.add(1), net.add(2)
    assert net.ping(1, 2)  # the sandbox host forwards
    if backend == "iptables":
        iptables("-P", "FORWARD", "DROP")
        assert not net.ping(1, 2)
    ok(run(PLUGIN, "ADD", conf_for(1, backend), a, "ca"))
    if backend == "nftables":
        nft("add", "chain", "inet", "cni_firewall", "forward", "{ policy drop; }")
    # a may open connections (its source rule), b's replies are accepted as
    # RELATED/ESTABLISHED to a; b may not open any
    assert net.ping(1, 2) and not net.ping(2, 1)
    ok(run(PLUGIN, "ADD", conf_for(2, backend), b, "cb"))
    assert net.ping(1, 2) and net.ping(2, 1)
    ok(run(PLUGIN, "DEL", conf_for(2, backend), b, "cb"))
    assert net.ping(1, 2) and not net.ping(2, 1)
    ok(run(PLUGIN, "DEL", conf_for(1, backend), a, "ca"))
    assert not net.ping(1, 2) and not net.ping(2, 1)


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_same_bridge_policy_isolates_bridges(backend, host_ns, netns_factory):
    net = Routed(netns_factory, host_ns)
    a, b = net.add(1, bridge="fwbr1"), net.add(2, bridge="fwbr2")
    assert net.ping(1, 2)
    ok(run(PLUGIN, "ADD", conf_for(1, backend, "fwbr1"), a, "ca"))
    ok(run(PLUGIN, "ADD", conf_for(2, backend, "fwbr2"), b, "cb"))
    assert net.ping(1, 2)  # open: the firewall only accepts
    keys = {"ingressPolicy": "same-bridge"}
    ok(run(PLUGIN, "ADD", conf_for(1, backend, "fwbr1", **keys), a, "ca"))
    assert net.ping(1, 2)  # only fwbr1 is isolated: traffic to fwbr2 is not dropped
    ok(run(PLUGIN, "ADD", conf_for(2, backend, "fwbr2", **keys), b, "cb"))
    assert not net.ping(1, 2) and not net.ping(2, 1)
