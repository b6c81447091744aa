"""SIGKILL at every step of a ptp ADD and DEL (pycni.faultpoint); the DEL a
runtime sends afterwards (without prevResult: an ADD killed mid-way has no
cached result) succeeds and leaves nothing of the attachment behind.

The steps are not listed here: a clean ADD + DEL runs first with
PYCNI_FAULT_TRACE and records every step passed, in ptp and in the
host-local process it runs (killing host-local there fails ptp's ADD, which
then rolls back).
"""

from __future__ import annotations

from pathlib import Path

from support.bridge import links
from support.faults import occurrences
from support.outcomes import ok
from support.ptp import host_veths, no_rules_left, routes_of
from support.sandbox import no_dad

CID = "pt-fault"


def nothing_left(net, ct) -> list[str]:
    problems = []
    if "eth0" in links(ct.name):
        problems.append("eth0 left in the container")
    if host_veths():
        problems.append(f"host veths left: {host_veths()}")
    if routes_of(None) or routes_of(None, "-6"):
        problems.append(f"host routes left: {routes_of(None) + routes_of(None, '-6')}")
    if net.reservations():
        problems.append(f"reservations left: {net.reservations()}")
    if not no_rules_left():
        problems.append("masquerade rules left")
    return problems


def test_kill_at_every_step_then_del_cleans_up(net, netns_factory, tmp_path: Path):
    ct = netns_factory()
    no_dad()  # an ADD need not wait a second for IPv6 DAD
    no_dad(ct.name)
    conf = net.conf(subnets=("198.18.12.0/24", "fd00:18:12::/64"), ipMasq=True)
    runner = net.runner(ct, container_id=CID)

    def traced(op: str) -> list[str]:
        trace = tmp_path / f"trace-{op}"
        verb = runner.add if op == "ADD" else runner.delete
        ok(verb(conf, env={"PYCNI_FAULT_TRACE": str(trace)}))
        return trace.read_text().split() if trace.exists() else []

    add_steps, del_steps = traced("ADD"), traced("DEL")
    assert nothing_left(net, ct) == []
    assert {"veth.create", "ptp.add.host-route", "ipmasq.nft"} <= set(add_steps), add_steps
    assert "ptp.del.delete-veth" in del_steps, del_steps

    failures = []
    for verb, steps in (("ADD", add_steps), ("DEL", del_steps)):
        for fault, _ in occurrences(steps):
            if verb == "DEL":
                ok(runner.add(conf))
            run = runner.add if verb == "ADD" else runner.delete
            out = run(conf, env={"PYCNI_FAULT_STEP": fault})
            assert not out.ok, f"{verb} survived its fault at {fault}"
            cleanup = runner.delete(conf)  # the runtime's DEL after a failed ADD or DEL
            if not cleanup.ok:
                failures.append(f"{verb} killed at {fault}: the DEL after it failed: {cleanup}")
            failures += [f"{verb} killed at {fault}: {p}" for p in nothing_left(net, ct)]
    assert not failures, "\n".join(failures)
