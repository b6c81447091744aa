"""Network-namespace sandboxes for tests.

Deliberately independent of pycni.kernel: the fixtures that isolate the real
host must not depend on the code under test.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
PREFIX = "pyc"

_libc = ctypes.CDLL(None, use_errno=True)
# Names this process created, so leak checks ignore other runs' namespaces.
CREATED: set[str] = set()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def unique_name(tag: str) -> str:
    return f"{PREFIX}-{tag}-{secrets.token_hex(4)}"


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def ip_json(*args: str, netns: str | None = None) -> list:
    import json

    out = ip("-json", *args, netns=netns)
    return json.loads(out) if out.strip() else []


def in_netns(netns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], **kw)


class Netns:
    """A named netns under /run/netns, removed by close()."""

    def __init__(self, tag: str = "ns") -> None:
        self.name = unique_name(tag)
        ip("netns", "add", self.name)
        CREATED.add(self.name)
        self.path = f"/run/netns/{self.name}"
        ip("link", "set", "lo", "up", netns=self.name)

    def close(self) -> None:
        # Kill anything still running inside before removing the namespace.
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        ip("netns", "delete", self.name, check=False)

    def __repr__(self) -> str:
        return f"Netns({self.name})"


@contextlib.contextmanager
def entered(ns: Netns) -> Iterator[None]:
    """Move the calling thread (and so every process it spawns) into ns."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(ns.path, os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(own)
        os.close(own)
        os.close(target)


def leaked_netns() -> list[str]:
    """Namespaces this process created that still exist."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()[0] in CREATED]


def netns_exists(name: str) -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return name in {line.split()[0] for line in out.splitlines() if line.strip()}
