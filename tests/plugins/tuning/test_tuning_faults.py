"""The tuning plugin killed at every step of ADD and DEL (pycni.faultpoint):
the DEL a runtime sends afterwards restores the link and leaves no file.

Sysctls are not compared: DEL does not restore them (nor does the reference).
"""

from __future__ import annotations

import pytest

from support.faults import occurrences
from support.outcomes import ok
from support.tuning import conf, files_under, link_state, run_tuning

FULL = {
    "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1", "net.ipv6.conf.eth0.accept_ra": "0"},
    "mac": "c2:11:22:33:44:55",
    "promisc": True,
    "mtu": 1400,
    "allmulti": True,
    "txQLen": 123,
}


def steps_of(command: str, ct, data_dir, tmp_path) -> list[str]:
    """The fault points a clean run passes, each as "name#n"."""
    trace = tmp_path / f"trace-{command}"
    ok(run_tuning(command, conf(ct, data_dir, **FULL), ct, env={"PYCNI_FAULT_TRACE": str(trace)}))
    return [fault for fault, _ in occurrences(trace.read_text().split())]


def test_every_add_step_then_del(ct, data_dir, tmp_path):
    start = link_state(ct)
    steps = steps_of("ADD", ct, data_dir, tmp_path)
    ok(run_tuning("DEL", conf(ct, data_dir, **FULL), ct))
    assert link_state(ct) == start
    assert len(steps) == 10, steps  # 2 sysctls, backup (+write, marker), 5 attributes
    for step in steps:
        c = conf(ct, data_dir, **FULL)
        killed = run_tuning("ADD", c, ct, env={"PYCNI_FAULT_STEP": step})
        assert killed.exit_code == -9, (step, killed)
        ok(run_tuning("DEL", c, ct))
        assert link_state(ct) == start, step
        assert files_under(data_dir) == [], step


def test_every_del_step_then_del_again(ct, data_dir, tmp_path):
    start = link_state(ct)
    ok(run_tuning("ADD", conf(ct, data_dir, **FULL), ct))
    steps = steps_of("DEL", ct, data_dir, tmp_path)
    assert len(steps) == 6, steps  # 5 attributes, remove the backup
    for step in steps:
        c = conf(ct, data_dir, **FULL)
        ok(run_tuning("ADD", c, ct))
        assert link_state(ct) != start
        killed = run_tuning("DEL", c, ct, env={"PYCNI_FAULT_STEP": step})
        assert killed.exit_code == -9, (step, killed)
        ok(run_tuning("DEL", c, ct))
        assert link_state(ct) == start, step
        assert files_under(data_dir) == [], step


@pytest.mark.parametrize("step", ["tuning.add.mac", "tuning.add.mtu", "tuning.add.txqlen"])
def test_add_killed_then_add_again_then_del(ct, data_dir, step):
    """A runtime retrying ADD without a DEL in between: the retried ADD keeps
    the first backup's values (the reference overwrites them with the
    half-tuned ones), so the final DEL gets back to the start."""
    start = link_state(ct)
    c = conf(ct, data_dir, **FULL)
    assert run_tuning("ADD", c, ct, env={"PYCNI_FAULT_STEP": step}).exit_code == -9
    ok(run_tuning("ADD", c, ct))
    ok(run_tuning("DEL", c, ct))
    assert link_state(ct) == start
    assert files_under(data_dir) == []
