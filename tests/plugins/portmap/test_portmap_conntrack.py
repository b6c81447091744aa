"""ADD deletes the conntrack entries of its UDP host ports (the reference's
deletePortmapStaleConnections): a UDP flow that started before the mapping
would otherwise never be NATed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support.outcomes import ok
from support.portmap import V4, V6, make_conf, mapping, prev_result, run, tool


def udp_flows() -> set[tuple[str, str]]:
    """(family, original destination port) of the UDP entries of this netns."""
    out = set()
    for line in tool("cat", "/proc/net/nf_conntrack").splitlines():
        words = line.split()
        if len(words) > 2 and words[2] == "udp":
            dport = next(w for w in words if w.startswith("dport="))
            out.add((words[0], dport.split("=")[1]))
    return out


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_udp_entries_of_the_host_ports_are_deleted(backend, host_ns, ct):
    if not Path("/proc/net/nf_conntrack").exists():
        pytest.skip("no /proc/net/nf_conntrack")
    for fam in ("ip", "ip6"):  # conntrack runs in this netns once a rule needs it
        tool("nft", "add", "table", fam, "pmct")
        tool("nft", "add chain", fam, "pmct out { type filter hook output priority 0 ; }")
        tool("nft", "add rule", fam, "pmct out ct state new counter")
    for host, af in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        for port in (8081, 8082):
            with socket.socket(af, socket.SOCK_DGRAM) as s:
                s.sendto(b"x", (host, port))
    before = udp_flows()
    assert {("ipv4", "8081"), ("ipv4", "8082"), ("ipv6", "8081"), ("ipv6", "8082")} <= before
    conf = make_conf(
        [mapping(8081, 81, "udp"), mapping(8082, 82, "tcp")], prev_result((V4, V6)), backend=backend
    )
    ok(run("ADD", conf, ct))
    after = udp_flows()
    assert ("ipv4", "8081") not in after and ("ipv6", "8081") not in after
    assert {("ipv4", "8082"), ("ipv6", "8082")} <= after  # a TCP mapping's port: untouched
