"""The ptp plugin's verbs."""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.ptp.conf import NetConf, load
from pycni.plugins.main.ptp.links import require_gateways, route_container, setup_host_veth
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.ctrlink import delete_container_link
from pycni.plugins.pkg.errors import Failures
from pycni.plugins.pkg.iface import configure_iface
from pycni.plugins.pkg.ipam import ipam_add, ipam_del, ipam_status
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.sysctl import enable_ip_forward
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.plugins.pkg.veth import setup_veth
from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError
from pycni.spec.result import Interface, Result

# --- ADD ---


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf, for_add=True)
    host_nl = open_netlink()
    try:
        ctr_nl = open_netlink(args.netns)  # before IPAM: a bad netns reserves nothing
        try:
            with add_transaction("ptp ADD") as undo:
                return _add(args, conf, host_nl, ctr_nl, undo)
        finally:
            ctr_nl.close()
    finally:
        host_nl.close()


def _add(args: CmdArgs, conf: NetConf, host_nl: RtNetlink, ctr_nl: RtNetlink, undo: Undo) -> Result:
    ipam_result = ipam_add(conf.ipam_type, args.stdin_data, undo)
    result = Result(
        ips=[ipc.copy() for ipc in ipam_result.ips],
        routes=[r.copy() for r in ipam_result.routes],
        dns=ipam_result.dns.copy(),
    )
    require_gateways(result)
    for family in sorted({ipc.family for ipc in result.ips}):
        step("ptp.add.ip-forward")
        enable_ip_forward(family)

    hveth, cveth = setup_veth(ctr_nl, host_nl, args.netns, args.ifname, mtu=conf.mtu, undo=undo)
    for ipc in result.ips:
        ipc.interface = 1  # the container end, result.interfaces[1]
    result.interfaces = [
        Interface(hveth.name, hveth.mac),
        Interface(cveth.name, cveth.mac, args.netns),
    ]
    configure_iface(ctr_nl, args.netns, args.ifname, result)
    route_container(ctr_nl, args.netns, args.ifname, cveth.index, result)
    setup_host_veth(host_nl, hveth.name, result)

    if conf.ip_masq:
        addrs = [ipc.address for ipc in result.ips]
        masquerade.setup_step(args, addrs, conf.name, conf.ip_masq_backend, undo)
    if conf.dns is not None:
        result.dns = conf.dns
    return result


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
