"""Pieces shared by the interface-creating plugins (bridge, ptp, ...).

The reference keeps these in `pkg/ip`, `pkg/ipam` and `pkg/ns`: opening a
container netns, creating a veth pair across namespaces, ConfigureIface,
the CHECK validators and an undo stack that makes an ADD
all or nothing.

Kernel work goes through pycni.kernel.netlink.RtNetlink; a socket opened
inside the container netns does the container-side work, so the plugin's
thread only switches namespaces for sysctl writes.
"""

from __future__ import annotations

import os
import sys

from pycni.faultpoint import step
from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from pycni.kernel.netlink import RtNetlink
    from pycni.spec.result import Result

# --- errors ---


def kernel_error(what: str, err: BaseException, code: int = errors.ERR_INTERNAL) -> CNIError:
    """A CNIError for a failed kernel step: "<what>: <reason>"."""
    if isinstance(err, CNIError):
        return err
    text = str(err)
    ext = getattr(err, "ext_msg", "")
    if ext and ext not in text:
        text = f"{text} ({ext})"
    return CNIError(code, f"{what}: {text}")


def warn(msg: str) -> None:
    """A note on stderr (the runtime logs it); never fails the operation."""
    try:
        sys.stderr.write(msg.rstrip("\n") + "\n")
    except OSError:
        pass


# --- undo stack ---


class Rollback:
    """Undo steps of an ADD in reverse order when it fails.

    push() registers a step once its effect exists; run() executes them all
    (each failure is reported on stderr, the rest still run); commit() drops
    them when the ADD succeeded.
    """

    __slots__ = ("_steps",)

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable, tuple]] = []

    def push(self, what: str, fn: Callable, *args) -> None:
        self._steps.append((what, fn, args))

    def commit(self) -> None:
        self._steps.clear()

    def run(self) -> None:
        while self._steps:
            what, fn, args = self._steps.pop()
            try:
                fn(*args)
            except BaseException as err:  # keep undoing the rest
                warn(f"rollback: {what} failed: {err}")


# --- namespaces ---


def open_netlink(netns: str | None = None) -> RtNetlink:
    """An rtnetlink socket, inside `netns` when given.

    A missing or invalid netns becomes CNIError code 8 naming the path;
    NetnsNotFound is kept reachable as the error's __cause__ for DEL.
    """
    from pycni.kernel.netlink import RtNetlink

    if netns is None:
        return RtNetlink()
    from pycni.kernel.netns import NetnsNotFound, NotANetns

    try:
        return RtNetlink(netns=netns)
    except NetnsNotFound as err:
        raise NetnsGone(netns) from err
    except NotANetns:
        raise CNIError(errors.ERR_INVALID_NETNS, f"{netns} is not a network namespace")
    except OSError as err:  # the path once, and the OS's reason without [Errno N]
        raise CNIError(
            errors.ERR_INVALID_NETNS, f"failed to open netns {netns}: {err.strerror or err}"
        )


class NetnsGone(CNIError):
    """The container netns path does not exist (DEL treats this as success)."""

    def __init__(self, netns: str) -> None:
        super().__init__(
            errors.ERR_INVALID_NETNS, f"failed to open netns {netns!r}: netns path does not exist"
        )
        self.netns = netns


# --- veth pairs ---


def random_veth_name() -> str:
    """ "veth" + 8 lowercase hex chars (NetworkManager ignores veth*)."""
    return "veth" + os.urandom(4).hex()


def setup_veth(
    ct: RtNetlink,
    host: RtNetlink,
    netns: str,
    ifname: str,
    mtu: int = 0,
    mac: str | None = None,
    host_name: str | None = None,
):
    """ip.SetupVeth: from inside the container netns, one RTM_NEWLINK creates
    `ifname` there and its peer directly in the host netns (the calling
    thread's). The host end is set up with accept_ra=0; the container end is
    left down. Returns (host Link, container Link).
    """
    import errno

    from pycni.kernel.netlink import NetlinkError

    host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for _ in range(10):
            peer = host_name or random_veth_name()
            step("veth.create")
            try:
                ct.link_add_veth(ifname, peer, peer_netns=host_fd, mtu=mtu, mac=mac)
            except NetlinkError as err:
                if err.errno != errno.EEXIST:
                    raise kernel_error(
                        f"failed to create veth pair {ifname} (in netns {netns}) / {peer}", err
                    )
                if ct.link_find(ifname) is not None:
                    raise CNIError(
                        errors.ERR_INTERNAL, f"interface {ifname} already exists in netns {netns}"
                    )
                if host_name is None and host.link_find(peer) is not None:
                    continue
                raise CNIError(
                    errors.ERR_INTERNAL,
                    f"container veth name ({ifname!r}) peer provided ({peer!r}) already exists",
                )
            break
        else:
            raise CNIError(errors.ERR_INTERNAL, "failed to find a unique veth name")
    finally:
        os.close(host_fd)
    try:
        cont = ct.link_get(ifname)
        hveth = host.link_get(peer)
    except NetlinkError as err:
        _delete_quietly(ct, ifname)
        raise kernel_error(f"failed to look up veth pair {ifname}/{peer}", err)
    step("veth.host-up")
    try:
        host.link_set(hveth, up=True)
    except NetlinkError as err:
        _delete_quietly(ct, ifname)
        raise kernel_error(f"failed to set {peer} up", err)
    step("veth.host-accept-ra")
    _sysctl_quiet(f"net/ipv6/conf/{peer}/accept_ra", "0")
    return hveth, cont


