"""The vrf plugin's verbs: ADD, DEL, CHECK (the reference has no GC or STATUS)."""

from __future__ import annotations

from pycni.plugins.meta.vrf.conf import load
from pycni.plugins.meta.vrf.routing import (
    add_interface,
    check_interface,
    ensure_vrf,
    remove_interface,
)
from pycni.plugins.pkg.errors import annotate
from pycni.plugins.pkg.netns import NetnsGone, open_netlink
from pycni.plugins.pkg.transaction import add_transaction
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.result import Result


def _prev(args: CmdArgs) -> Result:
    prev = args.prev_result
    if prev is None:
        raise CNIError(
            errors.ERR_INVALID_NETWORK_CONFIG,
            "missing prevResult from earlier plugin",
            "vrf is a chained plugin: put it after an interface plugin in a conflist",
        )
    return prev


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf)
    result = _prev(args)
    nl = open_netlink(args.netns)
    try:
        with add_transaction("vrf ADD") as undo, annotate("cmdAdd failed"):
            vrf = ensure_vrf(nl, conf.vrfname, conf.table, args.netns, undo)
            add_interface(nl, vrf, args.ifname, args.netns, undo)
    finally:
        nl.close()
    return result


def cmd_del(args: CmdArgs) -> None:
    conf = load(args.conf)
    if not args.netns:
        return
    try:
        nl = open_netlink(args.netns)
    except NetnsGone:
        return
    try:
        remove_interface(nl, conf.vrfname, args.ifname)
    finally:
        nl.close()


def cmd_check(args: CmdArgs) -> None:
    conf = load(args.conf)
    _prev(args)
    nl = open_netlink(args.netns)
    try:
        check_interface(nl, conf.vrfname, args.ifname, conf.table)
    finally:
        nl.close()
