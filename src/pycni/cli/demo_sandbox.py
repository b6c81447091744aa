"""What both demos stand on: a throwaway sandbox and how results are printed."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from pycni.cli.main import Failure

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable


class DemoFailed(Failure):
    """The demo's own check failed: "pycni: demo failed: <what>", exit 1."""


def say(line: str = "") -> None:
    from pycni.cli.main import out

    out(line + "\n")


class Sandbox:
    """Namespaces, directories and processes the demo creates, all removed
    by close(); verify_removed() then proves it, and that the real host's
    links are what they were when the sandbox was made."""

    def __init__(self) -> None:
        self.host_links_before = host_link_names()
        self.tag = secrets.token_hex(3)
        self.tmp = Path(tempfile.mkdtemp(prefix="pycni-demo-"))
        self.namespaces: list[str] = []
        self.host = ""
        self._cleanups: list[tuple[Callable[..., object], tuple]] = []

    def defer(self, fn: Callable[..., object], *args: object) -> None:
        """Have close() call `fn(*args)` before the namespaces go (last deferred, first called)."""
        self._cleanups.append((fn, args))

    def new_netns(self, role: str) -> str:
        from pycni.kernel import netns

        name = f"pycni-demo-{role}-{self.tag}"
        self.namespaces.append(name)  # first: an interrupted create is removed too
        return netns.create_named(name)

    def close(self, trap=None) -> None:
        """The teardown; `trap` (a `signals.Trap`) is held so that a signal
        cannot cut it short."""
        from pycni.kernel import netns

        if trap is not None:
            trap.hold()
        for fn, args in reversed(self._cleanups):
            fn(*args)
        for name in reversed(self.namespaces):
            netns.delete_named(name)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def verify_removed(self, out, width: int, note: str = "") -> None:
        """After close(): no namespace of the sandbox is left and the real
        host's links are unchanged; says so in two report lines whose label
        column is `width` wide (`note` is added to the sandbox line)."""
        left = [n for n in self.namespaces if os.path.exists(f"/run/netns/{n}")]
        if left:
            raise DemoFailed(f"namespaces still present: {left}")
        if host_link_names() != self.host_links_before:
            raise DemoFailed("the real host's links changed")
        n = len(self.host_links_before)
        out(f"      {'sandbox':<{width}}removed ({len(self.namespaces)} namespaces{note})")
        out(f"      {'real host':<{width}}untouched ({n} links before and after)")


def spawn(argv: list[str], netns: str, log: Path) -> subprocess.Popen:
    """Start `argv` inside `netns`: the child inherits the spawning thread's netns."""
    from pycni.kernel import netns as nsmod

    with nsmod.enter(netns), open(log, "wb") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def host_link_names() -> list[str]:
    from pycni.kernel.netlink import RtNetlink

    with RtNetlink() as nl:
        return sorted(link.name for link in nl.link_list())


def ms(start: float) -> str:
    return f"{(time.monotonic() - start) * 1000:.0f} ms"


def check_all(out, cni, net, containers: dict) -> None:
    """Step [4] of both demos: CHECK of each container ({name: (rt, result)}), timed."""
    for name, (rt, _) in containers.items():
        start = time.monotonic()
        cni.check_network_list(net, rt)
        out(f"[4] CHECK container {name}: ok ({ms(start)})")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)
