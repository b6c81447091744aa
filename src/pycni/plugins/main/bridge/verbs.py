"""The bridge plugin's verbs, each a short story of toolkit calls."""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.bridge import spoofcheck
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
from pycni.plugins.pkg.ctrlink import delete_container_link
from pycni.plugins.pkg.errors import Failures, annotate, warn
from pycni.plugins.pkg.ipam import add_and_configure, ipam_del, ipam_status
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.sysctl import container_sysctls
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.plugins.pkg.veth import setup_veth
from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError
from pycni.spec.result import Interface, Result

# --- ADD ---


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


# --- DEL ---


def cmd_del(args: CmdArgs) -> None:
    """Remove spoof-check and masquerade rules, delete the container veth,
    release IPAM. Succeeds when the netns, the interface or the prevResult
    is missing; repeatable. Every failure is reported, and no step is
    skipped because an earlier one failed.

    The rules go first, on one netfilter socket closed last: deleting rules
    makes the close wait for an RCU grace period, which then passes while
    the veth is deleted instead of after it."""
    conf = load(args.conf, args.args)
    failures = Failures()
    masq = conf.is_layer3 and conf.ip_masq
    client = _netfilter() if conf.mac_spoof_chk or masq else None
    try:
        if conf.mac_spoof_chk:
            try:
                spoofcheck.teardown(spoofcheck.ref_id(args.container_id, args.ifname), client)
            except CNIError as err:
                warn(str(err))
        if masq:
            # without addresses the iptables chain is found by name and comment
            addrs = _prev_addrs(args)
            failures.attempt(masquerade.teardown_step, args, addrs, conf.name, client)
        failures.attempt(delete_container_link, args.netns, args.ifname, "bridge.del.delete-veth")
        if conf.is_layer3:
            failures.attempt(ipam_del, conf.ipam_type, args.stdin_data)
    finally:
        if client is not None:
            client.close()
    failures.raise_if_any()


def _netfilter():
    """One nf_tables socket for every rule set DEL removes (None without nf_tables)."""
    from pycni.netfilter.nftables import Nft

    try:
        return Nft()
    except OSError:
        return None


def _prev_addrs(args: CmdArgs) -> list[str]:
    """The container addresses recorded in prevResult (when the interface is gone)."""
    try:
        prev = args.prev_result
    except CNIError:
        return []
    if prev is None:
        return []
    return [ipc.address for ipc in prev.ips]


# --- CHECK, GC, STATUS ---


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.main.bridge import check  # only CHECK pays for it

    check.check(args, load(args.conf, args.args))


def cmd_gc(args: CmdArgs) -> None:
    """Forward GC to IPAM; remove this network's masquerade rules of
    attachments that are no longer valid."""
    conf = load(args.conf, args.args)
    masquerade.gc_verb(args, conf.name, conf.ipam_type, conf.ip_masq)


def cmd_status(args: CmdArgs) -> None:
    conf = load(args.conf, args.args)
    if conf.is_layer3:
        ipam_status(conf.ipam_type, args.stdin_data)
