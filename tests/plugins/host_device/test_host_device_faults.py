"""host-device killed at every step of ADD and DEL (pycni.faultpoint): the
DEL a runtime sends afterwards puts the device back on the host under its
name, without our alias, and releases the address."""

from __future__ import annotations

from support.faults import occurrences
from support.host_device import DEV, IFNAME, MAC
from support.outcomes import ok


def steps_of(hd, command: str, conf: dict, ct) -> list[str]:
    trace = hd.tmp / f"trace-{command}"
    ok(hd.run(command, conf, ct, env={"PYCNI_FAULT_TRACE": str(trace)}))
    return [fault for fault, _ in occurrences(trace.read_text().split())]


def back_on_host(hd, ct) -> dict:
    link = hd.link(DEV)
    assert link is not None and hd.link(IFNAME, ct) is None
    return {"mac": link["mac"], "alias": link["alias"], "reservations": hd.reservations()}


def test_every_add_step_then_del(hd):
    hd.device()
    ct = hd.container()
    conf = hd.conf(ipam=True, device=DEV)
    steps = steps_of(hd, "ADD", conf, ct)
    ok(hd.run("DEL", conf, ct))
    start = back_on_host(hd, ct)
    assert start == {"mac": MAC, "alias": "", "reservations": []}
    assert [s for s in steps if s.startswith("host-device.")] == [
        "host-device.add.move-in#1",
        "host-device.add.up#1",
        "host-device.add.state#1",
    ], steps
    for step in steps:
        killed = hd.run("ADD", conf, ct, env={"PYCNI_FAULT_STEP": step})
        assert killed.exit_code == -9, (step, killed)
        ok(hd.run("DEL", conf, ct))
        assert back_on_host(hd, ct) == start, step


def test_every_del_step_then_del_again(hd):
    hd.device()
    ct = hd.container()
    conf = hd.conf(ipam=True, device=DEV)
    ok(hd.run("ADD", conf, ct))
    steps = steps_of(hd, "DEL", conf, ct)
    start = back_on_host(hd, ct)
    assert hd.link(DEV)["up"]
    assert steps == ["host-device.del.move-out#1", "host-device.del.restore-state#1"], steps
    for step in steps:
        ok(hd.run("ADD", conf, ct))
        killed = hd.run("DEL", conf, ct, env={"PYCNI_FAULT_STEP": step})
        assert killed.exit_code == -9, (step, killed)
        ok(hd.run("DEL", conf, ct))
        assert back_on_host(hd, ct) == start, step
        assert hd.link(DEV)["up"], step
        assert not hd.state_file().exists()
