"""CHECK validators: what an ADD result says is really in the container.

Also the preamble every interface plugin's CHECK shares: prevResult is
required, this attachment's interface is the one in it named CNI_IFNAME
with CNI_NETNS as its sandbox, and that link exists with its MAC.
"""

from __future__ import annotations

from pycni.kernel.netlink import AF_INET, AF_INET6, NetlinkError, RtNetlink
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, parse_ip

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.link import Link
    from pycni.skel import CmdArgs
    from pycni.spec.result import Interface, Result


def required_prev_result(
    args: CmdArgs, plugin: str = "", code: int = errors.ERR_INTERNAL
) -> Result:
    """prevResult, which CHECK cannot do without: "Required prevResult
    missing" (prefixed "<plugin>: " where the reference's message is)."""
    prev = args.prev_result
    if prev is None:
        prefix = f"{plugin}: " if plugin else ""
        raise CNIError(code, f"{prefix}Required prevResult missing")
    return prev


def prev_interface(prev: Result, ifname: str, netns: str, explain: bool = False) -> Interface:
    """The interface of prevResult named `ifname` with `netns` as its
    sandbox (the last such, as the reference's loop keeps). Without one,
    the reference's message (its empty sandbox is the double space), or with
    `explain` pycni's clearer wording."""
    found = None
    for intf in prev.interfaces:
        if intf.name == ifname and intf.sandbox == netns:
            found = intf
    if found is None:
        if explain:
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Sandbox in prevResult doesn't match configured netns: {netns} "
                f"(prevResult has no interface {ifname!r} in it)",
            )
        raise CNIError(
            errors.ERR_INTERNAL, f"Sandbox in prevResult  doesn't match configured netns: {netns}"
        )
    return found


def check_container_link(ctr_nl: RtNetlink, intf: Interface, kind: str = "") -> Link:
    """The container link `intf` of prevResult exists, is a `kind` link
    (when given) and has the recorded MAC (in any letter case)."""
    link = ctr_nl.link_find(intf.name)
    if link is None:
        raise CNIError(
            errors.ERR_INTERNAL, f"Container Interface name in prevResult: {intf.name} not found"
        )
    if kind and link.kind != kind:
        raise CNIError(
            errors.ERR_INTERNAL, f"Error: Container interface {intf.name} not of type {kind}"
        )
    if intf.mac and intf.mac.lower() != link.mac:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"Interface {intf.name} Mac {intf.mac} doesn't match container Mac: {link.mac}",
        )
    return link


def validate_expected_result(ctr_nl: RtNetlink, netns: str, ifname: str, prev: Result) -> None:
    """prevResult's addresses on `ifname` (each with its subnet route) and its routes."""
    validate_expected_ips(ctr_nl, netns, ifname, prev.ips)
    validate_expected_routes(ctr_nl, netns, prev.routes)


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
