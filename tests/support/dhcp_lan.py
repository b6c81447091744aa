"""A sandbox LAN with a DHCP server (tests/plugins/dhcp makes one per module).

The LAN is a netns ("dh-lan-...") holding a bridge with 198.18.77.1/24 and
dnsmasq serving 198.18.77.10-50 on it (lease time 2 minutes, dnsmasq's
minimum, with T1 at RENEW_AFTER seconds so a renewal shows within seconds).
Containers are netns_factory namespaces whose eth0 is a veth into the
bridge. Daemons (ours or Go's) run in the LAN netns, started and stopped by
PID; dnsmasq too.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.sandbox import Netns, ip, stop_process

SUBNET = "198.18.77"
ROUTER = f"{SUBNET}.1"
RENEW_AFTER = 3  # T1 in seconds
GO_DHCP = "/usr/lib/cni/dhcp"
OUR_PLUGIN = "pycni.plugins.ipam.dhcp"
#: our daemon's flags in the shared LAN: quick to give up on a silent server
FAST = ("-timeout", "500ms", "-resendmax", "2s", "-resendtimeout", "2s")


class Lan:
    """The bridge, dnsmasq and a way to plug containers in."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ns = Netns("lan", prefix="dh")
        self.bridge = "dhbr0"
        self.leasefile = workdir / "dnsmasq.leases"
        self.logfile = workdir / "dnsmasq.log"
        self.dnsmasq: subprocess.Popen | None = None
        n = self.ns.name
        ip("link", "add", self.bridge, "type", "bridge", netns=n)
        ip("addr", "add", f"{ROUTER}/24", "dev", self.bridge, netns=n)
        ip("link", "set", self.bridge, "up", netns=n)

    def start_dnsmasq(self) -> None:
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns.name,
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--no-ping",
            "--user=root",
            f"--interface={self.bridge}",
            "--bind-interfaces",
            f"--dhcp-range={SUBNET}.10,{SUBNET}.50,255.255.255.0,2m",
            f"--dhcp-leasefile={self.leasefile}",
            f"--dhcp-option=option:T1,{RENEW_AFTER}",
            "--dhcp-option=option:T2,100",
            "--log-dhcp",
            "--log-facility=-",
        ]
        with open(self.logfile, "ab") as log:
            self.dnsmasq = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while b"DHCP, sockets bound" not in self.logfile.read_bytes():
            if self.dnsmasq.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq did not start: {self.logfile.read_text()}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.dnsmasq is not None:
            stop_process(self.dnsmasq)
        self.ns.close()

    def attach(self, ctr: Netns, ifname: str = "eth0", bridged: bool = True) -> str:
        """A veth: `ifname` (down) in `ctr`, its peer in the LAN, on the
        bridge unless `bridged` is false; returns the peer's name."""
        peer = "dhv" + secrets.token_hex(4)
        n = self.ns.name
        ip("link", "add", peer, "type", "veth", "peer", "name", ifname, "netns", ctr.name, netns=n)
        if bridged:
            ip("link", "set", peer, "master", self.bridge, netns=n)
        ip("link", "set", peer, "up", netns=n)
        return peer

    def plug(self, peer: str) -> None:
        ip("link", "set", peer, "master", self.bridge, netns=self.ns.name)

    def leases(self) -> str:
        try:
            return self.leasefile.read_text()
        except FileNotFoundError:
            return ""

    def has_lease(self, client_id: str) -> bool:
        """dnsmasq's lease file shows the client ID as hex bytes: 00:<id>."""
        wanted = ":".join(f"{b:02x}" for b in b"\0" + client_id.encode())
        return wanted in self.leases()

    def leased(self, client_id: str, timeout: float = 3.0) -> bool:
        return wait_for(lambda: self.has_lease(client_id), timeout)

    def released(self, client_id: str, timeout: float = 3.0) -> bool:
        """The lease leaves the file soon: DHCPRELEASE gets no answer, so a
        DEL returns once it is sent, maybe before dnsmasq has read it."""
        return wait_for(lambda: not self.has_lease(client_id), timeout)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")


class Daemon:
    """A dhcp daemon (ours, or Go's with go=True) in the LAN netns."""

    def __init__(
        self,
        lan: Lan,
        socket_path: Path,
        *flags: str,
        go: bool = False,
        wait: bool = True,
        preexec: str = "",
        pass_fds: tuple[int, ...] = (),
        env: dict | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.go = go
        self.logfile = lan.workdir / f"daemon-{secrets.token_hex(3)}.log"
        if go:
            argv = [GO_DHCP, "daemon", "-socketpath", str(socket_path), *flags]
        else:
            code = preexec + f"from {OUR_PLUGIN} import main; main()"
            argv = [sys.executable, "-c", code, "daemon", "-socketpath", str(socket_path), *flags]
        with open(self.logfile, "wb") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", lan.ns.name, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                env=env,
            )
        if wait:
            self.wait_listening()

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Until the socket is there and (ours) the daemon says it listens;
        Go's daemon logs nothing when it starts."""
        deadline = time.monotonic() + timeout
        while not self.socket_path.is_socket() or not (self.go or self._said_listening()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start: {self.log()}")
            time.sleep(0.05)

    def _said_listening(self) -> bool:
        return b"listening" in self._log_bytes()

    def _log_bytes(self) -> bytes:
        try:
            return self.logfile.read_bytes()
        except FileNotFoundError:
            return b""

    def log(self) -> str:
        return self._log_bytes().decode(errors="replace")

    def threads(self) -> int:
        """How many threads the daemon has now: one more per lease it keeps."""
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.proc, sig)


def netconf(socket_path: Path | str, version: str = "1.0.0", **ipam) -> dict:
    return {
        "cniVersion": version,
        "name": "dhnet",
        "type": "dhcp",
        "ipam": {"type": "dhcp", "daemonSocketPath": str(socket_path), **ipam},
    }


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