def _delete_quietly(rt: RtNetlink, name: str) -> None:
    try:
        rt.link_del(name)
    except OSError:
        pass


def _sysctl_quiet(name: str, value: str) -> None:
    from pycni.kernel import sysctl

    try:
        sysctl.set(name, value)
    except OSError:
        pass


def del_link_by_name_addr(rt: RtNetlink, ifname: str) -> list[str] | None:
    """ip.DelLinkByNameAddr: delete `ifname`, return its global unicast
    addresses as "ip/prefix"; None when the link does not exist."""
    from pycni.kernel.netlink import LinkNotFound

    link = rt.link_find(ifname)
    if link is None:
        return None
    addrs = rt.addr_list(link.index)
    try:
        rt.link_del(link)
    except LinkNotFound:
        return None
    return [f"{a.address}/{a.prefixlen}" for a in addrs if is_global_unicast(a.address)]


def is_global_unicast(ip: str) -> bool:
    """Go's net.IP.IsGlobalUnicast."""
    from pycni.spec.ipnet import parse_ip

    family, v = parse_ip(ip)
    if family == 4:
        return not (
            v == 0xFFFFFFFF or v == 0 or v >> 24 == 127 or v >> 28 == 0xE or v >> 16 == 0xA9FE
        )
    return not (v == 0 or v == 1 or v >> 120 == 0xFF or v >> 118 == 0x3FA)


# --- sysctls in the container ---


def container_sysctls(netns: str, writes: list[tuple[str, str]], strict: bool = False) -> None:
    """Write sysctls inside `netns` in one namespace switch.

    Failures are ignored (the reference ignores them) unless `strict`.
    """
    from pycni.kernel import sysctl
    from pycni.kernel.netns import enter

    with enter(netns):
        for name, value in writes:
            try:
                sysctl.set(name, value)
            except OSError as err:
                if strict:
                    raise kernel_error(f"failed to set sysctl {name}={value} in netns {netns}", err)


# --- ConfigureIface ---


def configure_iface(ct: RtNetlink, netns: str, ifname: str, result: Result) -> None:
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
    from pycni.kernel.netlink import NetlinkError
    from pycni.spec.ipnet import parse_ip

    if not result.interfaces:
        raise CNIError(errors.ERR_INTERNAL, "no interfaces to configure")
    try:
        link = ct.link_get(ifname)
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
            ct.addr_add(link, ipc.address)
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
        ct.link_set(link, up=True)
    except NetlinkError as err:
        raise kernel_error(f"failed to set {ifname!r} UP in netns {netns}", err)
    if v6gw is not None:
        try:
            ct.wait_dad(link, 5.0)
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
            ct.route_add(r.dst, **kw)
        except NetlinkError as err:
            via = gw or "<nil>"
            raise kernel_error(
                f"failed to add route '{r.dst} via {via} dev {ifname}' in netns {netns}", err
            )


def _enable_ipv6(netns: str, ifname: str) -> None:
    from pycni.kernel import sysctl
    from pycni.kernel.netns import enter

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


# --- CHECK validators ---


def validate_expected_ips(ct: RtNetlink, netns: str, ifname: str, ips) -> None:
    """ip.ValidateExpectedInterfaceIPs: each IP is on `ifname` and has a route
    to its subnet in the main table."""
    from pycni.kernel.netlink import AF_INET, AF_INET6, NetlinkError
    from pycni.spec.ipnet import IPNet

    for ipc in ips:
        ours = IPNet.parse(ipc.address)
        try:
            link = ct.link_get(ifname)
            addrs = ct.addr_list(link.index)
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
            for r in ct.route_list(family)
        )
        if not found:
            gw = ipc.gateway or "<nil>"
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Failed to find Gateway {gw} for interface {ifname} in netns {netns} "
                f"(no route to {subnet})",
            )


def _same_addr(a, ours) -> bool:
    from pycni.spec.ipnet import parse_ip

    try:
        family, value = parse_ip(a.address)
    except ValueError:
        return False
    return (family, value, a.prefixlen) == (ours.family, ours.ip, ours.prefixlen)


def validate_expected_routes(ct: RtNetlink, netns: str, routes) -> None:
    """ip.ValidateExpectedRoute: each route is in the main table (a default
    route is matched by destination only)."""
    from pycni.kernel.netlink import AF_INET, AF_INET6
    from pycni.spec.ipnet import IPNet, parse_ip

    for r in routes:
        dst = IPNet.parse(r.dst)
        family = AF_INET if dst.family == 4 else AF_INET6
        default = dst.prefixlen == 0 and dst.network == 0
        want_gw = None if default or not r.gw else parse_ip(r.gw)
        found = False
        for kr in ct.route_list(family):
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
