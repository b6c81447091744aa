"""ADD is all or nothing: when the second family's rules fail, the first
family's rules and the route_localnet change are undone.

Failures are injected at portmap's fault points: a wrapper makes
`pycni.faultpoint.step("<name>")` raise at the n-th time (the fault-matrix
tests use the same points to SIGKILL the process instead, which leaves the
rules for DEL to remove: also tested here), and a real kernel refusal is
provoked by an ip6 table that cannot take portmap's chains.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

from support.outcomes import err, ok
from support.portmap import (
    V4,
    V6,
    container_lines,
    make_conf,
    mapping,
    nat_table,
    nft_rules_with_comment,
    prev_result,
    route_localnet,
    run,
    tool,
)
from support.sandbox import ip

FAILING = """
import os
import pycni.faultpoint as fp

want, _, nth = os.environ["PM_FAIL_STEP"].partition("#")
count = int(nth or 1)
real = fp.step


def step(name):
    global count
    real(name)
    if name == want:
        count -= 1
        if count == 0:
            raise OSError(5, "injected failure at " + name)


fp.step = step  # before the plugin's modules bind it
from pycni.plugins.meta.portmap import main

main()
"""

MAPS = [mapping(8080, 80), mapping(8081, 81, "udp")]


@pytest.fixture
def bridge(host_ns) -> str:
    """A bridge the host routes the container subnet through (the device
    route_localnet is set on), with route_localnet 0."""
    name = "pm" + secrets.token_hex(3)
    ip("link", "add", name, "type", "bridge")
    ip("addr", "add", "198.18.0.1/24", "dev", name)
    ip("link", "set", name, "up")
    assert route_localnet(name) == "0"
    return name


@pytest.fixture
def failing(tmp_path: Path) -> str:
    path = tmp_path / "failing_portmap.py"
    path.write_text(f"#!{sys.executable}\n{FAILING}")
    return str(path)


def nothing_of_the_container(cid: str = "pmctr") -> None:
    assert nft_rules_with_comment(cid) == []
    assert container_lines(nat_table(False)) == []
    assert container_lines(nat_table(True)) == []


@pytest.mark.parametrize(
    ("backend", "fault"),
    [
        ("nftables", "portmap.add.rules#2"),
        ("iptables", "portmap.add.rules#2"),
        ("iptables", "iptables.restore#2"),  # inside the backend, before ip6tables-restore
    ],
)
def test_second_family_fails(backend, fault, bridge, failing, ct):
    conf = make_conf(MAPS, prev_result((V4, V6)), backend=backend)
    out = run("ADD", conf, ct, plugin=failing, env={"PM_FAIL_STEP": fault})
    _, msg = err(out)
    assert "injected failure" in msg
    nothing_of_the_container()
    assert route_localnet(bridge) == "0"
    # the same ADD without the fault: the rules and the sysctl are there
    ok(run("ADD", conf, ct, plugin=failing, env={"PM_FAIL_STEP": "none"}))
    assert route_localnet(bridge) == "1"
    ok(run("CHECK", conf, ct))


def test_kernel_refuses_the_ip6_chains(bridge, ct):
    """An ip6 cni_hostport whose prerouting is a filter chain: the nat chain
    of that name cannot be added, so the IPv6 transaction fails as a whole."""
    tool("nft", "add table ip6 cni_hostport")
    tool(
        "nft", "add chain ip6 cni_hostport prerouting { type filter hook prerouting priority 0 ; }"
    )
    conf = make_conf(MAPS, prev_result((V4, V6)), backend="nftables")
    code, msg = err(run("ADD", conf, ct))
    assert code == 999 and "nftables" in msg, msg
    nothing_of_the_container()
    assert route_localnet(bridge) == "0"


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_killed_between_families_then_del(backend, bridge, ct):
    """SIGKILLed after the IPv4 rules (no rollback can run): DEL removes them."""
    conf = make_conf(MAPS, prev_result((V4, V6)), backend=backend)
    out = run("ADD", conf, ct, env={"PYCNI_FAULT_STEP": "portmap.add.rules#2"})
    assert out.exit_code == -9, out
    left = nft_rules_with_comment("pmctr") + container_lines(nat_table(False))
    assert left and not container_lines(nat_table(True))
    ok(run("DEL", {k: v for k, v in conf.items() if k != "prevResult"}, ct))
    nothing_of_the_container()
