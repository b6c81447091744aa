"""The bridge plugin: a veth pair per container, the host end on a Linux bridge.

A drop-in for the reference `bridge` (plugins.md 3.1): same config keys, same
kernel objects, same result. Beyond the reference: an ADD that fails leaves
nothing behind (the veth pair, the IPAM reservation and the masquerade and
spoof-check rules it added are removed again), DEL also cleans masquerade
and spoof-check rules when the netns is already gone, GC removes this
network's stale masquerade rules and is forwarded to IPAM, STATUS is
forwarded to IPAM, and errors name the object and namespace involved.
"""

from __future__ import annotations

import errno

from pycni.faultpoint import step
from pycni.plugins import common
from pycni.plugins.common import CNIError, kernel_error
from pycni.spec import errors

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.netlink import RtNetlink
    from pycni.plugins.main.bridge_conf import NetConf
    from pycni.skel import CmdArgs
    from pycni.spec.result import Result

# The reference's bridge-port readiness poll (milliseconds slept before each look).
PORT_UP_RETRIES_MS = (0, 50, 500, 1000, 1000)
_OPER_STATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")


def _load(args: CmdArgs, for_add: bool = False) -> NetConf:
    from pycni.plugins.main import bridge_conf

    return bridge_conf.load(args.conf, args.args, for_add)


# --- the bridge ---


def ensure_bridge(host: RtNetlink, n: NetConf):
    """Create the bridge (EEXIST tolerated, an existing one is not
    reconfigured), verify it is a bridge, set promisc if asked, accept_ra=0,
    set it up. Returns its Link.

    The reference sets promisc before the kind check; checking first means
    a failed ADD never leaves a non-bridge device promiscuous."""
    from pycni.kernel.link import random_mac
    from pycni.kernel.netlink import NetlinkError

    name = n.br_name
    step("bridge.add.create-bridge")
    try:
        # The MAC is fixed in the request that creates the bridge: one left to
        # the kernel follows the lowest port MAC, so results of concurrent
        # ADDs would name MACs the bridge no longer has, and CHECK would fail.
        host.link_add_bridge(
            name,
            mtu=n.mtu,
            vlan_filtering=True if n.vlan_filtering else None,
            mac=random_mac(),
        )
    except NetlinkError as err:
        if err.errno != errno.EEXIST:
            what = f'failed to create bridge "{name}": could not add "{name}"'
            if n.vlan_filtering and err.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                what += " with vlan_filtering (needed by vlan/vlanTrunk)"
            raise kernel_error(what, err)
    try:
        br = bridge_by_name(host, name)
        if n.promisc_mode:
            step("bridge.add.bridge-promisc")
            try:
                host.link_set(br, promisc=True)
            except NetlinkError as err:
                raise kernel_error(f'could not set promiscuous mode on "{name}"', err)
        step("bridge.add.bridge-accept-ra")
        common._sysctl_quiet(f"net/ipv6/conf/{name}/accept_ra", "0")
        step("bridge.add.bridge-up")
        host.link_set(br, up=True)
    except NetlinkError as err:
        raise kernel_error(f'failed to create bridge "{name}"', err)
    return br


def bridge_by_name(host: RtNetlink, name: str):
    from pycni.kernel.netlink import LinkNotFound

    try:
        link = host.link_get(name)
    except LinkNotFound:
        raise CNIError(errors.ERR_INTERNAL, f'could not lookup "{name}": Link not found')
    if link.kind != "bridge":
        raise CNIError(errors.ERR_INTERNAL, f'"{name}" already exists but is not a bridge')
    return link


# --- the port ---


