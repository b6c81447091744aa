"""CHECK validators: what an ADD result says is really in the container."""

from __future__ import annotations

from pycni.kernel.netlink import AF_INET, AF_INET6, NetlinkError, RtNetlink
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, parse_ip


def validate_expected_ips(ctr_nl: RtNetlink, netns: str, ifname: str, ips) -> None:
    """ip.ValidateExpectedInterfaceIPs: each IP is on `ifname` and has a route
    to its subnet in the main table."""
    for ipc in ips:
        ours = IPNet.parse(ipc.address)
        try:
            link = ctr_nl.link_get(ifname)
            addrs = ctr_nl.addr_list(link.index)
        except NetlinkError:
            raise CNIError(
                errors.ERR_INTERNAL, f"Cannot find container link {ifname} in netns {netns}"
            )
        if not any(_same_addr(a, ours) for a in addrs):
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Failed to match addr {ipc.address} on interface {ifname} in netns {netns}",
            )
        family = AF_INET if ours.family == 4 else AF_INET6
        subnet = ours.network_str
        found = any(
            r.dst is not None and IPNet.parse(r.dst) == IPNet.parse(subnet)
            for r in ctr_nl.route_list(family)
        )
        if not found:
            gw = ipc.gateway or "<nil>"
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Failed to find Gateway {gw} for interface {ifname} in netns {netns} "
                f"(no route to {subnet})",
            )


def _same_addr(a, ours) -> bool:
    try:
        family, value = parse_ip(a.address)
    except ValueError:
        return False
    return (family, value, a.prefixlen) == (ours.family, ours.ip, ours.prefixlen)


def validate_expected_routes(ctr_nl: RtNetlink, netns: str, routes) -> None:
    """ip.ValidateExpectedRoute: each route is in the main table (a default
    route is matched by destination only)."""
    for r in routes:
        dst = IPNet.parse(r.dst)
        family = AF_INET if dst.family == 4 else AF_INET6
        default = dst.prefixlen == 0 and dst.network == 0
        want_gw = None if default or not r.gw else parse_ip(r.gw)
        found = False
        for kr in ctr_nl.route_list(family):
            if default:
                if kr.dst is None:
                    found = True
                    break
                continue
            if kr.dst is None or IPNet.parse(kr.dst) != IPNet(
                dst.family, dst.network, dst.prefixlen
            ):
                continue
            if want_gw is not None:
                gws = [kr.gateway] + [gw for gw, _ in kr.multipath]
                if not any(g and parse_ip(g) == want_gw for g in gws):
                    continue
            found = True
            break
        if not found:
            via = f" via {r.gw}" if r.gw else ""
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Expected Route {r.dst}{via} not found in routing table of netns {netns}",
            )
