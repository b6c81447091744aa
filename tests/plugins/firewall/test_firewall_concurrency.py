"""Concurrent first ADDs on a fresh host: every attachment's rules arrive,
the shared chains keep them, and the shared jumps exist once.

iptables: the chains are created with `-N` inside the restore (a `:chain`
line would flush a chain another ADD created meanwhile), and a restore that
loses such a race is planned again. nftables: "add the jump unless present"
can race, and every ADD removes second copies of the shared rules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.firewall import PLUGIN, filter_table, make_conf, nft_rules, prev_result

N = 12


def start(conf: dict, ct, cid: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": ct.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nonexistent",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from {PLUGIN} import main; main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    return proc


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_parallel_first_adds(backend, ct):
    procs = []
    for i in range(N):
        prev = prev_result((f"198.18.0.{10 + i}/24", f"fd00:18::{10 + i:x}/64"))
        conf = make_conf("1.0.0", prev, backend=backend, ingressPolicy="same-bridge")
        procs.append(start(conf, ct, f"c{i}"))
    for p in procs:
        assert p.stdout is not None and p.stderr is not None
        out, errout = p.stdout.read(), p.stderr.read()
        assert p.wait(120) == 0, (out, errout)
    if backend == "iptables":
        for v6 in (False, True):
            rules = filter_table(v6)
            assert sum(r.startswith("-A CNI-FORWARD -s ") for r in rules) == N, rules
            assert sum(r.startswith("-A CNI-FORWARD -d ") for r in rules) == N
            assert sum(r.endswith("-j CNI-FORWARD") for r in rules) == 1
            assert sum(r.endswith("-j CNI-ISOLATION-STAGE-1") for r in rules) == 1
    else:
        forward = nft_rules("forward")
        comments = [r.get("comment", "") for r in forward]
        assert comments.count("CNI firewall plugin admin overrides") == 1
        assert comments.count("CNI firewall plugin rules (ingressPolicy)") == 1
        assert sorted(c for c in comments if c.startswith("fwnet:")) == sorted(
            f"fwnet:c{i}:eth0" for i in range(N) for _ in range(4)
        )
        assert len(nft_rules("isolation_stage_1")) == 1
        assert len(nft_rules("isolation_stage_2")) == 1


def test_a_chain_created_meanwhile_is_not_flushed(host_ns):
    """The race made deterministic: a chain appears between the save and
    the restore. The restore fails instead of flushing it; _apply plans
    again and both rules end up there."""
    from pycni.netfilter.iptables import IptablesError, Table
    from pycni.plugins.meta.firewall import iptables_backend

    from support.firewall import iptables

    mine = ["-s", "198.18.0.5/32", "-j", "ACCEPT"]
    theirs = ["-s", "198.18.0.99/32", "-j", "ACCEPT"]
    table = Table.read(4, "filter")
    iptables("-N", "CNI-FORWARD")
    iptables("-A", "CNI-FORWARD", *theirs)
    table.ensure_chain("CNI-FORWARD")
    table.append_unique("CNI-FORWARD", mine)
    with pytest.raises(IptablesError, match="already exists"):
        table.commit("test")
    assert "-A CNI-FORWARD -s 198.18.0.99/32 -j ACCEPT" in filter_table()

    calls = []

    def plan(t: Table) -> None:
        calls.append(1)
        if len(calls) == 1:  # another process creates the chain right after our read
            iptables("-N", "CNI-OTHER")
            iptables("-A", "CNI-OTHER", *theirs)
        t.ensure_chain("CNI-OTHER")
        t.append_unique("CNI-OTHER", mine)

    iptables_backend._apply(4, plan, "test", "test.step")
    assert len(calls) == 2
    rules = filter_table()
    assert "-A CNI-OTHER -s 198.18.0.99/32 -j ACCEPT" in rules
    assert "-A CNI-OTHER -s 198.18.0.5/32 -j ACCEPT" in rules


def test_duplicate_shared_rules_are_removed(ct):
    """What two racing nftables ADDs leave (two admin jumps, two isolation
    rules of one bridge) is cleaned by the next ADD."""
    from support.firewall import nft, run
    from support.outcomes import ok

    conf = make_conf("1.0.0", prev_result(), backend="nftables", ingressPolicy="same-bridge")
    ok(run(PLUGIN, "ADD", conf, ct, "c1"))
    t = ("inet", "cni_firewall")
    nft(
        "insert",
        "rule",
        *t,
        "forward",
        "jump",
        "admin",
        "comment",
        '"CNI firewall plugin admin overrides"',
    )
    nft(
        "add",
        "rule",
        *t,
        "isolation_stage_2",
        "oifname",
        "fwbr0",
        "drop",
        "comment",
        '"ingressPolicy: to bridge fwbr0"',
    )
    assert [r.get("comment") for r in nft_rules("forward")].count(
        "CNI firewall plugin admin overrides"
    ) == 2
    assert len(nft_rules("isolation_stage_2")) == 2
    ok(run(PLUGIN, "ADD", conf, ct, "c2"))
    assert [r.get("comment") for r in nft_rules("forward")].count(
        "CNI firewall plugin admin overrides"
    ) == 1
    assert len(nft_rules("isolation_stage_2")) == 1
