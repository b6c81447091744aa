"""What a node daemon of a plugin needs around its service: Go-style flags,
a root-only unix listener (or the one systemd passed), and a clean stop.

Shared by `dhcp daemon` and `sql daemon`. Only daemons import this module
(it loads `socket`, `signal` and `threading`); plugin processes never do.

Listener rules: the socket's folder is created 0700 and the socket made
0600 whatever the umask, so only root (the runtime) can call the daemon; a
socket file nobody listens on (a daemon killed before it could remove it) is
replaced, anything else at the path is refused; a socket handed over by
systemd (LISTEN_PID/LISTEN_FDS, go-systemd's activation.Listeners) is used
as is and left to systemd at exit.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import threading
    from collections.abc import Callable

SD_LISTEN_FDS_START = 3


class DaemonError(Exception):
    """The daemon cannot start; the message is printed and the exit code is 1."""


class UsageError(Exception):
    """A bad command line: the message, then the usage, exit code 2."""


def log(msg: str) -> None:
    """One timestamped line on stderr (the journal, under systemd)."""
    try:
        sys.stderr.write(time.strftime("%Y/%m/%d %H:%M:%S ") + msg + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


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


def usage(flags: dict) -> str:
    """Go's flag.PrintDefaults for `flags` {name: (kind, default, text)}."""
    lines = ["Usage of daemon:"]
    for name, (kind, default, text) in sorted(flags.items()):
        arg = {"bool": "", "string": " string", "duration": " duration", "int": " int"}[kind]
        lines.append(f"  -{name}{arg}")
        note = ""
        if kind == "duration":
            note = f" (default {_go_duration(float(default))})"
        elif kind == "int" and default:
            note = f" (default {default})"
        lines.append(f"    \t{text}{note}")
    return "\n".join(lines) + "\n"


def _go_duration(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    m, s = divmod(whole, 60)
    h, m = divmod(m, 60)
    return (f"{h}h" if h else "") + f"{m}m{s}s"


def parse_flags(argv: list[str], flags: dict) -> dict:
    """Go flag syntax: -name value, -name=value, --name; bools take no
    value unless written -name=value; "--" or a non-flag ends the flags."""
    values = {name: spec[1] for name, spec in flags.items()}
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
        if name not in flags:
            raise UsageError(f"flag provided but not defined: -{name}")
        kind = flags[name][0]
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
            elif kind == "int":
                try:
                    values[name] = int(value, 10)
                except ValueError:
                    raise UsageError(f'invalid value "{value}" for flag -{name}: parse error')
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


def listen(path: str, what: str = "daemon") -> socket.socket:
    """A unix listener at `path`, mode 0600; its folder is made 0700 if
    missing, and a socket file there that nobody listens on is replaced.
    Anything else at `path` is an error naming `what` listens there."""
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
            raise DaemonError(f"a {what} already listens on {path}")
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


def listener(path: str, what: str = "daemon") -> tuple[socket.socket, bool]:
    """systemd's socket if it passed one, else our own at `path`;
    (listener, activated). A failure is a DaemonError."""
    try:
        sock = activation_listener()
        if sock is not None:
            return sock, True
        return listen(path, what), False
    except (DaemonError, OSError) as err:
        raise DaemonError(f"Error getting listener: {err}")


def start(path: str, pidfile: str, what: str = "daemon") -> tuple[socket.socket, bool]:
    """Write `pidfile` (if any: an absolute path), then take the listener
    (`listener`); the pidfile goes again if no listener could be had."""
    if pidfile:
        if not os.path.isabs(pidfile):
            raise DaemonError(f"Error writing pidfile {pidfile!r}: path not absolute")
        try:
            with open(pidfile, "w") as f:
                f.write(str(os.getpid()))
        except OSError as err:
            raise DaemonError(f"Error writing pidfile {pidfile!r}: {err}")
    try:
        return listener(path, what)
    except DaemonError:
        if pidfile:
            remove(pidfile)
        raise


def remove(path: str) -> None:
    """Unlink `path` if it is there."""
    try:
        os.unlink(path)
    except OSError:
        pass


def main(argv: list[str], flags: dict, run: Callable[[dict], None]) -> int:
    """A daemon's command line: its flags (the usage on -h, status 0, or on
    a bad flag, status 2), then `run(flags)` (a DaemonError: its message,
    status 1)."""
    try:
        values = parse_flags(argv, flags)
    except UsageError as err:
        if str(err):
            sys.stderr.write(f"{err}\n")
        sys.stderr.write(usage(flags))
        return 0 if not str(err) else 2
    try:
        run(values)
    except DaemonError as err:
        log(str(err))
        return 1
    return 0


def stop_signals(stop: threading.Event | None = None) -> threading.Event:
    """An event that SIGINT and SIGTERM set (or another thread: `stop`).
    Call it before the daemon says it listens: a stop that comes right
    after must find the handlers in place, not the default (death). Only
    the main thread can take signals; a test that runs a daemon in a thread
    stops it through `stop`."""
    import signal
    import threading

    event = stop if stop is not None else threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        event.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
    return event


def wait(event: threading.Event) -> None:
    """Block until `event` is set. In short slices: the kernel may hand a
    SIGTERM to any of the daemon's threads, and then nothing wakes the
    main thread from a long wait to run the Python handler that sets the
    event (seen here: a daemon that never stopped, 1 time in 4)."""
    while not event.wait(0.2):
        pass


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end of a unix connection
    (SO_PEERCRED), None when the kernel does not say."""
    import struct

    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid
