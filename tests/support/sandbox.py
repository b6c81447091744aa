"""Network-namespace sandboxes for tests: create, enter, inspect, remove.

Deliberately independent of pycni.kernel: the fixtures that isolate the real
host must not depend on the code under test.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
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


def unique_name(tag: str, prefix: str = PREFIX) -> str:
    return f"{prefix}-{tag}-{secrets.token_hex(4)}"


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


def nft_ruleset() -> str:
    """`nft list ruleset` of the netns the calling thread is in."""
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def iptables_save(v6: bool = False) -> str:
    """The nat table (`iptables-save -t nat`, or ip6tables') of the netns the
    calling thread is in."""
    tool = "ip6tables-save" if v6 else "iptables-save"
    return subprocess.run([tool, "-t", "nat"], capture_output=True, text=True).stdout


class Netns:
    """A named netns /run/netns/<prefix>-<tag>-<hex>, its lo up unless
    lo_up=False; removed by close()."""

    def __init__(self, tag: str = "ns", prefix: str = PREFIX, lo_up: bool = True) -> None:
        self.name = unique_name(tag, prefix)
        ip("netns", "add", self.name)
        CREATED.add(self.name)
        self.path = f"/run/netns/{self.name}"
        if lo_up:
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


class NetnsFactory:
    """Makes Netns(tag, **options) on each call and closes them all, newest
    first, in close(): what the netns_factory fixture hands a test."""

    def __init__(self, **options) -> None:
        self.options = options
        self.created: list[Netns] = []

    def __call__(self, tag: str = "ct") -> Netns:
        ns = Netns(tag, **self.options)
        self.created.append(ns)
        return ns

    def close(self) -> None:
        for ns in reversed(self.created):
            ns.close()
        self.created.clear()


def leaked_netns() -> list[str]:
    """Namespaces this process created that still exist."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()[0] in CREATED]


def netns_exists(name: str) -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return name in {line.split()[0] for line in out.splitlines() if line.strip()}


def _netns_id() -> tuple[int, int]:
    st = os.stat("/proc/thread-self/ns/net")
    return st.st_dev, st.st_ino


#: the netns the test process started in (the real host's, for the suite)
_STARTED_IN = _netns_id()


def no_dad(netns: str | None = None) -> None:
    """No IPv6 duplicate address detection on links made in `netns` (None:
    the calling thread's) from now on: their addresses are usable at once,
    so a plugin's wait for DAD returns at its first look. For tests of
    something else than addresses (fault matrices), which otherwise wait a
    second or two per ADD; a sandbox's own setting, gone with it."""
    if netns is None and _netns_id() == _STARTED_IN:
        raise RuntimeError("no_dad() outside a sandbox netns would change the real host")
    for scope in ("all", "default"):
        path = f"/proc/sys/net/ipv6/conf/{scope}/accept_dad"
        if netns is None:
            with open(path, "w") as f:
                f.write("0")
        else:
            in_netns(netns, "sh", "-c", f"echo 0 > {path}", check=True)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 10.0) -> int:
    """Stop a process we started, by its PID; SIGKILL if it does not go."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
