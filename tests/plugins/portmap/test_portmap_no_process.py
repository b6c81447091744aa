"""The default backend starts no process: no `nft`, no iptables tool.

PATH holds an empty directory and one with only python, so a tool started
by name would not be found; a second run puts trap tools on PATH that
record being started, so a started tool would be seen, not just fail.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

from support.outcomes import err, ok
from support.portmap import (
    V4,
    V6,
    make_conf,
    mapping,
    nft_rules_with_comment,
    prev_result,
    route_localnet,
    run,
)
from support.sandbox import ip

TOOLS = (
    "nft",
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
    "conntrack",
    "ip",
    "sysctl",
)


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    empty, pydir, traps = tmp_path / "empty", tmp_path / "py", tmp_path / "traps"
    for d in (empty, pydir, traps):
        d.mkdir()
    (pydir / "python3").symlink_to(sys.executable)
    log = tmp_path / "started"
    for name in TOOLS:
        trap = traps / name
        trap.write_text(f"#!/bin/sh\necho {name} >> {log}\nexit 1\n")
        trap.chmod(0o755)
    return {"empty": empty, "py": pydir, "traps": traps, "log": log}


@pytest.mark.parametrize("with_traps", [False, True])
def test_add_check_del_without_tools(with_traps, paths, host_ns, ct):
    brname = "pm" + secrets.token_hex(3)
    ip("link", "add", brname, "type", "bridge")
    ip("addr", "add", "198.18.0.1/24", "dev", brname)
    ip("link", "set", brname, "up")
    dirs = [paths["empty"], paths["py"]] + ([paths["traps"]] if with_traps else [])
    env = {"PATH": os.pathsep.join(str(d) for d in dirs)}
    conf = make_conf(
        [mapping(8080, 80), mapping(8081, 81, "udp"), mapping(8082, 82, "sctp", "fd00::1")],
        prev_result((V4, V6)),
        conditionsV4=["iifname", "pm*"],
    )
    ok(run("ADD", conf, ct, env=env))
    assert len(nft_rules_with_comment("pmctr")) == 8  # v4: 2 DNAT + 2 masq; v6: 3 + 1
    assert route_localnet(brname) == "1"
    ok(run("CHECK", conf, ct, env=env))
    ok(run("DEL", conf, ct, env=env))
    ok(run("DEL", conf, ct, env=env))
    assert nft_rules_with_comment("pmctr") == []
    assert not paths["log"].exists(), paths["log"].read_text()


def test_the_traps_catch_a_started_tool(paths, host_ns, ct):
    """The control: the iptables backend does start iptables-save."""
    env = {"PATH": os.pathsep.join(str(paths[d]) for d in ("empty", "py", "traps"))}
    conf = make_conf([mapping(8080, 80)], prev_result((V4,)), backend="iptables")
    err(run("ADD", conf, ct, env=env))
    assert "iptables-save" in paths["log"].read_text()
