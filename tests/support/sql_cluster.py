"""A cluster on one machine for the sql IPAM: one PostgreSQL server, and
nodes that are each a sandbox "host" netns with its own `sql daemon` and a
bridge network whose addresses come from one shared pool.

The plugins run as a runtime runs them: the bridge launcher exec'd with the
CNI environment inside the node's netns, delegating to sql in-process,
which forwards the verb to the node's daemon. The daemons are started
through the `sql` launcher too (`sql daemon -socketpath ...`), as the
systemd unit does, and stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from pycni.kernel import netns

ROLE, PASSWORD, DATABASE = "pycl_cni", "pycl-secret", "pycl_ipam"
SUBNET = "198.18.128.0/22"
BRIDGE = "pyclbr0"
NETWORK = "pycl-net"


class Node:
    """One simulated node: its host netns, its daemon, its network config."""

    def __init__(self, name: str, host, bindir: Path, base: Path, dsn: str) -> None:
        self.name = name
        self.host = host  # a support.sandbox.Netns
        self.bindir = bindir
        self.socket = base / name / "sql.sock"
        self.log = base / f"{name}-daemon.log"
        self.daemon: subprocess.Popen | None = None
        self.conf = {
            "cniVersion": "1.1.0",
            "name": NETWORK,
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipam": {
                "type": "sql",
                "database": {"engine": "postgres", "dsn": dsn},
                "node": name,
                "daemonSocketPath": str(self.socket),
                "ranges": [[{"subnet": SUBNET}]],
            },
        }

    def start_daemon(self, timeout: float = 20.0) -> None:
        before = self.log.read_text().count("listening on") if self.log.exists() else 0
        argv = [str(self.bindir / "sql"), "daemon", "-socketpath", str(self.socket)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CNI_", "PYCNI_FAULT"))}
        with netns.enter(self.host.path), open(self.log, "ab") as log:
            self.daemon = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while self.log.read_text().count("listening on") <= before:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: daemon did not start: {self.log.read_text()}")
            time.sleep(0.02)

    def stop_daemon(self, sig: int = signal.SIGTERM) -> None:
        proc, self.daemon = self.daemon, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def spawn(self, command: str, container: str, ct_path: str) -> subprocess.Popen:
        """The bridge plugin for one container, started (not waited for)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": ct_path,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(self.bindir),
        }
        with netns.enter(self.host.path):
            proc = subprocess.Popen(
                [str(self.bindir / "bridge")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(self.conf).encode())
        proc.stdin.close()
        return proc


def outcome(proc: subprocess.Popen) -> tuple[str, dict]:
    """("ok", result) or ("error", the CNI error object) of a finished call."""
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(120)
    proc.stdout.close()
    proc.stderr.close()
    try:
        doc = json.loads(out) if out.strip() else {}
    except ValueError:
        doc = {"code": -1, "msg": f"not JSON: {out!r} {err!r}"}
    if proc.returncode == 0:
        return "ok", doc
    if "code" not in doc:
        doc = {"code": -1, "msg": f"exit {proc.returncode}: {out!r} {err!r}"}
    return "error", doc


def rows(server, sql: str) -> list[list[str]]:
    """Rows of a query on the cluster's database (psql, not our code)."""
    out = server.psql(sql, dbname=DATABASE)
    return [line.split("|") for line in out.splitlines() if line]


def leases(server) -> list[tuple[str, str, str]]:
    """(ip, node, container) of every lease."""
    if not rows(server, "SELECT 1 FROM pg_tables WHERE tablename = 'leases'"):
        return []
    return [tuple(r) for r in rows(server, "SELECT ip, node, container_id FROM leases")]


def blocks(server) -> list[tuple[str, str]]:
    """(cidr, node) of every claimed block."""
    if not rows(server, "SELECT 1 FROM pg_tables WHERE tablename = 'blocks'"):
        return []
    return [tuple(r) for r in rows(server, "SELECT cidr, node FROM blocks")]


def configured(ct_path: str) -> set[str]:
    """The addresses on eth0 in a container netns."""
    from pycni.kernel.netlink import RtNetlink

    with RtNetlink(ct_path) as nl:
        link = nl.link_get("eth0")
        return {a.cidr for a in nl.addr_list(link.index) if a.family == 2}
