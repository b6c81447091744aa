"""The bridge and its ports: the kernel steps of the bridge plugin."""

from __future__ import annotations

import errno
import time

from pycni.faultpoint import step
from pycni.kernel.link import random_mac
from pycni.kernel.netlink import AF_INET, AF_INET6, LinkNotFound, NetlinkError, RtNetlink
from pycni.plugins.main.bridge.conf import NetConf
from pycni.plugins.pkg import sysctl as pkg_sysctl
from pycni.plugins.pkg.errors import kernel_error
from pycni.plugins.pkg.sysctl import set_quietly
from pycni.plugins.pkg.veth import delete_quietly, setup_veth
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, format_ip
from pycni.spec.result import Result, Route

# The reference's bridge-port readiness poll (milliseconds slept before each look).
PORT_UP_RETRIES_MS = (0, 50, 500, 1000, 1000)
_OPER_STATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")


def ensure_bridge(host_nl: RtNetlink, conf: NetConf):
    """Create the bridge (EEXIST tolerated, an existing one is not
    reconfigured), verify it is a bridge, set promisc if asked, accept_ra=0,
    set it up. Returns its Link.

    The reference sets promisc before the kind check; checking first means
    a failed ADD never leaves a non-bridge device promiscuous."""
    name = conf.br_name
    step("bridge.add.create-bridge")
    try:
        # The MAC is fixed in the request that creates the bridge: one left to
        # the kernel follows the lowest port MAC, so results of concurrent
        # ADDs would name MACs the bridge no longer has, and CHECK would fail.
        host_nl.link_add_bridge(
            name,
            mtu=conf.mtu,
            vlan_filtering=True if conf.vlan_filtering else None,
            mac=random_mac(),
        )
    except NetlinkError as err:
        if err.errno != errno.EEXIST:
            what = f'failed to create bridge "{name}": could not add "{name}"'
            if conf.vlan_filtering and err.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                what += " with vlan_filtering (needed by vlan/vlanTrunk)"
            raise kernel_error(what, err)
    try:
        br = bridge_by_name(host_nl, name)
        if conf.promisc_mode:
            step("bridge.add.bridge-promisc")
            try:
                host_nl.link_set(br, promisc=True)
            except NetlinkError as err:
                raise kernel_error(f'could not set promiscuous mode on "{name}"', err)
        step("bridge.add.bridge-accept-ra")
        set_quietly(f"net/ipv6/conf/{name}/accept_ra", "0")
        step("bridge.add.bridge-up")
        host_nl.link_set(br, up=True)
    except NetlinkError as err:
        raise kernel_error(f'failed to create bridge "{name}"', err)
    return br


def bridge_by_name(host_nl: RtNetlink, name: str):
    try:
        link = host_nl.link_get(name)
    except LinkNotFound:
        raise CNIError(errors.ERR_INTERNAL, f'could not lookup "{name}": Link not found')
    if link.kind != "bridge":
        raise CNIError(errors.ERR_INTERNAL, f'"{name}" already exists but is not a bridge')
    return link


def attach_port(
    host_nl: RtNetlink,
    br,
    veth,
    conf: NetConf,
    vlan: int,
    vlans: list[int],
    hairpin: bool,
    isolated: bool,
) -> None:
    """Enslave `veth` to the bridge, write hairpin/isolated, apply VLANs."""
    name = veth.name
    step("bridge.add.port-master")
    try:
        host_nl.link_set(veth, master=br.index)
    except NetlinkError as err:
        raise kernel_error(f'failed to connect "{name}" to bridge {br.name}', err)
    step("bridge.add.port-flags")
    try:
        host_nl.bridge_port_set(veth.index, hairpin=hairpin, isolated=isolated)
    except NetlinkError as err:
        raise kernel_error(f"failed to setup hairpin mode and isolation for {name}", err)
    try:
        setup_port_vlans(host_nl, veth, vlan, vlans, conf.preserve_default_vlan)
    except NetlinkError as err:
        raise kernel_error(f"failed to setup vlan tag on interface {name!r}", err)


