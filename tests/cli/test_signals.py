"""pycni.cli.signals: what `pycni run` and `pycni demo` do with stop signals.

Real signals are sent only to child Python processes, never to pytest.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from pycni.cli import signals

SCRIPT = textwrap.dedent(
    """
    import json, os, signal
    from pycni.cli.main import Interrupted
    from pycni.cli.signals import Trap

    out = {"raised": [], "original": signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}
    with Trap() as trap:
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # setting up: raises
            for _ in range(1000): pass
        except Interrupted as err:
            out["raised"].append(err.signum)
            out["text"] = str(err)
            os.kill(os.getpid(), signal.SIGHUP)  # unwinding: only noted
            for _ in range(1000): pass
            trap.hold()
            os.kill(os.getpid(), signal.SIGQUIT)  # tearing down: blocked
            os.kill(os.getpid(), signal.SIGINT)
            out["pending"] = sorted(int(s) for s in signal.sigpending())
    out["received"] = trap.received
    out["restored"] = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    out["unblocked"] = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ()))
    print(json.dumps(out))
    """
)


def test_trap_raises_once_then_defers_until_the_end():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["raised"] == [signal.SIGTERM] and out["text"] == "interrupted by SIGTERM"
    assert out["pending"] == [signal.SIGINT, signal.SIGQUIT]
    assert sorted(out["received"]) == sorted(
        [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT]
    )
    assert out["original"] and out["restored"] and out["unblocked"] == []


def test_inherited_ignored_signals_stay_ignored():
    code = (
        "import signal\nfrom pycni.cli.signals import Trap\n"
        "with Trap():\n    print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    )
    proc = subprocess.run(  # as nohup or a shell's background job starts it
        ["sh", "-c", 'trap "" INT; exec "$@"', "sh", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "True\n", proc.stderr


class Info:
    def __init__(self, signo: int, code: int = 0) -> None:
        self.si_signo = signo
        self.si_code = code


@pytest.mark.parametrize(
    ("events", "same_group", "forwarded"),
    [
        # kill(1) from a supervisor or a user: passed on
        ([Info(signal.SIGTERM)], True, [signal.SIGTERM]),
        # the terminal's ^C reached the whole foreground group, the command too
        ([Info(signal.SIGINT, signals.SI_KERNEL)], True, []),
        # ... unless the command left our process group
        ([Info(signal.SIGINT, signals.SI_KERNEL)], False, [signal.SIGINT]),
        # SIGCHLD is not passed on; HUP and QUIT are
        (
            [Info(signal.SIGCHLD), Info(signal.SIGHUP), Info(signal.SIGQUIT)],
            True,
            [signal.SIGHUP, signal.SIGQUIT],
        ),
    ],
)
def test_wait_child_forwards_what_the_command_did_not_get(
    monkeypatch, events, same_group, forwarded
):
    pid = 424242
    pending = list(events)
    kills = []
    monkeypatch.setattr(signals.signal, "sigwaitinfo", lambda sigs: pending.pop(0))
    monkeypatch.setattr(
        signals.os, "waitpid", lambda p, flags: (0, 0) if pending else (pid, 9 << 8)
    )
    monkeypatch.setattr(signals.os, "kill", lambda p, sig: kills.append((p, sig)))
    monkeypatch.setattr(signals.os, "getpgrp", lambda: 7)
    monkeypatch.setattr(signals.os, "getpgid", lambda p: 7 if same_group else 8)
    trap = signals.Trap()
    trap._saved = dict.fromkeys(signals.STOP_SIGNALS, signal.SIG_DFL)
    assert trap.wait_child(pid) == 9 << 8
    assert kills == [(pid, sig) for sig in forwarded]
    assert [s for s in trap.received if s != signal.SIGCHLD] == [
        e.si_signo for e in events if e.si_signo != signal.SIGCHLD
    ]
