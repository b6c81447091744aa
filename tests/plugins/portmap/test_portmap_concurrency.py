"""Parallel ADDs on a fresh host (a node starting its pods after a reboot):
every one succeeds and keeps its rules.

With the iptables backend each ADD is an iptables-save and an
iptables-restore --noflush; interleaved, a restore that declares
CNI-HOSTPORT-DNAT fails ("Chain already exists") or flushes the entry
rules another ADD just wrote, unless the read-modify-writes are serialized.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pycni.skel.testing import plugin_argv

from support.outcomes import ok
from support.portmap import (
    PLUGIN,
    make_conf,
    mapping,
    nat_table,
    nft_rules_with_comment,
    prev_result,
    run,
)

N = 8


def conf(i: int, backend: str) -> dict:
    return make_conf(
        [mapping(8080 + i, 80)], prev_result((f"198.18.0.{10 + i}/24",)), backend=backend
    )


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_parallel_adds_all_keep_their_rules(backend, host_ns, ct):
    procs = []
    for i in range(N):
        env = dict(
            os.environ,
            CNI_COMMAND="ADD",
            CNI_CONTAINERID=f"c{i}",
            CNI_NETNS=ct.path,
            CNI_IFNAME="eth0",
            CNI_PATH="/nonexistent",
        )
        proc = subprocess.Popen(
            plugin_argv(PLUGIN),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        procs.append(proc)
    for i, proc in enumerate(procs):  # all started, then all given their config at once
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(conf(i, backend)).encode())
        proc.stdin.close()
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        out, errs = proc.stdout.read(), proc.stderr.read()  # small: no pipe fills up
        proc.stdout.close()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, (out, errs)
    for i in range(N):
        ok(run("CHECK", conf(i, backend), ct, container_id=f"c{i}"))
    if backend == "iptables":
        entries = [line for line in nat_table() if line.startswith("-A CNI-HOSTPORT-DNAT")]
        assert len(entries) == N
        assert len([line for line in nat_table() if "-j CNI-HOSTPORT-DNAT" in line]) == 2
    else:
        assert all(len(nft_rules_with_comment(f"c{i}")) == 3 for i in range(N))
