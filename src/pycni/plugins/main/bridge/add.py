"""The bridge plugin's ADD: the bridge, the veth pair, the port, IPAM,
gateways, masquerade and spoof-check rules, under one transaction.

A module of its own so that DEL, CHECK, GC and STATUS load none of what
only ADD uses (links, veth, sysctl, the transaction, the result types).
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.bridge.conf import NetConf, load
from pycni.plugins.main.bridge.links import (
    attach_port,
    bridge_by_name,
    calc_gateways,
    enable_ip_forward,
    ensure_addr,
    ensure_bridge,
    ensure_vlan_interface,
    wait_port_up,
)
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.errors import annotate
from pycni.plugins.pkg.ipam import add_and_configure
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.sysctl import container_sysctls
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.plugins.pkg.veth import setup_veth
from pycni.skel import CmdArgs
from pycni.spec.result import Interface, Result


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf, args.args, for_add=True)
    host_nl = open_netlink()
    try:
        with add_transaction("bridge ADD") as undo:
            return _add(args, conf, host_nl, undo)
    finally:
        host_nl.close()


def _add(args: CmdArgs, conf: NetConf, host_nl: RtNetlink, undo: Undo) -> Result:
    br = ensure_bridge(host_nl, conf)
    ctr_nl = open_netlink(args.netns)
    try:
        hveth, cveth = setup_veth(
            ctr_nl, host_nl, args.netns, args.ifname, mtu=conf.mtu, mac=conf.mac or None, undo=undo
        )
        attach_port(
            host_nl, br, hveth, conf, conf.vlan, conf.vlans, conf.hairpin_mode, conf.port_isolation
        )
        br_if = Interface(br.name, br.mac)
        host_if = Interface(hveth.name, hveth.mac)
        result = Result(interfaces=[br_if, host_if, Interface(cveth.name, cveth.mac, args.netns)])

        if conf.mac_spoof_chk:
            from pycni.plugins.main.bridge import spoofcheck  # off by default

            ref = spoofcheck.ref_id(args.container_id, args.ifname)
            with annotate("macspoofchk"):
                spoofcheck.setup(hveth.name, cveth.mac, ref)
            undo.push("remove mac spoof check rules", spoofcheck.teardown, ref)

        if conf.is_layer3:
            _add_layer3(args, conf, host_nl, ctr_nl, br, result, undo)
        elif not conf.disable_container_interface:
            step("bridge.add.container-up")
            with annotate("failed to set %r up in netns %s", args.ifname, args.netns):
                ctr_nl.link_set(cveth, up=True)

        if not conf.disable_container_interface:
            hveth = wait_port_up(host_nl, hveth.name)
        else:
            hveth = host_nl.link_get(hveth.name)
        host_if.mac = hveth.mac
        br_if.mac = bridge_by_name(host_nl, conf.br_name).mac
        if conf.dns is not None:
            result.dns = conf.dns
        return result
    finally:
        ctr_nl.close()


def _add_layer3(
    args: CmdArgs,
    conf: NetConf,
    host_nl: RtNetlink,
    ctr_nl: RtNetlink,
    br,
    result: Result,
    undo: Undo,
) -> None:
    gws: dict[int, list[str]] = {}

    def prepare(result: Result) -> None:
        gws.update(calc_gateways(result, conf))
        step("bridge.add.container-sysctls")
        container_sysctls(args.netns, _container_sysctls(conf, args.ifname))

    add_and_configure(args, conf.ipam_type, result, ctr_nl, undo, before_configure=prepare)
    if conf.is_gw:
        _add_gateways(host_nl, br, conf, gws, result)
    if conf.ip_masq:
        addrs = [ipc.address for ipc in result.ips]
        masquerade.setup_step(args, addrs, conf.name, conf.ip_masq_backend, undo)


def _container_sysctls(conf: NetConf, ifname: str) -> list[tuple[str, str]]:
    writes = []
    if conf.enable_dad:
        writes.append((f"net/ipv6/conf/{ifname}/enhanced_dad", "1"))
        writes.append((f"net/ipv6/conf/{ifname}/accept_dad", "1"))
    else:
        writes.append((f"net/ipv6/conf/{ifname}/accept_dad", "0"))
    writes.append((f"net/ipv4/conf/{ifname}/arp_notify", "1"))
    return writes


def _add_gateways(
    host_nl: RtNetlink, br, conf: NetConf, gws: dict[int, list[str]], result: Result
) -> None:
    """The gateway addresses on the bridge (or its `<bridge>.<vlan>` link), and forwarding."""
    vlan_link = None
    for family in (4, 6):
        for gw in gws[family]:
            if conf.vlan:
                if vlan_link is None:
                    vlan_link = ensure_vlan_interface(host_nl, br, conf)
                    result.interfaces.append(Interface(vlan_link.name, vlan_link.mac))
                target = vlan_link
            else:
                target = br
            with annotate(
                "failed to set vlan interface for bridge"
                if conf.vlan
                else "failed to set bridge addr"
            ):
                ensure_addr(host_nl, target, gw, conf.force_address)
        if gws[family]:
            enable_ip_forward(family)
