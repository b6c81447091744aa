"""What a runtime leaves behind, read from the sandbox host netns the test
thread is in: links, netfilter rules, host-local reservations, libcni's
result cache, cgroups; and a plain HTTP GET made from that netns."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def links() -> set[str]:
    """Names of the links of the current netns."""
    out = subprocess.run(
        ["ip", "-json", "link", "show"], capture_output=True, text=True, check=True
    )
    return {link["ifname"] for link in json.loads(out.stdout or "[]")}


def netfilter() -> str:
    """Every rule of the current netns: `nft list ruleset` (iptables-nft's
    tables included) and iptables-save/ip6tables-save of every table."""
    parts = []
    for argv in (["nft", "list", "ruleset"], ["iptables-save"], ["ip6tables-save"]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        parts.append(f"## {' '.join(argv)}\n{proc.stdout}")
    return "\n".join(parts)


def rules_naming(dump: str, needles: Iterable[str], port: int | None = None) -> list[str]:
    """The lines of a rule dump that name any of needles (a container ID, its
    address) as a whole token, or match `port` as a destination port: what
    per-container rules look like whichever backend wrote them. Comment
    lines (`#`) are skipped."""
    patterns = [rf"(?<![0-9A-Za-z.]){re.escape(n)}(?![0-9A-Za-z])" for n in needles if n]
    if port is not None:
        patterns.append(rf"dports?\s+(\{{\s*)?{port}(?![0-9])")
    if not patterns:
        return []
    rx = re.compile("|".join(patterns))
    return [
        line.strip()
        for line in dump.splitlines()
        if not line.lstrip().startswith("#") and rx.search(line)
    ]


def results(cni_dir: Path) -> list[str]:
    """libcni's cached results (files of <cache dir>/results)."""
    d = cni_dir / "results"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def reservations(cni_dir: Path) -> dict[str, list[str]]:
    """host-local's reservations in its default store (<cni dir>/networks):
    network -> reserved addresses (not the lock or last_reserved files)."""
    d = cni_dir / "networks"
    if not d.is_dir():
        return {}
    held: dict[str, list[str]] = {}
    for net in sorted(d.iterdir()):
        names = sorted(
            p.name
            for p in net.iterdir()
            if p.name != "lock" and not p.name.startswith("last_reserved")
        )
        if names:
            held[net.name] = names
    return held


def http_get(host: str, port: int, path: str = "/", deadline: float = 10) -> bytes:
    """GET http://host:port/path from the current netns, retried until the
    server answers 200 or the deadline passes (a container's httpd needs a
    moment to listen)."""
    end = time.monotonic() + deadline
    while True:
        conn = http.client.HTTPConnection(host, port, timeout=3)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                return body
            err: Exception = RuntimeError(f"HTTP {resp.status}")
        except OSError as exc:
            err = exc
        finally:
            conn.close()
        if time.monotonic() > end:
            raise AssertionError(f"GET http://{host}:{port}{path}: {err}")
        time.sleep(0.2)


# --- cgroups ---------------------------------------------------------------------------------


def cgroup_dirs(name: str) -> list[Path]:
    """The cgroup dirs named `name` at the root of every mounted hierarchy."""
    if not CGROUP_ROOT.is_dir():
        return []
    found = [CGROUP_ROOT / name] if (CGROUP_ROOT / name).is_dir() else []
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        with contextlib.suppress(OSError):
            if (hierarchy / name).is_dir():
                found.append(hierarchy / name)
    return found


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for top in cgroup_dirs(name):
        for dirpath, _, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    text = Path(dirpath, "cgroup.procs").read_text()
                    pids.update(int(p) for p in text.split())
    return pids


def remove_cgroup(name: str, deadline: float = 10) -> set[int]:
    """Kill what still runs in the test's cgroup `name` (every hierarchy) and
    remove its dirs, deepest first. Returns the PIDs that had to be killed."""
    killed = cgroup_pids(name)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + deadline
    while True:
        busy = []
        for top in cgroup_dirs(name):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    busy.append(dirpath)
        if not busy or time.monotonic() > end:
            return killed
        time.sleep(0.1)


# --- the host's own paths --------------------------------------------------------------------


def host_cni_entries(network: str, container_ids: Iterable[str]) -> list[str]:
    """What the test's runtime would have written to the host's CNI paths
    had the mount namespace not hidden them: a host-local store for
    `network` and cached results of the containers (read from the test
    thread, which is in the host's mount namespace)."""
    found = []
    store = Path("/var/lib/cni/networks") / network
    if store.exists():
        found.append(str(store))
    cache = Path("/var/lib/cni/results")
    if cache.is_dir():
        ids = [i for i in container_ids if i]
        found += [str(p) for p in cache.iterdir() if any(i in p.name for i in ids)]
    return found
