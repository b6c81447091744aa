"""The sql plugin's verbs as skel sees them: run here, or in the node daemon.

An engine of conf.DAEMON_ENGINES (postgres) needs a database driver that
costs a plugin process 140-300 ms to import and connections that cost
milliseconds to open, so its verbs run in `sql daemon` (daemon.py), which
keeps both; the plugin sends it the invocation over a unix socket and prints
what it answers. SQLite needs neither: its verbs run in this process
(verbs.py), and this module costs it one small import.

The protocol (ours; one request per connection, both sides standard
library only): a frame is a 4-byte big-endian length and that many bytes
of JSON. The request is {"command", "containerID", "netns", "ifname",
"args", "path": [..], "config": <stdin as text>}; the answer is
{"result": <ADD's result as a 1.1.0 object, else null>} or {"error":
{"code", "msg", "details"}}. The daemon runs the same verbs.cmd_* on the
same input, so the plugin prints what the in-process path would print.

Failures of the call itself are code 11 (ERR_TRY_AGAIN_LATER): no daemon
(the message names the socket and how to start one), a daemon that dies
mid-request, no answer within CALL_TIMEOUT (a runtime's own timeout).
Only `_socket` is loaded for the call (`socket` would pull in enum and
selectors: milliseconds per exec).
"""

from __future__ import annotations

from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, ERR_TRY_AGAIN_LATER, CNIError
from pycni.spec.jsonutil import ci_get

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result

#: a frame larger than this is refused (a config with a prevResult is a
#: few kilobytes)
MAX_REQUEST = 1 << 20
MAX_REPLY = 16 << 20
#: seconds the plugin waits for the daemon's answer, at most
CALL_TIMEOUT = 60.0


def how_to_start(path: str) -> str:
    return (
        f'start the daemon with "sql daemon -socketpath {path}" '
        "(systemd: systemctl enable --now cni-sql-ipam.socket), "
        "or point ipam.daemonSocketPath at its socket"
    )


# --- the verbs skel calls -----------------------------------------------------------------


def cmd_add(args: CmdArgs) -> Result:
    path = daemon_socket(args)
    if path is None:
        from pycni.plugins.ipam.sql.verbs import cmd_add as add

        return add(args)
    reply = forward(path, args)
    from pycni.spec.result import Result

    if not isinstance(reply, dict):
        raise CNIError(ERR_INTERNAL, f"sql IPAM daemon at {path} answered ADD without a result")
    return Result.from_dict(reply)


def cmd_del(args: CmdArgs) -> None:
    path = daemon_socket(args)
    if path is None:
        from pycni.plugins.ipam.sql.verbs import cmd_del as delete

        return delete(args)
    forward(path, args)
    return None


def cmd_check(args: CmdArgs) -> None:
    path = daemon_socket(args)
    if path is None:
        from pycni.plugins.ipam.sql.verbs import cmd_check as check

        return check(args)
    forward(path, args)
    return None


def cmd_gc(args: CmdArgs) -> None:
    path = daemon_socket(args)
    if path is None:
        from pycni.plugins.ipam.sql.verbs import cmd_gc as gc

        return gc(args)
    forward(path, args)
    return None


def cmd_status(args: CmdArgs) -> None:
    path = daemon_socket(args)
    if path is None:
        from pycni.plugins.ipam.sql.verbs import cmd_status as status

        return status(args)
    forward(path, args)
    return None


def daemon_socket(args: CmdArgs) -> str | None:
    """The daemon's socket when the config's engine runs in the daemon;
    None to run here (which also reports a bad `database`, as before)."""
    from pycni.plugins.ipam.sql.conf import DAEMON_ENGINES, daemon_socket_path

    ipam = ci_get(args.conf, "ipam")
    if not isinstance(ipam, dict):
        return None
    db = ci_get(ipam, "database")
    engine = ci_get(db, "engine") if isinstance(db, dict) else None
    if not isinstance(engine, str) or engine not in DAEMON_ENGINES:
        return None
    return daemon_socket_path(ipam)


def request_of(args: CmdArgs) -> dict:
    import os

    return {
        "command": args.command,
        "containerID": args.container_id,
        "netns": os.path.abspath(args.netns) if args.netns else "",  # the daemon's cwd differs
        "ifname": args.ifname,
        "args": args.args,
        "path": list(args.path),
        "config": bytes(args.stdin_data).decode("utf-8", "replace"),  # as go_loads reads it
    }


def forward(path: str, args: CmdArgs) -> dict | None:
    """Send the invocation to the daemon; its result (ADD) or None, or
    its error raised as the CNIError it is."""
    from pycni.faultpoint import step

    step(f"sql.{args.command.lower()}.forward")
    answer = call(path, request_of(args))
    error = answer.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise _bad_answer(path, "error is not an object")
        code, msg, details = error.get("code"), error.get("msg"), error.get("details", "")
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(msg, str):
            raise _bad_answer(path, "error without a code and a message")
        raise CNIError(code, msg, details if isinstance(details, str) else "")
    result = answer.get("result")
    if result is not None and not isinstance(result, dict):
        raise _bad_answer(path, "result is not an object")
    return result


def _bad_answer(path: str, why: str) -> CNIError:
    return CNIError(ERR_INTERNAL, f"sql IPAM daemon at {path} answered nonsense: {why}")


# --- the protocol -------------------------------------------------------------------------


def frame(obj: object) -> bytes:
    from pycni.spec.jsonutil import go_dumps

    body = go_dumps(obj, indent=False).encode()
    return len(body).to_bytes(4, "big") + body


def call(path: str, request: dict, timeout: float = CALL_TIMEOUT) -> dict:
    """One request on a fresh connection; the answer object. Raises
    CNIError 11 when no daemon answers (see the module docstring)."""
    import _socket
    import time

    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise _later(f"sql IPAM daemon socket {path} does not exist: {how_to_start(path)}")
        except ConnectionRefusedError:
            raise _later(
                f"no sql IPAM daemon listens on {path} (connection refused): {how_to_start(path)}"
            )
        except PermissionError:
            raise CNIError(
                ERR_INTERNAL,
                f"cannot connect to the sql IPAM daemon at {path}: permission denied "
                "(its socket is root's only)",
            )
        try:
            sock.sendall(frame(request))
            head = _recv_exact(sock, 4, deadline)
            size = int.from_bytes(head, "big")
            if size > MAX_REPLY:
                raise CNIError(
                    ERR_INTERNAL, f"sql IPAM daemon at {path} answered {size} bytes: too large"
                )
            body = _recv_exact(sock, size, deadline)
        except EOFError:
            raise _later(
                f"the sql IPAM daemon at {path} closed the connection before answering "
                "(it stopped or crashed); the operation may not have completed"
            )
        except _socket.timeout:
            raise _later(f"no answer from the sql IPAM daemon at {path} within {timeout:g} s")
        except OSError as err:
            raise _later(f"error talking to the sql IPAM daemon at {path}: {err}")
    finally:
        sock.close()
    from pycni.spec.jsonutil import go_loads

    try:
        answer = go_loads(body)
    except ValueError as err:
        raise _bad_answer(path, str(err))
    if not isinstance(answer, dict):
        raise _bad_answer(path, "not a JSON object")
    return answer


def _later(msg: str) -> CNIError:
    return CNIError(ERR_TRY_AGAIN_LATER, msg, "try again later")


def _recv_exact(sock, n: int, deadline: float) -> bytes:
    """Exactly `n` bytes by `deadline`; EOFError if the peer closes first."""
    import time

    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            import _socket

            raise _socket.timeout("timed out")
        sock.settimeout(left)
        chunk = sock.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)
