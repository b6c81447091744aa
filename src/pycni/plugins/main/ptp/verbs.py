"""The ptp plugin's verbs (ADD's in `add`, imported by cmd_add alone)."""

from __future__ import annotations

from pycni.plugins.main.ptp.conf import load
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.ctrlink import delete_container_link
from pycni.plugins.pkg.errors import Failures
from pycni.plugins.pkg.ipam import ipam_del, ipam_status
from pycni.plugins.pkg.netns import open_netlink
from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result


def cmd_add(args: CmdArgs) -> Result:
    from pycni.plugins.main.ptp.add import cmd_add as add

    return add(args)


# --- DEL ---


def cmd_del(args: CmdArgs) -> None:
    """Remove the masquerade rules, delete the container veth (its host end,
    the gateway address and the host route go with it), release IPAM.

    Succeeds when the netns, the interface, prevResult or the IPAM type is
    missing, and when run twice. Every step runs; failures are reported
    together. The reference releases IPAM first and stops at its error,
    and leaves the masquerade rules behind when the interface is gone."""
    conf = load(args.conf)
    failures = Failures()
    if conf.ip_masq:
        addrs = _container_addrs(args) or _prev_addrs(args)
        failures.attempt(masquerade.teardown_step, args, addrs, conf.name)
    failures.attempt(delete_container_link, args.netns, args.ifname, "ptp.del.delete-veth")
    if conf.ipam_type:
        failures.attempt(ipam_del, conf.ipam_type, args.stdin_data)
    failures.raise_if_any()


def _container_addrs(args: CmdArgs) -> list[str]:
    """The global addresses on the container interface, if it is still there."""
    from pycni.spec.ipnet import is_global_unicast

    if not args.netns:
        return []
    try:
        ctr_nl = open_netlink(args.netns)
    except CNIError:
        return []
    try:
        link = ctr_nl.link_find(args.ifname)
        if link is None:
            return []
        return [
            f"{a.address}/{a.prefixlen}"
            for a in ctr_nl.addr_list(link.index)
            if is_global_unicast(a.address)
        ]
    except OSError:
        return []
    finally:
        ctr_nl.close()


def _prev_addrs(args: CmdArgs) -> list[str]:
    try:
        prev = args.prev_result
    except CNIError:
        return []
    return [ipc.address for ipc in prev.ips] if prev is not None else []


# --- CHECK, GC, STATUS ---


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.main.ptp import check  # only CHECK pays for it

    check.check(args, load(args.conf))


def cmd_gc(args: CmdArgs) -> None:
    """Forward GC to IPAM; remove this network's masquerade rules of
    attachments that are no longer valid (the reference has no GC)."""
    conf = load(args.conf)
    masquerade.gc_verb(args, conf.name, conf.ipam_type, conf.ip_masq)


def cmd_status(args: CmdArgs) -> None:
    """IPAM STATUS, as the reference; a config ADD would refuse is reported."""
    conf = load(args.conf, for_add=True)
    ipam_status(conf.ipam_type, args.stdin_data)
