"""The kernel steps of the ptp plugin: the routes in the container, the
gateway addresses and host routes on the host end of the veth.

What the reference does (plugins.md 3.2), and why: a veth has no
IFF_POINTOPOINT, so the container address keeps its IPAM prefix, the
kernel's connected route for that prefix is replaced by an on-link host
route to the gateway plus "<subnet> via <gateway>". Every packet, also to a
same-subnet peer, goes to the host end, which answers ARP/ND for the
gateway (every ptp host end carries the same gateway /32 or /128) and
routes it on through the host route to the peer's address.
"""

from __future__ import annotations

import errno

from pycni.faultpoint import step
from pycni.kernel.netlink import NetlinkError, RtNetlink
from pycni.plugins.pkg.errors import kernel_error
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, bits
from pycni.spec.result import Result


def require_gateways(result: Result) -> None:
    """Every address must come with a gateway: ptp routes everything via it.

    The reference fails later, inside the netns, with a bare netlink error;
    here it is found right after IPAM ADD (code 7: it is the IPAM config
    that lacks it)."""
    for ipc in result.ips:
        if not ipc.gateway:
            raise CNIError(
                errors.ERR_INVALID_NETWORK_CONFIG,
                f"the IPAM result has no gateway for {ipc.address}: ptp routes all "
                "traffic of the container via the gateway",
                'set "gateway" in the IPAM config (host-local defaults it to the subnet\'s first '
                "address)",
            )


def host_prefix(ipc) -> str:
    return f"/{bits(ipc.family)}"


def route_container(ctr_nl: RtNetlink, netns: str, ifname: str, index: int, result: Result) -> None:
    """Per address: drop the connected route, add `<gw>/32 dev <if> scope
    link src <ip>` and `<subnet> via <gw> dev <if> src <ip>`."""
    for ipc in result.ips:
        net = IPNet.parse(ipc.address)
        subnet = net.network_str
        gw_host = f"{ipc.gateway}{host_prefix(ipc)}"
        step("ptp.add.container-route-del")
        try:
            ctr_nl.route_del(subnet, oif=index)
        except NetlinkError as err:
            # a /32 (/128) address has no connected route to drop
            if err.errno != errno.ESRCH:
                raise kernel_error(
                    f"failed to delete route {subnet} dev {ifname} in netns {netns}", err
                )
        step("ptp.add.container-route-gw")
        try:
            ctr_nl.route_add(gw_host, oif=index, scope="link", src=net.ip_str, exclusive=True)
        except NetlinkError as err:
            raise kernel_error(
                f"failed to add route {gw_host} dev {ifname} scope link src {net.ip_str} "
                f"in netns {netns}",
                err,
            )
        step("ptp.add.container-route-subnet")
        try:
            ctr_nl.route_add(subnet, gateway=ipc.gateway, oif=index, src=net.ip_str, exclusive=True)
        except NetlinkError as err:
            raise kernel_error(
                f"failed to add route {subnet} via {ipc.gateway} dev {ifname} src {net.ip_str} "
                f"in netns {netns}",
                err,
            )


def setup_host_veth(host_nl: RtNetlink, name: str, result: Result) -> None:
    """Per address: the gateway as /32 (/128) on the host end, and a host
    route to the container address through it (EEXIST tolerated)."""
    try:
        veth = host_nl.link_get(name)
    except NetlinkError as err:
        raise kernel_error(f"failed to lookup {name!r}", err)
    for ipc in result.ips:
        prefix = host_prefix(ipc)
        gw = f"{ipc.gateway}{prefix}"
        step("ptp.add.host-addr")
        try:
            host_nl.addr_add(veth, gw)
        except NetlinkError as err:
            raise kernel_error(f"failed to add IP addr {gw} to veth {name}", err)
        dst = ipc.ip + prefix
        step("ptp.add.host-route")
        try:
            host_nl.route_add(dst, oif=veth.index, scope="host", exclusive=True)
        except NetlinkError as err:
            if err.errno != errno.EEXIST:
                raise kernel_error(f"failed to add route on host: {dst} dev {name}", err)