def attach_port(
    host: RtNetlink,
    br,
    veth,
    n: NetConf,
    vlan: int,
    vlans: list[int],
    hairpin: bool,
    isolated: bool,
) -> None:
    """Enslave `veth` to the bridge, write hairpin/isolated, apply VLANs."""
    from pycni.kernel.netlink import NetlinkError

    name = veth.name
    step("bridge.add.port-master")
    try:
        host.link_set(veth, master=br.index)
    except NetlinkError as err:
        raise kernel_error(f'failed to connect "{name}" to bridge {br.name}', err)
    step("bridge.add.port-flags")
    try:
        host.bridge_port_set(veth.index, hairpin=hairpin, isolated=isolated)
    except NetlinkError as err:
        raise kernel_error(f"failed to setup hairpin mode and isolation for {name}", err)
    try:
        setup_port_vlans(host, veth, vlan, vlans, n.preserve_default_vlan)
    except NetlinkError as err:
        raise kernel_error(f"failed to setup vlan tag on interface {name!r}", err)


def setup_port_vlans(host: RtNetlink, veth, vlan: int, vlans: list[int], preserve: bool) -> None:
    """The reference's VLAN table steps for a bridge port."""
    if (vlan or vlans) and not preserve:
        for vid, _flags in host.bridge_vlan_list(veth.index):
            host.bridge_vlan_del(veth.index, vid, master=True)
    if vlan:
        host.bridge_vlan_add(veth.index, vlan, pvid=True, untagged=True, master=True)
    for vid in vlans:
        host.bridge_vlan_add(veth.index, vid, master=True)
    if vlans and not vlan:
        # a trunk without an access VLAN keeps VLAN 1 as its native VLAN
        host.bridge_vlan_add(veth.index, 1, pvid=True, untagged=True, master=True)


def ensure_vlan_interface(host: RtNetlink, br, n: NetConf):
    """`<bridge>.<vlan>`: a host veth whose peer is a bridge port in the VLAN;
    the gateway address goes on it. Reused when it exists (it is shared by
    every container of the VLAN and never removed, as in the reference)."""
    from pycni.kernel.netlink import NetlinkError

    name = f"{br.name}.{n.vlan}"
    link = host.link_find(name)
    if link is not None:
        return link
    try:
        peer, gw_if = common.setup_veth(host, host, "(host)", name, mtu=br.mtu)
    except CNIError as err:
        link = host.link_find(name)  # created meanwhile by a concurrent ADD
        if link is not None:
            return link
        raise CNIError(err.code, f"failed to create vlan gateway {name!r}: {err.msg}")
    try:
        attach_port(host, br, peer, n, n.vlan, [], False, False)
        gw_if = host.link_get(name)
        host.link_set(gw_if, up=True)
    except (CNIError, NetlinkError) as err:
        common._delete_quietly(host, name)  # never leave a half-made gateway behind
        if isinstance(err, CNIError):
            raise
        raise kernel_error(f"failed to up {name!r}", err)
    return gw_if


def ensure_addr(host: RtNetlink, link, cidr: str, force: bool) -> None:
    """Put the gateway `cidr` on `link`: an identical address is a no-op; any
    other IPv4 / an overlapping IPv6 address is a conflict unless `force`."""
    from pycni.kernel.netlink import AF_INET, AF_INET6, NetlinkError
    from pycni.spec.ipnet import IPNet

    want = IPNet.parse(cidr)
    family = AF_INET if want.family == 4 else AF_INET6
    for a in host.addr_list(link.index, family):
        have = IPNet.parse(f"{a.address}/{a.prefixlen}")
        if have == want:
            return
        if (
            want.family == 4
            or have.contains(want.family, want.ip)
            or want.contains(have.family, have.ip)
        ):
            if not force:
                raise CNIError(
                    errors.ERR_INTERNAL,
                    f'"{link.name}" already has an IP address different from {cidr}',
                    f"it has {have}; set forceAddress to replace it",
                )
            step("bridge.add.gateway-addr-del")
            try:
                host.addr_del(link.index, str(have))
            except NetlinkError as err:
                raise kernel_error(f'could not remove IP address from "{link.name}"', err)
    step("bridge.add.gateway-addr")
    try:
        host.addr_add(link.index, cidr)
    except NetlinkError as err:
        if err.errno != errno.EEXIST:
            raise kernel_error(f'could not add IP address {cidr} to "{link.name}"', err)
    step("bridge.add.bridge-mac")
    try:
        # A MAC set explicitly stops a bridge created elsewhere from tracking
        # its lowest port MAC; pin the one it has now, not one read earlier.
        host.link_set(link.index, mac=host.link_get(index=link.index).mac)
    except NetlinkError as err:
        raise kernel_error(f"could not set {link.name}'s mac", err)


