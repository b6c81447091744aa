"""The VRF steps of the vrf plugin, on a netlink socket inside the container netns.

Every function takes the socket (`nl`) as its first argument, so the logic
is unit-tested against a stand-in (this kernel has no VRF support).

Why the addresses and routes are saved: enslaving a link to a VRF cycles
it, which flushes its routes from the main table and, unless
keep_addr_on_down is set, drops its global IPv6 addresses. The reference
re-adds the addresses, waits for their host routes to show up in the VRF
table, then re-adds every saved route into the VRF table; so does this.
"""

from __future__ import annotations

import errno
import time

from pycni.faultpoint import step
from pycni.kernel.netlink import AF_INET6, NetlinkError
from pycni.plugins.pkg.errors import kernel_error, warn
from pycni.plugins.pkg.transaction import Undo
from pycni.plugins.pkg.veth import delete_quietly
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet

RT_SCOPE_UNIVERSE = 0
RTNH_F_ONLINK = 0x4
# the reference's wait for a restored address's route: 10 ms doubling, 9 looks (~2.5 s)
WAIT_BASE_S = 0.010
WAIT_RETRIES = 8
_NO_VRF = (errno.EOPNOTSUPP, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT)


def _fail(msg: str, details: str = "") -> CNIError:
    return CNIError(errors.ERR_INTERNAL, msg, details)


def find_vrf(nl, name: str):
    """The VRF link `name`, or None; an error if `name` is another kind of link."""
    link = nl.link_find(name)
    if link is not None and link.kind != "vrf":
        raise _fail(f"Netlink {name} is not a VRF", f"it is a {link.kind or 'device'} link")
    return link


def vrf_table(vrf) -> int:
    return int(vrf.data.get("table", 0))


def free_table(links) -> int:
    """The smallest table id >= 1 no VRF in the list uses (the reference
    looks at VRFs only, not at other users of routing tables)."""
    taken = {vrf_table(link) for link in links if link.kind == "vrf"}
    table = 1
    while table in taken:
        table += 1
    return table


def create_vrf(nl, name: str, table: int, netns: str, undo: Undo):
    """Create the VRF (in `table`, or a free one) and set it up."""
    if not table:
        table = free_table(nl.link_list())
    step("vrf.add.create")
    try:
        nl.link_add("vrf", name, data={"table": table})
    except NetlinkError as err:
        if err.errno in _NO_VRF or "unknown device type" in (err.ext_msg or "").lower():
            raise _fail(
                f"could not add VRF {name} in netns {netns}: this kernel has no VRF support "
                "(CONFIG_NET_VRF)",
                f"the kernel answered: {err}; load the vrf module or use a kernel built with it",
            )
        raise kernel_error(f"could not add VRF {name} in netns {netns}", err)
    undo.push(f"delete VRF {name}", delete_quietly, nl, name)
    vrf = nl.link_get(name)
    step("vrf.add.up")
    try:
        nl.link_set(vrf, up=True)
    except NetlinkError as err:
        raise kernel_error(f"could not set link up for VRF {name}", err)
    return vrf


def ensure_vrf(nl, name: str, table: int, netns: str, undo: Undo):
    """The existing VRF (its table must match a configured one) or a new one."""
    vrf = find_vrf(nl, name)
    if vrf is None:
        return create_vrf(nl, name, table, netns, undo)
    if table and vrf_table(vrf) != table:
        raise _fail(
            f"VRF {name} already exist with different routing table {vrf_table(vrf)}",
            f"configured table {table}",
        )
    return vrf


def _global_v6(nl, index: int) -> list:
    return [a for a in nl.addr_list(index, AF_INET6) if a.scope == RT_SCOPE_UNIVERSE]


def _movable_routes(nl, index: int) -> list:
    """Main-table routes through the link that are neither local nor connected."""
    return [r for r in nl.route_list() if r.oif == index and r.scope == RT_SCOPE_UNIVERSE]


def _put_route(nl, r, table: int) -> None:
    """`ip route replace` of a listed route into `table`."""
    nl.route_add(
        r.dst,
        family=r.family,
        gateway=r.gateway,
        oif=r.oif,
        table=table,
        priority=r.priority or None,
        scope=r.scope,
        src=r.prefsrc,
        mtu=r.mtu or None,
        advmss=r.advmss or None,
        onlink=bool(r.flags & RTNH_F_ONLINK),
        type=r.type or None,
        protocol=r.protocol,
        replace=True,
    )


