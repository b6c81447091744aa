"""`dhcp daemon`: the long-running lease keeper the dhcp plugin calls.

It serves the reference's RPC service (DHCP.Allocate, DHCP.Release; Go
net/rpc over HTTP on a unix socket, see rpc.py) so the Go plugin works
against it and our plugin against the Go daemon. Leases live in memory,
keyed by client ID, one thread each (lease.py).

Where it differs from the reference (plugins.md 4.3), on purpose: an
Allocate never blocks on a lease whose loop has ended (the reference's
unbuffered "check" send wedges there), and one whose interface is gone is
replaced rather than returned; CHECK (an Allocate) reuses the running loop
instead of starting a second one; a stale socket file nobody listens on is
removed at start; a socket handed over by systemd is left to systemd at
exit; `-broadcast` sets the BROADCAST flag it describes.
"""

from __future__ import annotations

import threading

from pycni.plugins.ipam.dhcp import packet as pk
from pycni.plugins.ipam.dhcp.client import Stopped
from pycni.plugins.ipam.dhcp.conf import DEFAULT_SOCKET_PATH, DHCPConf, client_id
from pycni.plugins.ipam.dhcp.lease import Lease, Settings
from pycni.plugins.pkg import unixdaemon as ud
from pycni.plugins.pkg.unixdaemon import log
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import get_str, go_loads
from pycni.spec.result import IPConfig, Result, Route

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import socket

RESULT_VERSION = "1.0.0"  # the reference's current.ImplementedSpecVersion
SD_LISTEN_FDS_START = ud.SD_LISTEN_FDS_START
DaemonError = ud.DaemonError
UsageError = ud.UsageError
parse_duration = ud.parse_duration
activation_listener = ud.activation_listener
_remove = ud.remove


# --- the service --------------------------------------------------------------------------


def _netconf(args: dict) -> dict:
    try:
        conf = go_loads(bytes(args.get("StdinData") or b""))
    except ValueError as err:
        raise ValueError(f"error parsing netconf: {err}") from None
    if not isinstance(conf, dict):
        raise ValueError("error parsing netconf: not a JSON object")
    return conf


class DHCP:
    """The RPC service: the lease table and its two methods."""

    def __init__(self, settings: Settings, host_prefix: str = "") -> None:
        self.settings = settings
        self.host_prefix = host_prefix
        self._mu = threading.Lock()
        self.leases: dict[str, Lease] = {}

    def handlers(self) -> dict:
        return {"DHCP.Allocate": self.allocate, "DHCP.Release": self.release}

    def allocate(self, args: dict) -> dict:
        """Acquire a lease for the attachment, or return the one it has."""
        try:
            conf = DHCPConf(_netconf(args))
            options = conf.options(str(args.get("Args") or ""))
        except CNIError as err:
            raise ValueError(err.msg) from None
        cid = client_id(str(args.get("ContainerID", "")), conf.name, str(args.get("IfName", "")))
        netns = self.host_prefix + str(args.get("Netns", ""))
        lease, new = self._lease_for(cid, netns, str(args.get("IfName", "")), options)
        try:
            ack = lease.wait_acquired()
        except Stopped:
            raise RuntimeError(f"{cid}: the lease was released while it was being acquired")
        except BaseException:
            self._forget(cid, lease)
            raise
        if not new:
            lease.check()
        try:
            address = pk.subnet(ack)
        except ValueError:
            self._forget(cid, lease)
            lease.stop()
            raise
        result = Result(RESULT_VERSION, ips=[IPConfig(address, pk.gateway(ack))])
        for dst, gw, scope in pk.routes(ack):
            result.routes.append(Route(dst, gw, priority=conf.priority, scope=scope))
        from pycni.plugins.ipam.dhcp.wire import result_to_go

        return result_to_go(result)

    def _lease_for(
        self, cid: str, netns: str, ifname: str, options: list[tuple[int, bytes]]
    ) -> tuple[Lease, bool]:
        """The live lease of `cid`, or a new one started; (lease, new)."""
        with self._mu:
            old = self.leases.get(cid)
        if old is not None and not old.finished and (old.netns != netns or not _usable(old)):
            # another netns (a new container with that ID) or an interface the
            # loop has not yet found gone: end the old loop, start afresh
            self._forget(cid, old)
            old.stop()
        with self._mu:
            lease = self.leases.get(cid)
            if lease is not None and not lease.finished:
                return lease, False
            lease = Lease(cid, netns, ifname, options, self.settings)
            self.leases[cid] = lease
            lease.start()
            return lease, True

    def _forget(self, cid: str, lease: Lease) -> None:
        with self._mu:
            if self.leases.get(cid) is lease:
                del self.leases[cid]

    def release(self, args: dict) -> dict:
        """Stop the lease's loop, which sends DHCPRELEASE; unknown: success."""
        conf = _netconf(args)
        try:
            name = get_str(conf, "name")
        except CNIError as err:
            raise ValueError(f"error parsing netconf: {err.msg}") from None
        cid = client_id(str(args.get("ContainerID", "")), name, str(args.get("IfName", "")))
        with self._mu:
            lease = self.leases.pop(cid, None)
        if lease is not None:
            lease.stop()
        return {}

    def close(self) -> None:
        """Stop every loop without releasing: the containers keep their
        addresses (as with the reference, leases do not survive the daemon)."""
        with self._mu:
            leases, self.leases = list(self.leases.values()), {}
        for lease in leases:
            lease.stop(timeout=1.0, release=False)