def enable_ip_forward(family: int) -> None:
    from pycni.kernel import sysctl

    name = "net/ipv4/ip_forward" if family == 4 else "net/ipv6/conf/all/forwarding"
    step("bridge.add.ip-forward")
    try:
        sysctl.set(name, "1")
    except OSError as err:
        raise kernel_error("failed to enable forwarding", err)


def calc_gateways(result: Result, n: NetConf) -> dict[int, list[str]]:
    """The reference's calcGateways: IPs point at interface 2, gateways default
    to network+1 with isGateway, a default route per family with
    isDefaultGateway, and the gateway CIDRs to put on the bridge per family."""
    from pycni.spec.ipnet import IPNet, format_ip
    from pycni.spec.result import Route

    gws: dict[int, list[str]] = {4: [], 6: []}
    default_found = {4: False, 6: False}
    for ipc in result.ips:
        addr = IPNet.parse(ipc.address)
        ipc.interface = 2
        if ipc.gateway is None and n.is_gw:
            ipc.gateway = format_ip(addr.family, addr.network + 1)
        if n.is_default_gw and not default_found[addr.family]:
            default = "0.0.0.0/0" if addr.family == 4 else "::/0"
            for r in result.routes:
                if r.gw and r.dst == default:
                    default_found[addr.family] = True
                    break
            if not default_found[addr.family]:
                result.routes.append(Route(default, ipc.gateway))
                default_found[addr.family] = True
        if n.is_gw:
            gws[addr.family].append(f"{ipc.gateway}/{addr.prefixlen}")
    return gws


def wait_port_up(host: RtNetlink, name: str):
    import time

    link = None
    for idx, ms in enumerate(PORT_UP_RETRIES_MS):
        if ms:
            time.sleep(ms / 1000)
        link = host.link_get(name)
        if link.oper_up:
            return link
        if idx == len(PORT_UP_RETRIES_MS) - 1:
            state = link.operstate
            text = _OPER_STATES[state] if 0 <= state < len(_OPER_STATES) else str(state)
            raise CNIError(
                errors.ERR_INTERNAL,
                f"bridge port in error state: {text}",
                f"host veth {name} on bridge did not come up",
            )
    return link


# --- ADD ---


def cmd_add(args: CmdArgs) -> Result:
    from pycni.kernel.netlink import NetlinkError

    n = _load(args, for_add=True)
    undo = common.Rollback()
    host = common.open_netlink()
    try:
        result = _add(args, n, host, undo)
    except BaseException as err:
        undo.run()
        if isinstance(err, NetlinkError):
            raise kernel_error("bridge ADD failed", err) from err
        raise
    finally:
        host.close()
    undo.commit()
    return result


def _add(args: CmdArgs, n: NetConf, host: RtNetlink, undo: common.Rollback) -> Result:
    from pycni.spec.result import Interface, Result

    br = ensure_bridge(host, n)
    ct = common.open_netlink(args.netns)
    try:
        hveth, cveth = common.setup_veth(
            host=host, ct=ct, netns=args.netns, ifname=args.ifname, mtu=n.mtu, mac=n.mac or None
        )
        undo.push(
            f"delete veth {args.ifname} in netns {args.netns}",
            _del_veth,
            args.netns,
            host,
            args.ifname,
            hveth.name,
        )
        attach_port(host, br, hveth, n, n.vlan, n.vlans, n.hairpin_mode, n.port_isolation)
        br_if = Interface(br.name, br.mac)
        host_if = Interface(hveth.name, hveth.mac)
        cont_if = Interface(cveth.name, cveth.mac, args.netns)
        result = Result(interfaces=[br_if, host_if, cont_if])

        if n.mac_spoof_chk:
            from pycni.kernel import spoofcheck

            ref = spoofcheck.ref_id(args.container_id, args.ifname)
            try:
                spoofcheck.setup(hveth.name, cveth.mac, ref)
            except OSError as err:
                raise kernel_error("macspoofchk", err)
            undo.push("remove mac spoof check rules", spoofcheck.teardown, ref)

        if n.is_layer3:
            _add_layer3(args, n, host, ct, br, result, undo)
        elif not n.disable_container_interface:
            step("bridge.add.container-up")
            try:
                ct.link_set(cveth, up=True)
            except OSError as err:
                raise kernel_error(f"failed to set {args.ifname!r} up in netns {args.netns}", err)

        if not n.disable_container_interface:
            hveth = wait_port_up(host, hveth.name)
        else:
            hveth = host.link_get(hveth.name)
        host_if.mac = hveth.mac
        br_if.mac = bridge_by_name(host, n.br_name).mac
        if n.dns is not None:
            result.dns = n.dns
        return result
    finally:
        ct.close()


