"""Links stacked on a parent ("master") interface: macvlan, ipvlan, vlan.

The three reference plugins share one story (plugins.md 3.3-3.5): find the
master (by default the interface of the first default route, in the host
netns or, with `linkInContainer`, in the container's), check the MTU
against it, create the link under a temporary `veth<8hex>` name directly in
the container netns (a host name may collide otherwise), rename it to
CNI_IFNAME there, then configure it from IPAM. Here that story is written
once; the plugins only say which kind and which IFLA_INFO_DATA.

Beyond the reference: a missing or unusable master is a config error
(code 7) naming the key and value, a kernel without the link kind is an
error naming the missing kernel option instead of an errno, and every
failure after the link exists deletes it again (the reference's macvlan
leaves it behind when IPAM fails).
"""

from __future__ import annotations

import errno
import os

from pycni.faultpoint import step
from pycni.kernel.link import IFF_LOOPBACK, Link
from pycni.kernel.netlink import LinkNotFound, NetlinkError, RtNetlink
from pycni.plugins.pkg.check import (
    check_container_link,
    prev_interface,
    required_prev_result,
    validate_expected_ips,
    validate_expected_routes,
)
from pycni.plugins.pkg.ctrlink import delete_container_link, delete_if_present
from pycni.plugins.pkg.errors import Failures, kernel_error
from pycni.plugins.pkg.iface import configure_iface
from pycni.plugins.pkg.ipam import (
    add_and_configure,
    ipam_check,
    ipam_del,
    ipam_gc,
    ipam_status,
    point_ips_at_link,
)
from pycni.plugins.pkg.netconf import NetConf, invalid
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.sysctl import container_sysctls
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import get_bool, get_int, get_str
from pycni.spec.result import DNS, Interface, Result
from pycni.spec.validate import config_interface_name_problem

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from pycni.skel import CmdArgs

#: the kernel option each link kind needs (named when the kernel lacks it)
KERNEL_OPTION = {
    "macvlan": "CONFIG_MACVLAN",
    "ipvlan": "CONFIG_IPVLAN",
    "vlan": "CONFIG_VLAN_8021Q",
}
ARPHRD_ETHER = 1
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTSUP)


class SubLinkConf(NetConf):
    """The keys the three plugins share: master, mtu, linkInContainer."""

    __slots__ = ("link_in_container", "master", "mtu")

    master: str
    mtu: int
    link_in_container: bool

    def __init__(self, conf: dict) -> None:
        super().__init__(conf)
        self.master = get_str(conf, "master")
        self.mtu = get_int(conf, "mtu")
        self.link_in_container = get_bool(conf, "linkInContainer")
        if self.master:
            problem = config_interface_name_problem(self.master)
            if problem:
                raise invalid(f'invalid "master" {self.master!r}: {problem}')


def random_tmp_name() -> str:
    """ "veth" + 8 lowercase hex chars, the reference's temporary name."""
    return "veth" + os.urandom(4).hex()


# --- the master -----------------------------------------------------------------------


def default_route_interface(nl: RtNetlink, where: str) -> str:
    """The interface of the first default route of the main table (IPv4
    before IPv6, the kernel's dump order), as getDefaultRouteInterfaceName."""
    for r in nl.route_list(0):
        if r.dst is None and r.oif:
            try:
                return nl.link_get(index=r.oif).name
            except LinkNotFound:
                continue
    raise invalid(
        f'no "master" given and no default route interface found in {where} '
        '(set "master" to the parent interface\'s name)'
    )


def master_netlink(conf: SubLinkConf, host_nl: RtNetlink, ctr_nl: RtNetlink) -> RtNetlink:
    """The socket of the netns the master lives in."""
    return ctr_nl if conf.link_in_container else host_nl


def _where(conf: SubLinkConf, netns: str) -> str:
    return f"the container netns {netns}" if conf.link_in_container else "the host netns"


def resolve_master(conf: SubLinkConf, netns: str, nl: RtNetlink, kind: str) -> Link:
    """Find (or default) the master in `nl`'s netns, check it can carry a
    `kind` link and that `conf.mtu` fits under its MTU. Sets conf.master.

    Every failure is code 7 naming "master" or "mtu" and the value."""
    where = _where(conf, netns)
    if not conf.master:
        conf.master = default_route_interface(nl, where)
    try:
        master = nl.link_get(conf.master)
    except LinkNotFound:
        raise invalid(
            f'invalid "master" {conf.master!r}: failed to lookup master {conf.master!r}: '
            f"no such interface in {where}"
        )
    except NetlinkError as err:
        raise kernel_error(f"failed to lookup master {conf.master!r} in {where}", err)
    problem = unusable_parent(master, kind)
    if problem:
        raise invalid(f'invalid "master" {conf.master!r}: {problem}')
    if conf.mtu < 0 or conf.mtu > master.mtu:
        raise invalid(f'invalid "mtu" {conf.mtu}: must be [0, master MTU({master.mtu})]')
    return master