def _usable(lease: Lease) -> bool:
    """A bound lease whose interface still exists (an acquiring one counts)."""
    return lease.ack is None or lease.link_exists()


# --- flags (Go's flag package, pkg/unixdaemon.py) -----------------------------------------

FLAGS = {
    # name: (kind, default, usage)
    "broadcast": ("bool", False, "broadcast DHCP leases"),
    "hostprefix": ("string", "", "optional prefix to host root"),
    "pidfile": ("string", "", "optional path to write daemon PID to"),
    "resendmax": ("duration", 62.0, "optional dhcp client max resend delay between requests"),
    "resendtimeout": (
        "duration",
        208.0,
        "optional dhcp client resend timeout, no more retries after this timeout",
    ),
    "socketpath": ("string", "", "optional dhcp server socketpath"),
    "timeout": ("duration", 10.0, "optional dhcp client timeout duration for each request"),
}


def usage() -> str:
    return ud.usage(FLAGS)


def parse_flags(argv: list[str]) -> dict:
    """Go flag syntax (see unixdaemon.parse_flags) over FLAGS."""
    return ud.parse_flags(argv, FLAGS)


# --- the listener -------------------------------------------------------------------------


def listen(path: str) -> socket.socket:
    """unixdaemon.listen: 0600 in a 0700 folder, a stale socket replaced."""
    return ud.listen(path, "DHCP daemon")


def run(flags: dict, ready: threading.Event | None = None) -> None:
    """Serve until SIGINT or SIGTERM (or `ready`'s owner stops us)."""
    from pycni.plugins.ipam.dhcp.rpc import Server

    pidfile = str(flags["pidfile"])
    prefix = str(flags["hostprefix"])
    socket_path = prefix + (str(flags["socketpath"]) or DEFAULT_SOCKET_PATH)
    listener, activated = ud.start(socket_path, pidfile, "DHCP daemon")
    settings = Settings(
        float(flags["timeout"]),
        float(flags["resendmax"]),
        float(flags["resendtimeout"]),
        bool(flags["broadcast"]),
    )
    service = DHCP(settings, prefix)
    server = Server(service.handlers())
    stop = ud.stop_signals()
    serving = threading.Thread(target=server.serve, args=(listener,), name="rpc-accept")
    serving.daemon = True
    serving.start()
    log(f"listening on {socket_path if not activated else 'the socket systemd passed'}")
    if ready is not None:
        ready.set()
    ud.wait(stop)
    log("shutting down")
    server.shutdown()
    if not activated:  # systemd owns (and removes) a socket it passed
        _remove(socket_path)
    if pidfile:
        _remove(pidfile)
    service.close()


def main(argv: list[str]) -> int:
    return ud.main(argv, FLAGS, run)
