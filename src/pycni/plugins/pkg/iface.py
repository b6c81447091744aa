"""ConfigureIface: put an IPAM result on the container interface."""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel import sysctl
from pycni.kernel.netlink import NetlinkError, RtNetlink
from pycni.kernel.netns import enter
from pycni.plugins.pkg.errors import kernel_error, warn
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import parse_ip
from pycni.spec.result import Result


def configure_iface(ctr_nl: RtNetlink, netns: str, ifname: str, result: Result) -> None:
    """ipam.ConfigureIface, run against a socket inside the container netns.

    Adds the IPs whose `interface` index points at `ifname`, brings the link
    up, waits for IPv6 DAD when an IPv6 gateway exists, then adds the routes
    (NLM_F_CREATE without NLM_F_EXCL, gateway defaulting to the first
    gateway of the route's family; priority, table, scope, mtu and advmss honoured).
    """
    for r in result.routes:  # before anything changes: the error names the key
        problem = r.range_problem()
        if problem:
            raise CNIError(
                errors.ERR_INVALID_NETWORK_CONFIG,
                f"invalid route {r.dst} in the IPAM result: {problem}",
            )
    if not result.interfaces:
        raise CNIError(errors.ERR_INTERNAL, "no interfaces to configure")
    try:
        link = ctr_nl.link_get(ifname)
    except NetlinkError as err:
        raise kernel_error(f"failed to lookup {ifname!r} in netns {netns}", err)
    v4gw = v6gw = None
    ipv6_enabled = False
    for ipc in result.ips:
        if ipc.interface is None:
            continue
        idx = ipc.interface
        if idx < 0 or idx >= len(result.interfaces) or result.interfaces[idx].name != ifname:
            raise CNIError(
                errors.ERR_INTERNAL,
                f"failed to add IP addr {ipc.address} to {ifname!r}: invalid interface index",
            )
        family = parse_ip(ipc.address.partition("/")[0])[0]
        if family == 6 and not ipv6_enabled:
            step("iface.ipv6-enable")
            _enable_ipv6(netns, ifname)
            ipv6_enabled = True
        step("iface.addr-add")
        try:
            ctr_nl.addr_add(link, ipc.address)
        except NetlinkError as err:
            raise kernel_error(
                f"failed to add IP addr {ipc.address} to {ifname!r} in netns {netns}", err
            )
        gw = ipc.gateway
        if gw:
            if ":" in gw:
                v6gw = v6gw or gw
            else:
                v4gw = v4gw or gw
    step("iface.up")
    try:
        ctr_nl.link_set(link, up=True)
    except NetlinkError as err:
        raise kernel_error(f"failed to set {ifname!r} UP in netns {netns}", err)
    if v6gw is not None:
        try:
            ctr_nl.wait_dad(link, 5.0)
        except NetlinkError as err:
            raise kernel_error(
                f"IPv6 duplicate address detection on {ifname} in netns {netns}", err
            )
    for r in result.routes:
        is_v4 = ":" not in r.dst
        gw = r.gw or (v4gw if is_v4 else v6gw)
        kw = {"gateway": gw, "oif": link.index}
        if r.mtu:
            kw["mtu"] = r.mtu
        if r.advmss:
            kw["advmss"] = r.advmss
        if getattr(r, "priority", None):
            kw["priority"] = r.priority
        if getattr(r, "table", None):
            kw["table"] = r.table
        if getattr(r, "scope", None) is not None:
            kw["scope"] = r.scope
        step("iface.route-add")
        try:
            ctr_nl.route_add(r.dst, **kw)
        except NetlinkError as err:
            via = gw or "<nil>"
            raise kernel_error(
                f"failed to add route '{r.dst} via {via} dev {ifname}' in netns {netns}", err
            )


def _enable_ipv6(netns: str, ifname: str) -> None:
    with enter(netns):
        for iface in ("lo", ifname):
            name = f"net/ipv6/conf/{iface}/disable_ipv6"
            try:
                value = sysctl.get(name)
            except OSError as err:
                warn(f"ipam_linux: failed to read sysctl {name!r}: {err}")
                continue
            if value == "0":
                continue
            try:
                sysctl.set(name, "0")
            except OSError as err:
                raise kernel_error(
                    f"failed to enable IPv6 for interface {iface!r} ({name}={value})", err
                )
        try:
            sysctl.set(f"net/ipv6/conf/{ifname}/keep_addr_on_down", "1")
        except OSError:
            pass
