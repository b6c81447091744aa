"""Named fault points: a test can SIGKILL this process at a chosen step.

pycni calls `step("<component>.<what>")` right before each kernel mutation
and each store or cache write of an operation (bridge, loopback, host-local,
the runtime's cache and locks, the masquerade and spoof-check rules). The
fault-matrix tests (tests/faults) use two environment variables:

* `PYCNI_FAULT_STEP=<name>` or `<name>#<n>`: SIGKILL this process when it
  reaches step `<name>` (the n-th time in this process; default the first).
* `PYCNI_FAULT_TRACE=<path>`: append each step name reached to `<path>`,
  one a line, so a test can record the steps an operation passes and then
  kill it at each one in turn.

Both are read once, at import (`load()` reads them again, for a process
that changes its own environment, e.g. a forked test child). Unset, a step
costs one global lookup and a truth test. This module imports only `os`, so
every layer (spec, kernel, runtime, plugins) may call it.
"""

from __future__ import annotations

import os

_armed = False
_kill_at: str | None = None
_kill_nth = 1
_seen = 0
_trace: str | None = None


def load(environ=None) -> None:
    """(Re)read PYCNI_FAULT_STEP and PYCNI_FAULT_TRACE from `environ` (os.environ)."""
    global _armed, _kill_at, _kill_nth, _seen, _trace
    env = os.environ if environ is None else environ
    want = env.get("PYCNI_FAULT_STEP") or None
    nth = 1
    if want is not None and "#" in want:
        want, _, count = want.rpartition("#")
        try:
            nth = int(count)
        except ValueError:
            nth = 1
    _kill_at, _kill_nth, _seen = want, nth, 0
    _trace = env.get("PYCNI_FAULT_TRACE") or None
    _armed = _kill_at is not None or _trace is not None


def step(name: str) -> None:
    """A fault point named `name`: a no-op unless a fault test armed it."""
    if _armed:
        _reached(name)


def _reached(name: str) -> None:
    global _seen
    if _trace is not None:
        fd = os.open(_trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (name + "\n").encode())
        finally:
            os.close(fd)
    if name == _kill_at:
        _seen += 1
        if _seen >= _kill_nth:
            os.kill(os.getpid(), 9)  # SIGKILL: no handler, no cleanup, no atexit
            os._exit(137)  # not reached: a signal to oneself arrives before kill() returns


load()