def _add_layer3(
    args: CmdArgs,
    n: NetConf,
    host: RtNetlink,
    ct: RtNetlink,
    br,
    result: Result,
    undo: common.Rollback,
) -> None:
    from pycni.skel.delegate import delegate_add, delegate_del
    from pycni.spec.result import Interface

    ipam_result = delegate_add(n.ipam_type, args.stdin_data)
    undo.push(
        f"release the IPAM ({n.ipam_type}) allocation", delegate_del, n.ipam_type, args.stdin_data
    )
    result.ips = [ipc.copy() for ipc in ipam_result.ips]
    result.routes = [r.copy() for r in ipam_result.routes]
    result.dns = ipam_result.dns.copy()
    if not result.ips:
        raise CNIError(
            errors.ERR_INTERNAL,
            "IPAM plugin returned missing IP config",
            f"the {n.ipam_type} result has no IPs",
        )
    gws = calc_gateways(result, n)

    ifname = args.ifname
    writes = []
    if n.enable_dad:
        writes.append((f"net/ipv6/conf/{ifname}/enhanced_dad", "1"))
        writes.append((f"net/ipv6/conf/{ifname}/accept_dad", "1"))
    else:
        writes.append((f"net/ipv6/conf/{ifname}/accept_dad", "0"))
    writes.append((f"net/ipv4/conf/{ifname}/arp_notify", "1"))
    step("bridge.add.container-sysctls")
    common.container_sysctls(args.netns, writes)
    common.configure_iface(ct, args.netns, ifname, result)

    if n.is_gw:
        vlan_link = None
        for family in (4, 6):
            for gw in gws[family]:
                if n.vlan:
                    if vlan_link is None:
                        vlan_link = ensure_vlan_interface(host, br, n)
                        result.interfaces.append(Interface(vlan_link.name, vlan_link.mac))
                    target = vlan_link
                else:
                    target = br
                try:
                    ensure_addr(host, target, gw, n.force_address)
                except CNIError as err:
                    what = "vlan interface for bridge" if n.vlan else "bridge addr"
                    raise CNIError(err.code, f"failed to set {what}: {err.msg}", err.details)
            if gws[family]:
                enable_ip_forward(family)

    if n.ip_masq:
        from pycni.kernel import ipmasq

        addrs = [ipc.address for ipc in result.ips]
        undo.push(
            "remove masquerade rules", _masq_teardown, addrs, n.name, ifname, args.container_id
        )
        try:
            ipmasq.setup(addrs, n.name, ifname, args.container_id, n.ip_masq_backend)
        except ipmasq.IPMasqError as err:
            raise CNIError(errors.ERR_INTERNAL, f"failed to set up IP masquerade: {err}")


def _del_veth(netns: str, host: RtNetlink, ifname: str, host_name: str) -> None:
    """Undo setup_veth: delete the container end (the pair goes with it), or
    the host end when the container netns is already gone."""
    from pycni.kernel.netlink import LinkNotFound

    try:
        ct = common.open_netlink(netns)
    except CNIError:
        ct = None
    if ct is not None:
        try:
            ct.link_del(ifname)
            return
        except LinkNotFound:
            pass
        finally:
            ct.close()
    try:
        host.link_del(host_name)
    except LinkNotFound:
        pass


