"""pycni.faultpoint: disarmed it does nothing; armed it traces and SIGKILLs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pycni

SRC = os.path.dirname(os.path.dirname(pycni.__file__))

CODE = f"""
import sys
sys.path.insert(0, {SRC!r})
import __future__, os  # what any pycni module has loaded already
before = set(sys.modules)
from pycni.faultpoint import step
print(sorted(m for m in set(sys.modules) - before if m != "pycni"))
for name in ("a", "b", "a", "c", "a"):
    step(name)
    print(name, flush=True)
"""


def run(**env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYCNI_FAULT_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", CODE], capture_output=True, text=True, env=environ
    )


def test_disarmed_steps_do_nothing_and_import_nothing():
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == ["['pycni.faultpoint']", "a", "b", "a", "c", "a", ""]


def test_trace_records_every_step(tmp_path):
    trace = tmp_path / "trace"
    proc = run(PYCNI_FAULT_TRACE=str(trace))
    assert proc.returncode == 0, proc.stderr
    assert trace.read_text() == "a\nb\na\nc\na\n"


def test_kill_at_a_step_and_at_its_nth_time(tmp_path):
    trace = tmp_path / "trace"
    proc = run(PYCNI_FAULT_STEP="c", PYCNI_FAULT_TRACE=str(trace))
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split("\n")[1:] == ["a", "b", "a", ""]  # killed before c returned
    assert trace.read_text() == "a\nb\na\nc\n"
    proc = run(PYCNI_FAULT_STEP="a#3")
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split("\n")[1:] == ["a", "b", "a", "c", ""]
    proc = run(PYCNI_FAULT_STEP="a#4")  # never reached a 4th time
    assert proc.returncode == 0


def test_load_rereads_the_environment(monkeypatch):
    from pycni import faultpoint

    monkeypatch.setenv("PYCNI_FAULT_STEP", "x#2")
    try:
        faultpoint.load()
        assert (faultpoint._armed, faultpoint._kill_at, faultpoint._kill_nth) == (True, "x", 2)
        faultpoint.load({})
        assert not faultpoint._armed
        faultpoint.step("x")  # disarmed: returns
    finally:
        monkeypatch.delenv("PYCNI_FAULT_STEP")
        faultpoint.load()