def setup_port_vlans(host_nl: RtNetlink, veth, vlan: int, vlans: list[int], preserve: bool) -> None:
    """The reference's VLAN table steps for a bridge port."""
    if (vlan or vlans) and not preserve:
        for vid, _flags in host_nl.bridge_vlan_list(veth.index):
            host_nl.bridge_vlan_del(veth.index, vid, master=True)
    if vlan:
        host_nl.bridge_vlan_add(veth.index, vlan, pvid=True, untagged=True, master=True)
    for vid in vlans:
        host_nl.bridge_vlan_add(veth.index, vid, master=True)
    if vlans and not vlan:
        # a trunk without an access VLAN keeps VLAN 1 as its native VLAN
        host_nl.bridge_vlan_add(veth.index, 1, pvid=True, untagged=True, master=True)


def ensure_vlan_interface(host_nl: RtNetlink, br, conf: NetConf):
    """`<bridge>.<vlan>`: a host veth whose peer is a bridge port in the VLAN;
    the gateway address goes on it. Reused when it exists (it is shared by
    every container of the VLAN and never removed, as in the reference)."""
    name = f"{br.name}.{conf.vlan}"
    link = host_nl.link_find(name)
    if link is not None:
        return link
    try:
        peer, gw_if = setup_veth(host_nl, host_nl, "(host)", name, mtu=br.mtu)
    except CNIError as err:
        link = host_nl.link_find(name)  # created meanwhile by a concurrent ADD
        if link is not None:
            return link
        raise CNIError(err.code, f"failed to create vlan gateway {name!r}: {err.msg}")
    try:
        attach_port(host_nl, br, peer, conf, conf.vlan, [], False, False)
        gw_if = host_nl.link_get(name)
        host_nl.link_set(gw_if, up=True)
    except (CNIError, NetlinkError) as err:
        delete_quietly(host_nl, name)  # never leave a half-made gateway behind
        if isinstance(err, CNIError):
            raise
        raise kernel_error(f"failed to up {name!r}", err)
    return gw_if


def ensure_addr(host_nl: RtNetlink, link, cidr: str, force: bool) -> None:
    """Put the gateway `cidr` on `link`: an identical address is a no-op; any
    other IPv4 / an overlapping IPv6 address is a conflict unless `force`."""
    want = IPNet.parse(cidr)
    family = AF_INET if want.family == 4 else AF_INET6
    for a in host_nl.addr_list(link.index, family):
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
                host_nl.addr_del(link.index, str(have))
            except NetlinkError as err:
                raise kernel_error(f'could not remove IP address from "{link.name}"', err)
    step("bridge.add.gateway-addr")
    try:
        host_nl.addr_add(link.index, cidr)
    except NetlinkError as err:
        if err.errno != errno.EEXIST:
            raise kernel_error(f'could not add IP address {cidr} to "{link.name}"', err)
    step("bridge.add.bridge-mac")
    try:
        # A MAC set explicitly stops a bridge created elsewhere from tracking
        # its lowest port MAC; pin the one it has now, not one read earlier.
        host_nl.link_set(link.index, mac=host_nl.link_get(index=link.index).mac)
    except NetlinkError as err:
        raise kernel_error(f"could not set {link.name}'s mac", err)


def enable_ip_forward(family: int) -> None:
    step("bridge.add.ip-forward")
    pkg_sysctl.enable_ip_forward(family)


def calc_gateways(result: Result, conf: NetConf) -> dict[int, list[str]]:
    """The reference's calcGateways: IPs point at interface 2, gateways default
    to network+1 with isGateway, a default route per family with
    isDefaultGateway, and the gateway CIDRs to put on the bridge per family."""
    gws: dict[int, list[str]] = {4: [], 6: []}
    default_found = {4: False, 6: False}
    for ipc in result.ips:
        addr = IPNet.parse(ipc.address)
        ipc.interface = 2
        if ipc.gateway is None and conf.is_gw:
            ipc.gateway = format_ip(addr.family, addr.network + 1)
        if conf.is_default_gw and not default_found[addr.family]:
            default = "0.0.0.0/0" if addr.family == 4 else "::/0"
            for r in result.routes:
                if r.gw and r.dst == default:
                    default_found[addr.family] = True
                    break
            if not default_found[addr.family]:
                result.routes.append(Route(default, ipc.gateway))
                default_found[addr.family] = True
        if conf.is_gw:
            gws[addr.family].append(f"{ipc.gateway}/{addr.prefixlen}")
    return gws


def wait_port_up(host_nl: RtNetlink, name: str):
    link = None
    for idx, ms in enumerate(PORT_UP_RETRIES_MS):
        if ms:
            time.sleep(ms / 1000)
        link = host_nl.link_get(name)
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
