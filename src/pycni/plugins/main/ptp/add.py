"""The ptp plugin's ADD: IPAM, forwarding, the veth pair, addresses and
routes on both ends, masquerade rules, under one transaction.

A module of its own so that DEL, CHECK, GC and STATUS load none of what
only ADD uses (the veth and link steps, sysctl, the transaction).
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.ptp.conf import NetConf, load
from pycni.plugins.main.ptp.links import require_gateways, route_container, setup_host_veth
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.iface import configure_iface
from pycni.plugins.pkg.ipam import ipam_add
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.sysctl import enable_ip_forward
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.plugins.pkg.veth import setup_veth
from pycni.skel import CmdArgs
from pycni.spec.result import Interface, Result


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