def unusable_parent(master: Link, kind: str) -> str:
    """Why `master` cannot be the parent of a `kind` link ("" when it can):
    the kernel wants an Ethernet device that is not a loopback."""
    if master.flags & IFF_LOOPBACK:
        return f"a loopback interface cannot be the parent of a {kind} link"
    if master.type != ARPHRD_ETHER:
        return (
            f"{master.name} is not an Ethernet device (link type {master.type}) "
            f"and cannot be the parent of a {kind} link"
        )
    return ""


# --- creation -------------------------------------------------------------------------


def create(
    kind: str,
    data: dict | bytes,
    conf: SubLinkConf,
    master: Link,
    netns: str,
    ifname: str,
    host_nl: RtNetlink,
    ctr_nl: RtNetlink,
    undo: Undo,
    mac: str = "",
) -> Link:
    """Create the `kind` link on `master` as a temporary name directly in
    the container netns, rename it to `ifname`, and return it (re-read,
    for its MAC). Its deletion is pushed on `undo` as soon as it exists."""
    tmp = random_tmp_name()
    nl = master_netlink(conf, host_nl, ctr_nl)
    step(f"{kind}.add.create")
    try:
        nl.link_add(
            kind,
            tmp,
            parent=master.index,
            netns=netns,
            mtu=conf.mtu,
            mac=mac or None,
            data=data,
        )
    except NetlinkError as err:
        raise creation_error(kind, conf.master, err)
    undo.push(f"delete {kind} {tmp} in netns {netns}", delete_if_present, ctr_nl, tmp)
    step(f"{kind}.add.rename")
    try:
        ctr_nl.link_set(ctr_nl.link_get(tmp), name=ifname)
    except NetlinkError as err:
        if err.errno == errno.EEXIST:
            raise CNIError(
                errors.ERR_INTERNAL,
                f"failed to rename {kind} to {ifname!r}: an interface {ifname!r} "
                f"already exists in netns {netns}",
            )
        raise kernel_error(f"failed to rename {kind} to {ifname!r} in netns {netns}", err)
    # undo steps run in order: one of the two names is always gone
    undo.push(f"delete {kind} {ifname} in netns {netns}", delete_if_present, ctr_nl, ifname)
    try:
        return ctr_nl.link_get(ifname)
    except NetlinkError as err:
        raise kernel_error(f"failed to refetch {kind} {ifname!r} in netns {netns}", err)


def creation_error(kind: str, master: str, err: NetlinkError) -> CNIError:
    """The kernel's refusal worded for the user: a missing link kind names
    the kernel option, a refused MAC or parent says which."""
    if err.errno in _UNSUPPORTED:
        option = KERNEL_OPTION.get(kind, kind)
        return CNIError(
            errors.ERR_INTERNAL,
            f"failed to create {kind}: this kernel has no {kind} support ({option})",
            f"{err} ({err.ext_msg})" if err.ext_msg else str(err),
        )
    if err.errno == errno.EADDRNOTAVAIL:
        return CNIError(
            errors.ERR_INVALID_NETWORK_CONFIG,
            f"failed to create {kind}: the kernel refused the MAC address ({err.strerror})",
        )
    if err.errno == errno.EINVAL and not err.ext_msg:
        return CNIError(
            errors.ERR_INTERNAL,
            f"failed to create {kind} on {master!r}: the kernel refused it "
            f"({err.strerror}); is {master!r} a usable parent for {kind}?",
        )
    return kernel_error(f"failed to create {kind}", err)


def container_interface(link: Link, ifname: str, netns: str) -> Interface:
    return Interface(ifname, link.mac, netns)


def notify_sysctls(ifname: str) -> list[tuple[str, str]]:
    """Gratuitous ARP and unsolicited NA when the address comes up (best effort)."""
    return [
        (f"net/ipv4/conf/{ifname}/arp_notify", "1"),
        (f"net/ipv6/conf/{ifname}/ndisc_notify", "1"),
    ]


# --- DEL ------------------------------------------------------------------------------


def delete(kind: str, netns: str, ifname: str) -> None:
    """DEL's link removal: nothing to do without a netns, with the netns gone
    or with the interface gone; repeatable."""
    delete_container_link(netns, ifname, f"{kind}.del.delete", open_netlink)


# --- CHECK ----------------------------------------------------------------------------


def check_master_exists(conf: SubLinkConf, netns: str, nl: RtNetlink) -> None:
    if nl.link_find(conf.master) is None:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"failed to lookup master {conf.master!r}: no such interface in {_where(conf, netns)}",
        )


# --- the verbs' common story ----------------------------------------------------------