def add_interface(nl, vrf, ifname: str, netns: str, undo: Undo) -> None:
    """Enslave `ifname` to `vrf`, keep its IPv6 addresses, move its routes."""
    link = nl.link_find(ifname)
    if link is None:
        raise _fail(f"could not get link by name {ifname} in netns {netns}")
    if link.master:
        try:
            master = nl.link_get(index=link.master).name
        except NetlinkError as err:
            raise _fail(
                f"interface {ifname} has already a master set, could not retrieve the name: {err}"
            )
        raise _fail(f"interface {ifname} has already a master set: {master}")
    addrs = _global_v6(nl, link.index)
    routes = _movable_routes(nl, link.index)
    step("vrf.add.enslave")
    try:
        nl.link_set(link, master=vrf.index)
    except NetlinkError as err:
        raise kernel_error(f"could not set vrf {vrf.name} as master of {ifname}", err)
    undo.push(f"take {ifname} out of VRF {vrf.name}", leave_vrf, nl, link.index, addrs, routes)
    table = vrf_table(vrf)
    after = {(a.address, a.prefixlen) for a in _global_v6(nl, link.index)}
    for a in addrs:
        if (a.address, a.prefixlen) in after:
            continue
        cidr = f"{a.address}/{a.prefixlen}"
        step("vrf.add.restore-addr")
        try:
            nl.addr_add(link, cidr)
        except NetlinkError as err:
            raise kernel_error(f"could not restore address {cidr} to {ifname} @ {vrf.name}", err)
        wait_host_route(nl, link.index, a.address, table, ifname)
    for r in routes:
        step("vrf.add.route")
        try:
            _put_route(nl, r, table)
        except NetlinkError as err:
            raise kernel_error(
                f"could not add route '{r.dst or 'default'} via {r.gateway or '<nil>'} "
                f"dev {ifname}' to table {table}",
                err,
            )


def wait_host_route(nl, index: int, address: str, table: int, ifname: str) -> None:
    """Wait (10 ms doubling, ~2.5 s) for the kernel's route to a restored
    IPv6 address to show up in the VRF table."""
    want = IPNet.parse(f"{address}/128")
    for retry in range(WAIT_RETRIES + 1):
        for r in nl.route_list(0, table):
            if r.oif == index and r.dst is not None and IPNet.parse(r.dst) == want:
                return
        if retry == WAIT_RETRIES:
            break
        time.sleep(WAIT_BASE_S * (1 << retry))
    raise _fail(
        f"failed getting local/host addresses for {ifname} in table {table} with dst {address}/128"
    )


def leave_vrf(nl, index: int, addrs: list, routes: list) -> None:
    """Undo add_interface: no master, the IPv6 addresses and the routes back
    in the main table (each step best effort)."""
    try:
        nl.link_set(index, master=0)
    except NetlinkError as err:
        warn(f"rollback: could not unset the master of link {index}: {err}")
        return
    have = {(a.address, a.prefixlen) for a in _global_v6(nl, index)}
    for a in addrs:
        if (a.address, a.prefixlen) not in have:
            try:
                nl.addr_add(index, f"{a.address}/{a.prefixlen}")
            except NetlinkError:
                pass
    for r in routes:
        try:
            _put_route(nl, r, r.table or 254)
        except NetlinkError:
            pass


def remove_interface(nl, name: str, ifname: str) -> None:
    """DEL: release `ifname` from the VRF, delete the VRF with its last member.

    A missing VRF or interface is success; a link named like the VRF that is
    no VRF is left alone (with a note), and so is an interface whose master
    is something else."""
    vrf = nl.link_find(name)
    if vrf is None:
        return
    if vrf.kind != "vrf":
        warn(f"vrf DEL: {name} is not a VRF (a {vrf.kind or 'device'} link); left alone")
        return
    link = nl.link_find(ifname)
    if link is not None and link.master == vrf.index:
        step("vrf.del.release")
        try:
            nl.link_set(link, master=0)
        except NetlinkError as err:
            raise kernel_error(f"resetMaster: could not reset the master of {ifname}", err)
    if not any(other.master == vrf.index for other in nl.link_list()):
        step("vrf.del.delete")
        try:
            nl.link_del(vrf)
        except NetlinkError as err:
            if err.errno != errno.ENODEV:
                raise kernel_error(f"could not delete VRF {name}", err)


def check_interface(nl, name: str, ifname: str, table: int) -> None:
    vrf = nl.link_find(name)
    if vrf is None:
        raise _fail(f"VRF {name} not found")
    if vrf.kind != "vrf":
        raise _fail(f"Netlink {name} is not a VRF")
    if table and vrf_table(vrf) != table:
        raise _fail(f"VRF {name} has routing table {vrf_table(vrf)}, configured {table}")
    if not any(link.master == vrf.index and link.name == ifname for link in nl.link_list()):
        raise _fail(f"failed to find {ifname} associated to vrf {name}")
