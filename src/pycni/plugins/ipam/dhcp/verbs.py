"""The dhcp plugin: ADD and CHECK ask the daemon for the lease (DHCP.Allocate),
DEL gives it back (DHCP.Release).

The plugin checks the config first (error 7 naming the key, before any RPC),
then makes one call on the daemon's socket. A socket that is missing, or
where nobody listens, is error 11 ("try again later": the daemon may be
starting) naming the path and how to start the daemon.

DEL with no daemon succeeds, with a note on stderr: leases live in the
daemon's memory only, so without a daemon there is no lease to release (the
server keeps the address until it expires, as after a daemon restart with
the reference), and our rule is that DEL always succeeds. The reference's
DEL fails there, which leaves e.g. macvlan's link behind.

The RPC and wire modules import `socket`; they are imported on use, so this
module stays light (tests/test_architecture.py).
"""

from __future__ import annotations

import os

from pycni import faultpoint
from pycni.plugins.ipam.dhcp.conf import DEFAULT_SOCKET_PATH, DHCPConf
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, ERR_TRY_AGAIN_LATER, CNIError
from pycni.spec.jsonutil import ci_get
from pycni.spec.result import Result

HOW_TO_START = (
    'start the daemon with "dhcp daemon" (systemd: systemctl enable --now cni-dhcp.socket), '
    "or point ipam.daemonSocketPath at its socket"
)


class NoDaemon(CNIError):
    """No daemon can answer at the socket path."""


def cmd_add(args: CmdArgs) -> Result:
    conf = DHCPConf(args.conf)
    conf.options(args.args)  # CNI_ARGS values of `fromArg` are checked here too
    faultpoint.step("dhcp.add.allocate")
    reply = _call(conf.socket_path, "DHCP.Allocate", args)
    from pycni.plugins.ipam.dhcp.wire import result_from_go

    return result_from_go(reply, str(reply.get("CNIVersion") or "1.0.0"))


def cmd_check(args: CmdArgs) -> None:
    """As the reference: an Allocate, which finds the running lease (and
    wakes its loop) or, after a daemon restart, acquires it again."""
    conf = DHCPConf(args.conf)
    conf.options(args.args)
    faultpoint.step("dhcp.check.allocate")
    _call(conf.socket_path, "DHCP.Allocate", args)


def cmd_del(args: CmdArgs) -> None:
    path = _socket_path(args.conf)
    faultpoint.step("dhcp.del.release")
    try:
        _call(path, "DHCP.Release", args)
    except NoDaemon as err:
        from pycni.plugins.pkg.errors import warn

        warn(f"dhcp DEL: {err.msg}; no lease to release")


def _socket_path(conf: dict) -> str:
    """DEL reads only the socket path, leniently: a config that ADD would
    refuse must not keep DEL from reaching the daemon."""
    ipam = ci_get(conf, "ipam")
    value = ci_get(ipam, "daemonSocketPath") if isinstance(ipam, dict) else None
    return value if isinstance(value, str) and value else DEFAULT_SOCKET_PATH


def _call(path: str, method: str, args: CmdArgs) -> dict:
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NoDaemon(
            ERR_TRY_AGAIN_LATER, f"DHCP daemon socket {path} does not exist: {HOW_TO_START}"
        ) from None
    except OSError as err:
        raise CNIError(ERR_INTERNAL, f"error dialing DHCP daemon at {path}: {err.strerror}")
    if not stat.S_ISSOCK(st.st_mode):
        raise NoDaemon(ERR_INTERNAL, f"DHCP daemon socket {path} is not a socket: {HOW_TO_START}")
    from pycni.plugins.ipam.dhcp.rpc import RemoteError, call
    from pycni.plugins.ipam.dhcp.wire import cmdargs

    # the daemon may run in another working directory
    netns = os.path.abspath(args.netns) if args.netns else ""
    request = cmdargs(
        args.container_id, netns, args.ifname, args.args, ":".join(args.path), args.stdin_data
    )
    try:
        return call(path, method, request)
    except RemoteError as err:
        raise CNIError(ERR_INTERNAL, f"error calling {method}: {err}") from None
    except ConnectionRefusedError:
        raise NoDaemon(
            ERR_TRY_AGAIN_LATER,
            f"no DHCP daemon listens on {path} (connection refused): {HOW_TO_START}",
        ) from None
    except OSError as err:
        raise CNIError(ERR_INTERNAL, f"error calling {method} on {path}: {err}") from None