def _masq_teardown(addrs: list[str], network: str, ifname: str, container_id: str) -> None:
    from pycni.kernel import ipmasq

    ipmasq.teardown(addrs, network, ifname, container_id)


# --- DEL ---


def cmd_del(args: CmdArgs) -> None:
    """Delete the container veth (collecting its addresses), release IPAM,
    remove spoof-check and masquerade rules. Succeeds when the netns, the
    interface or the prevResult is missing; repeatable."""
    n = _load(args)
    failures: list[CNIError] = []
    addrs: list[str] | None = None
    if args.netns:
        ct = None
        try:
            ct = common.open_netlink(args.netns)
        except common.NetnsGone:
            pass
        except CNIError as err:
            failures.append(err)
        if ct is not None:
            step("bridge.del.delete-veth")
            try:
                addrs = common.del_link_by_name_addr(ct, args.ifname)
            except OSError as err:
                failures.append(
                    kernel_error(f"failed to delete {args.ifname!r} in netns {args.netns}", err)
                )
            finally:
                ct.close()
    if n.is_layer3:
        from pycni.skel.delegate import delegate_del

        try:
            delegate_del(n.ipam_type, args.stdin_data)
        except CNIError as err:
            failures.append(err)
    if n.mac_spoof_chk:
        from pycni.kernel import spoofcheck

        try:
            spoofcheck.teardown(spoofcheck.ref_id(args.container_id, args.ifname))
        except OSError as err:
            common.warn(str(err))
    if n.is_layer3 and n.ip_masq:
        from pycni.kernel import ipmasq

        if addrs is None:
            addrs = _prev_addrs(args)
        try:
            ipmasq.teardown(addrs, n.name, args.ifname, args.container_id)
        except ipmasq.IPMasqError as err:
            failures.append(
                CNIError(errors.ERR_INTERNAL, f"failed to remove IP masquerade rules: {err}")
            )
    if failures:
        raise failures[0]


def _prev_addrs(args: CmdArgs) -> list[str]:
    """The container addresses recorded in prevResult (when the interface is gone)."""
    try:
        prev = args.prev_result
    except CNIError:
        return []
    if prev is None:
        return []
    return [ipc.address for ipc in prev.ips]


# --- CHECK ---


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.main import bridge_check

    bridge_check.check(args, _load(args))


# --- GC / STATUS ---


def cmd_gc(args: CmdArgs) -> None:
    """Forward GC to IPAM; remove this network's masquerade rules of
    attachments that are no longer valid."""
    n = _load(args)
    failures: list[CNIError] = []
    if n.is_layer3:
        from pycni.skel.delegate import delegate_gc

        try:
            delegate_gc(n.ipam_type, args.stdin_data)
        except CNIError as err:
            failures.append(err)
    attachments = args.valid_attachments
    if n.ip_masq and attachments is not None:
        from pycni.kernel import ipmasq

        try:
            ipmasq.gc(n.name, attachments)
        except (ipmasq.IPMasqError, OSError) as err:
            failures.append(
                CNIError(
                    errors.ERR_INTERNAL, f"failed to garbage-collect IP masquerade rules: {err}"
                )
            )
    if failures:
        raise failures[0]


def cmd_status(args: CmdArgs) -> None:
    n = _load(args)
    if n.is_layer3:
        from pycni.skel.delegate import delegate_status

        delegate_status(n.ipam_type, args.stdin_data)


# What skel needs to run this plugin (all spec versions: skel's default).
HANDLERS = {
    "add": cmd_add,
    "delete": cmd_del,
    "check": cmd_check,
    "gc": cmd_gc,
    "status": cmd_status,
    "about": "CNI bridge plugin (pycni)",
}


def main() -> None:
    from pycni.skel import plugin_main

    plugin_main(**HANDLERS)


if __name__ == "__main__":
    main()
