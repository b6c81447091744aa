"""`table`, `gateways`, `addSourceHints` (newer than Debian's 1.1.1, so checked
against what the upstream source does), and the netns flock that serialises
sbr invocations, shared with the Go plugin."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time

import pytest

from pycni.skel.testing import plugin_argv

from support.bridge import diff
from support.outcomes import ok
from support.sandbox import ip
from support.sbr import (
    CONTAINER_ID,
    PLUGIN,
    conf,
    prepare,
    prev_result,
    routes_in,
    rules_to,
    run,
    state,
)

DUAL = {
    "addrs": ("198.18.1.2/24", "fd00:18:1::2/64"),
    "routes": (
        "default via 198.18.1.1",
        "default via fd00:18:1::1",
        "198.19.5.0/24 via 198.18.1.1",
    ),
}
DUAL_IPS = [("198.18.1.2/24", "198.18.1.1", 0), ("fd00:18:1::2/64", "fd00:18:1::1", 0)]


# --- table ------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [1000, 4294967295])
def test_table_adds_only_rules(container_ns, table):
    prepare(container_ns, **DUAL)
    before = state(container_ns)
    c = conf(prev_result(DUAL_IPS), table=table)
    ok(run(PLUGIN, "ADD", c, container_ns))
    after = state(container_ns)
    assert rules_to(container_ns, table) == [(32765, "198.18.1.2"), (32765, "fd00:18:1::2")]
    for key in ("routes-4", "routes-6"):
        assert after[key] == before[key], key
    for _ in (1, 2):
        ok(run(PLUGIN, "DEL", conf(None, table=table), container_ns))
        assert state(container_ns) == before


def test_del_with_table_leaves_rules_to_other_tables(container_ns):
    prepare(container_ns, **DUAL, rules=("from 198.18.1.2 lookup 2000",))
    c = conf(prev_result(DUAL_IPS), table=1000)
    ok(run(PLUGIN, "ADD", c, container_ns))
    ok(run(PLUGIN, "DEL", c, container_ns))
    assert rules_to(container_ns, 1000) == []
    assert rules_to(container_ns, 2000) == [(32766 - 1, "198.18.1.2")]
    # without `table`, DEL takes every rule from an address of the interface
    ok(run(PLUGIN, "DEL", conf(None), container_ns))
    assert rules_to(container_ns, 2000) == []


def test_table_needs_no_interface(container_ns):
    """With `table` only rules are added: the reference never looks the link up."""
    c = conf(prev_result([("198.18.1.2/24", None, None)]), table=1000)
    ok(run(PLUGIN, "ADD", c, container_ns))
    assert rules_to(container_ns, 1000) == [(32765, "198.18.1.2")]
    ok(run(PLUGIN, "DEL", c, container_ns))  # the interface is not there: nothing to tidy
    assert rules_to(container_ns, 1000) == [(32765, "198.18.1.2")]


# --- gateways ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "static",
    [("198.18.1.254", "fd00:18:1::fe"), ("198.18.1.254",), ("fd00:18:1::fe",)],
    ids=["both", "v4", "v6"],
)
def test_static_gateways_win(static, netns_factory, go_sbr):
    """A static gateway of the address's family replaces the prevResult's.
    Debian's Go build has no `gateways`: its twin gets the static gateways
    as the prevResult's own, and the kernel state must be the same."""
    setup = {"addrs": DUAL["addrs"], "routes": ("198.19.0.0/16 via 198.18.1.1",)}
    by_family = {("6" if ":" in gw else "4"): gw for gw in static}
    go_ips = [
        (addr, by_family.get("6" if ":" in addr else "4", gw), idx) for addr, gw, idx in DUAL_IPS
    ]
    go_ns, py_ns = netns_factory("go"), netns_factory("py")
    prepare(go_ns, **setup)
    prepare(py_ns, **setup)
    ok(run(go_sbr, "ADD", conf(prev_result(go_ips)), go_ns))
    ok(run(PLUGIN, "ADD", conf(prev_result(DUAL_IPS), gateways=list(static)), py_ns))
    problems = diff(state(go_ns), state(py_ns), "state")
    assert not problems, "\n".join(problems)
    defaults = {r.get("gateway") for t in (100, 101) for r in routes_in(py_ns, t)}
    assert set(by_family.values()) <= defaults


# --- addSourceHints ----------------------------------------------------------------------


