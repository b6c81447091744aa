"""Stop signals for the commands that own kernel state: `pycni run`, `pycni demo`.

A terminal or a supervisor stops a program with INT, TERM, HUP or QUIT. The
commands that create a netns, veths, IP reservations and cache entries must
still tear them down, so while a `Trap` is active:

* before `hold()` (setting up), the first stop signal raises `Interrupted`
  where the main thread is; the command unwinds through its teardown;
* `hold()` blocks the stop signals (and SIGCHLD) for the teardown: a second
  Ctrl-C cannot cut it short, nor kill the DEL plugins it runs (they inherit
  the mask), and the signals wait in the kernel;
* `wait_child(pid)` (after `hold()`) waits for the command's process and
  forwards each stop signal to it -- except one the terminal sent to the
  whole foreground process group, which the child got already;
* leaving the trap collects what is still pending and restores the
  dispositions and the mask. Signals the process inherited as ignored
  (nohup, a background job) stay ignored, also in the child.
"""

from __future__ import annotations

import os
import signal

from pycni.cli.main import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
#: si_code of a signal the kernel generated (the terminal's ^C, ^\, hangup)
SI_KERNEL = 0x80


class Trap:
    """See the module docstring. `received` lists every stop signal that came."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._saved: dict[int, object] = {}
        self._armed = False
        self._old_mask: set[int] | None = None

    @property
    def child_mask(self) -> set[int]:
        """The signal mask a child must start with: the one we started with."""
        if self._old_mask is not None:
            return set(self._old_mask)
        return set(signal.pthread_sigmask(signal.SIG_BLOCK, ()))

    def __enter__(self) -> Trap:
        for sig in STOP_SIGNALS:
            old = signal.getsignal(sig)
            if old == signal.SIG_IGN:
                continue
            self._saved[sig] = signal.SIG_DFL if old is None else old  # None: not set by Python
            signal.signal(sig, self._handler)
        self._armed = True
        return self

    def _handler(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if self._armed:
            self._armed = False  # raise once: the teardown must not be cut short
            raise Interrupted(signum)

    def hold(self) -> None:
        """Stop raising; block the stop signals and SIGCHLD until the trap ends."""
        self._armed = False
        if self._old_mask is None:
            self._old_mask = set(
                signal.pthread_sigmask(signal.SIG_BLOCK, {*self._saved, signal.SIGCHLD})
            )

    def wait_child(self, pid: int) -> int:
        """Wait for child `pid` (spawned after `hold()`), forwarding stop
        signals to it; return its wait status."""
        waitset = {*self._saved, signal.SIGCHLD}
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            info = signal.sigwaitinfo(waitset)
            if info.si_signo == signal.SIGCHLD:
                continue
            self.received.append(info.si_signo)
            if info.si_code == SI_KERNEL and _in_our_group(pid):
                continue  # the terminal signalled the whole group, child included
            try:
                os.kill(pid, info.si_signo)
            except ProcessLookupError:
                pass

    def __exit__(self, *exc: object) -> None:
        self._armed = False
        if self._old_mask is not None:
            waitset = {*self._saved, signal.SIGCHLD}
            while True:
                info = signal.sigtimedwait(waitset, 0)
                if info is None:
                    break
                if info.si_signo != signal.SIGCHLD:
                    self.received.append(info.si_signo)
        for sig, old in self._saved.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        if self._old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
            self._old_mask = None


def _in_our_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == os.getpgrp()
    except ProcessLookupError:
        return True