def add(
    args: CmdArgs,
    conf: SubLinkConf,
    kind: str,
    data: dict | bytes,
    mac: str = "",
    chained: Result | None = None,
    notify: bool = True,
) -> Result:
    """ADD of a stacked link, all or nothing: resolve the master, create the
    link as `args.ifname` in the container, then give it addresses from IPAM
    (`conf.ipam_type`), from `chained` (a prevResult's IPs and routes,
    ipvlan's chained mode), or none (L2: the link is just set up). DNS is
    the config's. `notify` sets arp_notify/ndisc_notify before addressing."""
    host_nl = open_netlink()
    ctr_nl = None
    try:
        master = None
        if not conf.link_in_container:  # the reference looks at the master first
            master = resolve_master(conf, args.netns, host_nl, kind)
        ctr_nl = open_netlink(args.netns)
        if master is None:
            master = resolve_master(conf, args.netns, ctr_nl, kind)
        with add_transaction(f"{kind} ADD") as undo:
            link = create(
                kind, data, conf, master, args.netns, args.ifname, host_nl, ctr_nl, undo, mac
            )
            result = Result(interfaces=[container_interface(link, args.ifname, args.netns)])
            if chained is not None or conf.is_layer3:
                _address(args, conf, kind, ctr_nl, result, undo, chained, notify)
            else:
                step(f"{kind}.add.up")
                try:
                    ctr_nl.link_set(link, up=True)
                except NetlinkError as err:
                    raise kernel_error(f"failed to set {args.ifname!r} UP", err)
            result.dns = conf.dns.copy() if conf.dns is not None else DNS()
            return result
    finally:
        host_nl.close()
        if ctr_nl is not None:
            ctr_nl.close()


def _address(
    args: CmdArgs,
    conf: SubLinkConf,
    kind: str,
    ctr_nl: RtNetlink,
    result: Result,
    undo: Undo,
    chained: Result | None,
    notify: bool,
) -> None:
    def prepare(result: Result) -> None:
        point_ips_at_link(result)
        if notify:
            step(f"{kind}.add.notify-sysctls")
            container_sysctls(args.netns, notify_sysctls(args.ifname))

    if chained is not None:
        result.ips = [ipc.copy() for ipc in chained.ips]
        result.routes = [r.copy() for r in chained.routes]
        prepare(result)
        configure_iface(ctr_nl, args.netns, args.ifname, result)
        return
    add_and_configure(args, conf.ipam_type, result, ctr_nl, undo, before_configure=prepare)


def delete_verb(args: CmdArgs, conf: SubLinkConf, kind: str) -> None:
    """DEL: IPAM DEL when configured, then the link; both run whatever the
    other did, and a missing netns, link or prevResult is success."""
    failures = Failures()
    if conf.is_layer3:
        failures.attempt(ipam_del, conf.ipam_type, args.stdin_data)
    failures.attempt(delete, kind, args.netns, args.ifname)
    failures.raise_if_any()


def check_verb(
    args: CmdArgs, conf: SubLinkConf, kind: str, validate: Callable[[Link], None]
) -> None:
    """CHECK: IPAM CHECK when configured, then prevResult against the
    container: the interface (kind, MAC, and `validate(link)`), the master,
    the addresses and the routes. A kernel failure is "<kind> CHECK failed"."""
    try:
        ctr_nl = open_netlink(args.netns)
        try:
            if conf.is_layer3:
                ipam_check(conf.ipam_type, args.stdin_data)
            prev = required_prev_result(args)
            intf = prev_interface(prev, args.ifname, args.netns, explain=True)
            if conf.master:
                if conf.link_in_container:
                    check_master_exists(conf, args.netns, ctr_nl)
                else:
                    with open_netlink() as host_nl:
                        check_master_exists(conf, args.netns, host_nl)
            validate(check_container_link(ctr_nl, intf, kind))
            validate_expected_ips(ctr_nl, args.netns, args.ifname, prev.ips)
            validate_expected_routes(ctr_nl, args.netns, prev.routes)
        finally:
            ctr_nl.close()
    except OSError as err:
        raise kernel_error(f"{kind} CHECK failed", err)


def expect_data(link: Link, key: str, want: object, what: str, default: object = None) -> None:
    """CHECK of one IFLA_INFO_DATA value of the container link against the
    config: "Container <what> <value> does not match expected value: <want>"."""
    have = link.data.get(key, default)
    if have != want:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"Container {what} {have} does not match expected value: {want}",
        )


def status_verb(args: CmdArgs, conf: SubLinkConf) -> None:
    """STATUS: the IPAM plugin's, when one is configured."""
    if conf.is_layer3:
        ipam_status(conf.ipam_type, args.stdin_data)


def gc_verb(args: CmdArgs, conf: SubLinkConf) -> None:
    """GC: forwarded to the IPAM plugin (the link goes with its netns)."""
    if conf.is_layer3:
        ipam_gc(conf.ipam_type, args.stdin_data)
