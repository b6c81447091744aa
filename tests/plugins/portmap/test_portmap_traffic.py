"""Traffic through the port mappings, for both backends.

A sandbox host netns with a bridge network (pycni's bridge + host-local,
dual stack) and two containers; portmap forwards host port 8080 to port 80
of container A, where a TCP server answers. Container B reaches it through
the host's bridge address (IPv4 and IPv6), and the host itself through
127.0.0.1 (the output chain, route_localnet and the localhost masquerade).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from pycni.skel.testing import run_plugin

from support.outcomes import ok
from support.plugin_dirs import write_launcher
from support.portmap import Server, connect, make_conf, mapping, route_localnet, run

GW4, GW6 = "198.18.7.1", "fd00:18:7::1"
PONG = "pong 80"


def reach(host: str, port: int, ns_name: str | None = None, tries: int = 5) -> str:
    """connect() until it answers (the first IPv6 packets may wait for
    neighbour discovery and DAD); its last answer."""
    answer = ""
    for _ in range(tries):
        answer = connect(host, port, ns_name, timeout=1.0)
        if answer == PONG:
            break
        time.sleep(0.2)
    return answer


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_forwarded_port_answers(backend, host_ns, netns_factory, tmp_path: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    write_launcher(bindir / "host-local", "pycni.plugins.ipam.host_local")
    brname = "pm" + secrets.token_hex(3)
    bridge = {
        "cniVersion": "1.0.0",
        "name": "pmnet",
        "type": "bridge",
        "bridge": brname,
        "isGateway": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(tmp_path / "ipam"),
            "ranges": [[{"subnet": "198.18.7.0/24"}], [{"subnet": "fd00:18:7::/64"}]],
        },
    }
    a, b = netns_factory("a"), netns_factory("b")
    results = {}
    for ns, cid in ((a, "ctr-a"), (b, "ctr-b")):
        out = run_plugin(
            "pycni.plugins.main.bridge",
            "ADD",
            bridge,
            netns=ns.path,
            container_id=cid,
            path=[str(bindir)],
        )
        results[cid] = ok(out)
    if backend == "nftables" and not os.path.exists("/proc/sys/net/bridge"):
        pytest.skip("hairpin between containers of one bridge needs br_netfilter with nftables")
    conf = make_conf([mapping(8080, 80)], results["ctr-a"], backend=backend)
    assert ok(run("ADD", conf, a, container_id="ctr-a")) == results["ctr-a"]
    server = Server(a.name, "::", 80)
    try:
        assert reach(GW4, 8080, b.name) == PONG
        assert reach(GW6, 8080, b.name) == PONG
        assert reach("127.0.0.1", 8080) == PONG  # from the host itself
        assert route_localnet(brname) == "1"
        assert connect(GW4, 8081, b.name, timeout=1.0) != PONG  # no mapping, no answer
        ok(run("DEL", conf, a, container_id="ctr-a"))
        assert connect(GW4, 8080, b.name, timeout=1.0) != PONG
        assert connect("127.0.0.1", 8080, timeout=1.0) != PONG
    finally:
        server.close()
