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

import os
import signal
import socket
import stat
import sys
import threading

from pycni.plugins.ipam.dhcp import packet as pk
from pycni.plugins.ipam.dhcp.client import Stopped
from pycni.plugins.ipam.dhcp.conf import DEFAULT_SOCKET_PATH, DHCPConf, client_id
from pycni.plugins.ipam.dhcp.lease import Lease, Settings, log
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import get_str, go_loads
from pycni.spec.result import IPConfig, Result, Route

RESULT_VERSION = "1.0.0"  # the reference's current.ImplementedSpecVersion
SD_LISTEN_FDS_START = 3


class DaemonError(Exception):
    """The daemon cannot start; the message is printed and the exit code is 1."""


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


# --- flags (Go's flag package) ------------------------------------------------------------

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration ("10s", "1m30s", "1.5h", "0") in seconds."""
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {text!r}")
    total = 0.0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        number, s = s[:i], s[i:]
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f"time: invalid duration {text!r}")
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit, s = s[:j], s[j:]
        if not unit:
            raise ValueError(f"time: missing unit in duration {text!r}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {unit!r} in duration {text!r}")
        total += float(number) * _UNITS[unit]
    return sign * total


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


class UsageError(Exception):
    """A bad command line: the message, then the usage, exit code 2."""


def usage() -> str:
    lines = ["Usage of daemon:"]
    for name, (kind, default, text) in sorted(FLAGS.items()):
        arg = {"bool": "", "string": " string", "duration": " duration"}[kind]
        lines.append(f"  -{name}{arg}")
        note = ""
        if kind == "duration":
            note = f" (default {_go_duration(float(default))})"  # type: ignore[arg-type]
        lines.append(f"    \t{text}{note}")
    return "\n".join(lines) + "\n"


def _go_duration(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    m, s = divmod(whole, 60)
    h, m = divmod(m, 60)
    return (f"{h}h" if h else "") + f"{m}m{s}s"


def parse_flags(argv: list[str]) -> dict:
    """Go flag syntax: -name value, -name=value, --name; bools take no
    value unless written -name=value; "--" or a non-flag ends the flags."""
    values = {name: spec[1] for name, spec in FLAGS.items()}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, eq, value = name.partition("=")
        if name in ("h", "help"):
            raise UsageError("")
        if name not in FLAGS:
            raise UsageError(f"flag provided but not defined: -{name}")
        kind = FLAGS[name][0]
        if kind == "bool":
            if eq:
                low = value.lower()
                if low not in ("1", "t", "true", "0", "f", "false"):
                    raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
                values[name] = low in ("1", "t", "true")
            else:
                values[name] = True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
            if kind == "duration":
                try:
                    values[name] = parse_duration(value)
                except ValueError as err:
                    raise UsageError(f'invalid value "{value}" for flag -{name}: {err}')
            else:
                values[name] = value
        i += 1
    return values


# --- the listener -------------------------------------------------------------------------


def activation_listener() -> socket.socket | None:
    """The socket systemd passed (LISTEN_PID/LISTEN_FDS, go-systemd's
    activation.Listeners), None without one; more than one is an error.
    The variables are removed so children do not take them for theirs."""
    pid = os.environ.pop("LISTEN_PID", "")
    fds = os.environ.pop("LISTEN_FDS", "")
    os.environ.pop("LISTEN_FDNAMES", None)
    if not pid or not fds or pid != str(os.getpid()):
        return None
    try:
        count = int(fds)
    except ValueError:
        return None
    if count == 0:
        return None
    if count > 1:
        raise DaemonError(f"Too many ({count}) FDs passed through socket activation")
    fd = SD_LISTEN_FDS_START
    try:
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
    except OSError:
        raise DaemonError("LISTEN_FDS=1 but no FD found") from None
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise DaemonError("LISTEN_FDS=1 but no FD found")
    return sock


def listen(path: str) -> socket.socket:
    """A unix listener at `path`, mode 0600; its folder is made 0700 if missing, and a
    socket file there that nobody listens on (a daemon killed before it
    could remove it) is replaced. Anything else at `path` is an error."""
    from pycni.fsutil import make_dirs

    make_dirs(os.path.dirname(path) or ".", 0o700)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise DaemonError(f"{path} exists and is not a socket: not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2.0)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            log(f"removing the stale socket {path}")
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise DaemonError(f"cannot tell whether a daemon listens on {path}: {err}")
        else:
            raise DaemonError(f"a DHCP daemon already listens on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)  # root's only, whatever the umask and the folder
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def run(flags: dict, ready: threading.Event | None = None) -> None:
    """Serve until SIGINT or SIGTERM (or `ready`'s owner stops us)."""
    from pycni.plugins.ipam.dhcp.rpc import Server

    pidfile = str(flags["pidfile"])
    prefix = str(flags["hostprefix"])
    socket_path = prefix + (str(flags["socketpath"]) or DEFAULT_SOCKET_PATH)
    if pidfile:
        if not os.path.isabs(pidfile):
            raise DaemonError(f"Error writing pidfile {pidfile!r}: path not absolute")
        try:
            with open(pidfile, "w") as f:
                f.write(str(os.getpid()))
        except OSError as err:
            raise DaemonError(f"Error writing pidfile {pidfile!r}: {err}")
    try:
        listener = activation_listener()
        activated = listener is not None
        if listener is None:
            listener = listen(socket_path)
    except (DaemonError, OSError) as err:
        if pidfile:
            _remove(pidfile)
        raise DaemonError(f"Error getting listener: {err}")
    settings = Settings(
        float(flags["timeout"]),
        float(flags["resendmax"]),
        float(flags["resendtimeout"]),
        bool(flags["broadcast"]),
    )
    service = DHCP(settings, prefix)
    server = Server(service.handlers())
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    serving = threading.Thread(target=server.serve, args=(listener,), name="rpc-accept")
    serving.daemon = True
    serving.start()
    log(f"listening on {socket_path if not activated else 'the socket systemd passed'}")
    if ready is not None:
        ready.set()
    while not stop.wait(3600):
        pass
    log("shutting down")
    server.shutdown()
    if not activated:  # systemd owns (and removes) a socket it passed
        _remove(socket_path)
    if pidfile:
        _remove(pidfile)
    service.close()


def main(argv: list[str]) -> int:
    try:
        flags = parse_flags(argv)
    except UsageError as err:
        if str(err):
            sys.stderr.write(f"{err}\n")
        sys.stderr.write(usage())
        return 0 if not str(err) else 2
    try:
        run(flags)
    except DaemonError as err:
        log(str(err))
        return 1
    return 0