def test_add_source_hints(container_ns):
    prepare(container_ns, **DUAL)
    c = conf(prev_result(DUAL_IPS), addSourceHints=True)
    ok(run(PLUGIN, "ADD", c, container_ns))
    main = [r for r in routes_in(container_ns, "main") if r.get("dev") == "eth0"]
    # IPv4: the kernel's subnet route becomes one with the source hint; the
    # default and gateway routes leave. IPv6 routes are all universe scope,
    # so all of them leave and the hint route (metric 1024) is added.
    assert [(r["dst"], r.get("prefsrc"), r.get("scope"), r.get("metric")) for r in main] == [
        ("198.18.1.0/24", "198.18.1.2", "link", None),
        ("fd00:18:1::/64", "fd00:18:1::2", None, 1024),
    ]
    t100 = {(r["dst"], r.get("gateway")) for r in routes_in(container_ns, 100)}
    assert {
        ("default", "198.18.1.1"),
        ("198.18.1.0/24", None),
        ("198.19.5.0/24", "198.18.1.1"),
    } <= t100
    assert ("default", "fd00:18:1::1") in {
        (r["dst"], r.get("gateway")) for r in routes_in(container_ns, 101)
    }
    assert rules_to(container_ns, 100) == [(32765, "198.18.1.2")]
    ok(run(PLUGIN, "DEL", c, container_ns))
    assert rules_to(container_ns, 100) == rules_to(container_ns, 101) == []


# --- the netns lock ----------------------------------------------------------------------


def start(plugin: str, command: str, config: dict, ns, ifname: str = "eth0") -> subprocess.Popen:
    env = {
        **os.environ,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": CONTAINER_ID,
        "CNI_NETNS": ns.path,
        "CNI_IFNAME": ifname,
        "CNI_ARGS": "",
        "CNI_PATH": "/nonexistent",
    }
    proc = subprocess.Popen(
        plugin_argv(plugin),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(config).encode())
    proc.stdin.close()
    proc.stdin = None  # written: communicate() must not touch it again
    return proc


@pytest.mark.parametrize("side", ["go", "py"])
def test_waits_for_the_netns_lock(side, container_ns, go_sbr):
    """Both implementations flock the netns file itself: one holding it
    makes the other wait (so they also serialise against each other)."""
    plugin = go_sbr if side == "go" else PLUGIN
    prepare(container_ns, **DUAL)
    c = conf(prev_result(DUAL_IPS))
    fd = os.open(container_ns.path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for command in ("ADD", "DEL"):
            proc = start(plugin, command, c, container_ns)
            time.sleep(1.0)
            assert proc.poll() is None, f"{command} did not wait for the lock"
            fcntl.flock(fd, fcntl.LOCK_UN)
            out, _err = proc.communicate(timeout=30)
            assert proc.returncode == 0, out
            fcntl.flock(fd, fcntl.LOCK_EX)
            expected = [(32765, "198.18.1.2")] if command == "ADD" else []
            assert rules_to(container_ns, 100) == expected
    finally:
        os.close(fd)


def test_parallel_adds_get_different_tables(container_ns, go_sbr):
    """Two interfaces of one container, ADDed at once (one by each
    implementation, several rounds): the lock keeps them from choosing the
    same table."""
    eth0 = conf(prev_result([("198.18.1.2/24", "198.18.1.1", 0)]))
    eth1 = conf(prev_result([("198.18.2.2/24", "198.18.2.1", 0)], ("eth1",)))
    for _ in range(3):
        prepare(container_ns, addrs=("198.18.1.2/24",), routes=("default via 198.18.1.1",))
        prepare(container_ns, ifname="eth1", addrs=("198.18.2.2/24",))
        procs = [
            start(go_sbr, "ADD", eth0, container_ns),
            start(PLUGIN, "ADD", eth1, container_ns, ifname="eth1"),
        ]
        for proc in procs:
            out, _err = proc.communicate(timeout=30)
            assert proc.returncode == 0, out
        found = {(t, src) for t in (100, 101) for _prio, src in rules_to(container_ns, t)}
        assert {src for _t, src in found} == {"198.18.1.2", "198.18.2.2"}
        assert {t for t, _src in found} == {100, 101}
        for ifname in ("eth0", "eth1"):
            ok(run(PLUGIN, "DEL", conf(None), container_ns, ifname=ifname))
            ip("link", "del", ifname, netns=container_ns.name)  # its routes go with it
        assert rules_to(container_ns, 100) == rules_to(container_ns, 101) == []
