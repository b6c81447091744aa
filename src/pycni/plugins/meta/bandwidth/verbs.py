"""The bandwidth plugin's verbs."""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.plugins.meta.bandwidth.ifb import delete_ifb, ifb_alias, ifb_name, stale_ifbs
from pycni.plugins.pkg.errors import Failures, annotate
from pycni.plugins.pkg.netconf import NetConf, invalid
from pycni.plugins.pkg.netns import open_netlink
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, CNIError

# The config's rates (`conf`), the shaping steps and the tc codec are
# imported by the verbs that shape: DEL and GC need only the IFB's name.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result


def cmd_add(args: CmdArgs) -> Result:
    from pycni.kernel.tc import tick_in_usec
    from pycni.plugins.meta.bandwidth.conf import load, shape_for_kernel
    from pycni.plugins.meta.bandwidth.shaping import add_egress, add_ingress
    from pycni.plugins.pkg.transaction import add_transaction
    from pycni.spec.result import Interface, Result

    conf = load(args.conf)
    prev = args.prev_result
    if conf.is_zero:
        # nothing to shape: prevResult unchanged (an empty result without one,
        # where the reference crashes on the nil prevResult)
        return prev if prev is not None else Result(args.cni_version)
    if prev is None:
        raise invalid("must be called as chained plugin", "the config has no prevResult")
    tick = tick_in_usec()
    ingress = shape_for_kernel(conf.ingress, tick) if conf.ingress.enabled else None
    egress = shape_for_kernel(conf.egress, tick) if conf.egress.enabled else None
    host_nl = open_netlink()
    try:
        veth = _host_veth(host_nl, args, prev)
        with add_transaction("bandwidth ADD") as undo:
            if ingress is not None:
                add_ingress(host_nl, veth, ingress, undo)
            if egress is not None:
                name = ifb_name(conf.name, args.container_id)
                ifb = add_egress(host_nl, veth, name, ifb_alias(conf.name), egress, undo)
                prev.interfaces.append(Interface(ifb.name, ifb.mac))
        return prev
    finally:
        host_nl.close()


def _host_veth(host_nl, args: CmdArgs, prev: Result):
    """The host end of the container interface's veth (see `host_veth`)."""
    from pycni.plugins.meta.bandwidth.shaping import host_veth

    ctr_nl = open_netlink(args.netns)
    try:
        return host_veth(host_nl, ctr_nl, args.ifname, args.netns, prev)
    finally:
        ctr_nl.close()


def cmd_del(args: CmdArgs) -> None:
    """Delete this attachment's IFB, if any. Needs no netns and no
    prevResult, and never fails on the bandwidth values: the IFB's name
    depends only on the network name and the container ID. The qdiscs on the
    host veth go with the veth, which the interface plugin deletes."""
    conf = NetConf(args.conf)
    name = ifb_name(conf.name, args.container_id)
    host_nl = open_netlink()
    try:
        step("bandwidth.del.ifb")
        with annotate("failed to delete IFB %s", name):
            delete_ifb(host_nl, name)
    finally:
        host_nl.close()


def cmd_check(args: CmdArgs) -> None:
    from pycni.kernel.tc import tick_in_usec
    from pycni.plugins.meta.bandwidth.conf import load
    from pycni.plugins.meta.bandwidth.shaping import check_redirect, check_tbf

    conf = load(args.conf)
    prev = args.prev_result
    if prev is None:
        raise invalid("must be called as a chained plugin", "the config has no prevResult")
    host_nl = open_netlink()
    try:
        veth = _host_veth(host_nl, args, prev)
        if conf.is_zero:
            return
        tick = tick_in_usec()
        if conf.ingress.enabled:
            check_tbf(host_nl, veth, conf.ingress, tick)
        if conf.egress.enabled:
            name = ifb_name(conf.name, args.container_id)
            ifb = host_nl.link_find(name)
            if ifb is None or ifb.kind != "ifb":
                raise CNIError(ERR_INTERNAL, f"get ifb device: {name}: Link not found")
            check_tbf(host_nl, ifb, conf.egress, tick)
            check_redirect(host_nl, veth, ifb)
    finally:
        host_nl.close()


def cmd_gc(args: CmdArgs) -> None:
    """Delete this network's IFBs (known by their alias) whose attachment is
    no longer valid; without a list of valid attachments, nothing."""
    attachments = args.valid_attachments
    if attachments is None:
        return
    conf = NetConf(args.conf)
    keep = {ifb_name(conf.name, cid) for cid, _ifname in attachments}
    host_nl = open_netlink()
    failures = Failures()
    try:
        for link in stale_ifbs(host_nl, conf.name, keep):
            step("bandwidth.gc.ifb")
            failures.attempt(
                delete_ifb, host_nl, link.name, what=f"failed to delete IFB {link.name}"
            )
    finally:
        host_nl.close()
    failures.raise_if_any()


def cmd_status(args: CmdArgs) -> None:
    """Nothing this plugin needs can be unavailable: always ready."""
