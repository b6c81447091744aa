"""The sbr plugin's verbs.

ADD and DEL hold an exclusive flock on the netns file itself while they
work, as the reference does, so two sbr invocations for one container (two
interfaces) never pick the same table. The netns is opened once: that fd is
both the lock and what the netlink socket is opened in.

Deliberate differences from the reference (Debian's 1.1.1 and upstream):
DEL succeeds when CNI_NETNS is empty, gone or no namespace (the reference
fails, and 1.1.1 even creates a file at the path with its lock), and when
the interface is gone (1.1.1 fails); a failed ADD is rolled back; an ADD
whose prevResult has no address on CNI_IFNAME changes nothing (the
reference still empties the interface's main-table routes); config errors
are code 7 found before anything is touched. CHECK verifies nothing, like
the reference's: the rules' source addresses are only known from the
prevResult and a later plugin may legitimately change the routes.
"""

from __future__ import annotations

import fcntl
import os

from pycni.kernel.netlink import RtNetlink
from pycni.kernel.netns import NetnsNotFound, NotANetns, open_netns
from pycni.plugins.meta.sbr.conf import load
from pycni.plugins.meta.sbr.routing import (
    add_rules_to_table,
    add_tables,
    relevant_ips,
    tidy_rules,
)
from pycni.plugins.pkg.netns import NetnsGone
from pycni.plugins.pkg.transaction import add_transaction
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, ERR_INVALID_NETNS, CNIError
from pycni.spec.result import Result


class NoNetns(CNIError):
    """The netns path exists but is no network namespace (code 8)."""

    def __init__(self, path: str) -> None:
        super().__init__(ERR_INVALID_NETNS, f"{path} is not a network namespace")


class netns_lock:  # lower case: it reads as a statement, `with netns_lock(path) as fd:`
    """Open the netns file and hold an exclusive flock on it; the fd is the
    value of the `with`. Closing it (on exit) releases the lock."""

    __slots__ = ("fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> int:
        return self.fd if self.fd >= 0 else self.acquire()

    def acquire(self) -> int:
        path = self.path
        try:
            fd = open_netns(path)
        except NetnsNotFound as err:
            raise NetnsGone(path) from err
        except NotANetns:
            raise NoNetns(path) from None
        except OSError as err:
            raise CNIError(
                ERR_INVALID_NETNS, f"failed to open netns {path}: {err.strerror or err}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            os.close(fd)
            raise CNIError(ERR_INTERNAL, f"failed to lock netns {path}: {err.strerror}") from None
        self.fd = fd
        return fd

    def __exit__(self, *exc) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf, for_add=True)
    prev = args.prev_result
    if prev is None:
        raise CNIError(ERR_INTERNAL, "This plugin must be called as chained plugin")
    ips = relevant_ips(prev, args.ifname)
    with netns_lock(args.netns) as fd:
        nl = RtNetlink(netns=fd)
        try:
            with add_transaction("sbr ADD") as undo:
                if conf.table is not None:
                    add_rules_to_table(nl, ips, conf.table, undo)
                elif ips:
                    gateways = {4: conf.gateway4, 6: conf.gateway6}
                    add_tables(nl, ips, args.ifname, gateways, conf.add_source_hints, undo)
        finally:
            nl.close()
    return prev


def cmd_del(args: CmdArgs) -> None:
    conf = load(args.conf)
    if not args.netns:
        return
    lock = netns_lock(args.netns)
    try:
        lock.acquire()
    except (NetnsGone, NoNetns):
        return  # gone, or no namespace: nothing of ours can be left in it
    with lock as fd:
        nl = RtNetlink(netns=fd)
        try:
            tidy_rules(nl, args.ifname, conf.table)
        finally:
            nl.close()


def cmd_check(args: CmdArgs) -> None:
    """Success, as the reference's CHECK; only the config is decoded (the
    reference does not even do that)."""
    load(args.conf)


def cmd_gc(args: CmdArgs) -> None:
    """Nothing outlives an attachment's netns: rules and tables live in it."""
    load(args.conf)


def cmd_status(args: CmdArgs) -> None:
    load(args.conf)
