"""The kernel work of sbr, inside the container netns (plugins.md 5.5).

ADD, with a configured `table`, only adds `from <ip>/32|/128 lookup <table>`
per relevant address. Without one it gives each address a table of its own
(the first id >= 100 no rule refers to), a rule to it, a default route via
the address's gateway (a static `gateways` entry of its family wins), and a
copy of every main-table route of the interface whose preferred source or
gateway lies in the address's subnet or that has neither; then the
interface's routes leave the main table (or, with `addSourceHints`, the
subnet routes get the address as source hint and the others leave).

Rollback is by comparison rather than by inverse operations: before the
first change the rules, the tables about to be used and the interface's
main-table routes are read, and a failed ADD puts each back as it was
(rules it added deleted, routes it added deleted, routes it deleted re-added).
"""

from __future__ import annotations

import errno

from pycni.faultpoint import step
from pycni.kernel.netlink import AF_INET, AF_INET6, NetlinkError, RtNetlink
from pycni.kernel.route import RT_SCOPE_LINK, RT_TABLE_MAIN, RTNH_F_ONLINK, Route
from pycni.kernel.rule import Rule
from pycni.plugins.pkg.errors import Failures, annotate, warn
from pycni.spec.errors import ERR_INTERNAL, CNIError
from pycni.spec.ipnet import IPNet

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.pkg.transaction import Undo
    from pycni.spec.result import IPConfig, Result

FIRST_TABLE = 100
_ALREADY_GONE = (errno.ENOENT, errno.ESRCH)


# --- which addresses ---------------------------------------------------------------------


def relevant_ips(prev: Result, ifname: str) -> list[IPConfig]:
    """The prevResult addresses of `ifname`: those without an interface
    index, or whose index names it (an index out of range counts as a match,
    as in the reference)."""
    if not prev.ips:
        raise CNIError(ERR_INTERNAL, f"No IP addresses supplied on interface: {ifname}")
    out = []
    for ipc in prev.ips:
        idx = ipc.interface
        known = idx is not None and 0 <= idx < len(prev.interfaces)
        if known and prev.interfaces[idx].name != ifname:  # type: ignore[index]
            continue
        out.append(ipc)
    return out


def host_cidr(ipc: IPConfig) -> str:
    """The rule's source: the address alone, not its subnet."""
    return f"{ipc.ip}/{32 if ipc.family == 4 else 128}"


def next_free_table(used: set[int], candidate: int) -> int:
    while candidate in used:
        candidate += 1
    return candidate


# --- ADD ---------------------------------------------------------------------------------


def add_rules_to_table(nl: RtNetlink, ips: list[IPConfig], table: int, undo: Undo) -> None:
    """`table` configured: one rule per address, nothing else."""
    srcs = [host_cidr(ipc) for ipc in ips]
    with annotate("failed to list rules"):
        before = nl.rule_list()
    undo.push(f"delete the rules to table {table}", restore_rules, nl, before, srcs, {table})
    for src in srcs:
        step("sbr.add.rule")
        with annotate("failed to add rule from %s lookup %d", src, table):
            nl.rule_add(table=table, src=src)


def add_tables(
    nl: RtNetlink,
    ips: list[IPConfig],
    ifname: str,
    static_gw: dict[int, str | None],
    source_hints: bool,
    undo: Undo,
) -> None:
    """No `table` configured: a table per address, the routes moved there."""
    with annotate("Failed to list all rules"):
        rules = nl.rule_list()
    with annotate("Failed to list all routes"):
        every = nl.route_list(table=0)
    # The reference counts the tables of rules and of main-table routes only.
    used = {r.table for r in rules}
    if any(r.table == RT_TABLE_MAIN for r in every):
        used.add(RT_TABLE_MAIN)
    with annotate("Cannot find network interface %s", ifname):
        link = nl.link_get(ifname)
    routes = [r for r in every if r.table == RT_TABLE_MAIN and r.oif == link.index]

    tables = []
    table = next_free_table(used, FIRST_TABLE)
    for _ in ips:
        tables.append(table)
        table = next_free_table(used, table + 1)

    srcs = [host_cidr(ipc) for ipc in ips]
    undo.push(
        f"restore the main table routes of {ifname}",
        restore_routes,
        nl,
        RT_TABLE_MAIN,
        routes,
        link.index,
    )
    for t in tables:
        undo.push(f"restore table {t}", restore_routes, nl, t, [r for r in every if r.table == t])
    undo.push("delete the rules added", restore_rules, nl, rules, srcs, set(tables))

    for ipc, src, table in zip(ips, srcs, tables):
        step("sbr.add.rule")
        with annotate("Failed to add rule"):
            nl.rule_add(table=table, src=src)
        gateway = static_gw.get(ipc.family) or ipc.gateway
        if gateway:
            step("sbr.add.default-route")
            with annotate("Failed to add default route to %s", gateway):
                nl.route_add(
                    None,
                    gateway=gateway,
                    oif=link.index,
                    table=table,
                    family=_family(ipc),
                    exclusive=True,
                )
        subnet = IPNet.parse(ipc.address)
        for r in routes:
            if (
                _inside(subnet, r.prefsrc)
                or _inside(subnet, r.gateway)
                or not (r.prefsrc or r.gateway)
            ):
                step("sbr.add.copy-route")
                with annotate("Failed to readd route"):
                    put_route(nl, r, table, replace=True, keep_flags=False)

    if source_hints:
        _source_hints(nl, ips, routes, link.index)
        return
    # Deleted only now: several addresses of one subnet all copy its routes.
    for r in routes:
        step("sbr.add.delete-main-route")
        with annotate("Failed to delete route"):
            delete_route(nl, r)


def _source_hints(nl: RtNetlink, ips: list[IPConfig], routes: list[Route], oif: int) -> None:
    """Main keeps `<subnet> dev <if> src <ip> scope link` for each address (so
    traffic without a chosen source still finds its way); the interface's
    other routes leave main. Failures here are only reported, as in the
    reference. IPv6 routes are all of universe scope, so all of them leave."""
    for ipc in ips:
        step("sbr.add.source-hint")
        try:
            nl.route_add(
                IPNet.parse(ipc.address).network_str,
                oif=oif,
                table=RT_TABLE_MAIN,
                src=ipc.ip,
                scope=RT_SCOPE_LINK,
                family=_family(ipc),
                replace=True,
            )
        except NetlinkError as err:
            warn(f"Warning: Failed to add subnet route to main table: {err}")
    for r in routes:
        if r.scope != RT_SCOPE_LINK:
            step("sbr.add.delete-main-route")
            try:
                delete_route(nl, r)
            except NetlinkError as err:
                warn(f"Warning: Failed to delete route: {err}")


def _family(ipc: IPConfig) -> int:
    return AF_INET if ipc.family == 4 else AF_INET6


def _inside(subnet: IPNet, ip: str | None) -> bool:
    return bool(ip) and subnet.contains_ip(ip)  # type: ignore[arg-type]


# --- route and rule primitives -----------------------------------------------------------


def put_route(nl: RtNetlink, r: Route, table: int, *, replace: bool, keep_flags: bool) -> None:
    """Add (or replace) route `r` in `table` with its attributes. The
    reference's copies clear the flags (an onlink route is copied without)."""
    nl.route_add(
        r.dst,
        gateway=r.gateway,
        oif=r.oif or None,
        table=table,
        priority=r.priority or None,
        scope=r.scope,
        src=r.prefsrc,
        mtu=r.mtu or None,
        advmss=r.advmss or None,
        onlink=keep_flags and bool(r.flags & RTNH_F_ONLINK),
        replace=replace,
        family=r.family,
        type=r.type or None,
        protocol=r.protocol or None,
        multipath=r.multipath or None,
    )


def delete_route(nl: RtNetlink, r: Route) -> None:
    """Delete exactly route `r` (as listed) from its table."""
    nl.route_del(
        r.dst,
        gateway=r.gateway,
        oif=r.oif or None,
        table=r.table,
        priority=r.priority or None,
        family=r.family,
        scope=r.scope,
        type=r.type or None,
        src=r.prefsrc,
    )


def delete_rule(nl: RtNetlink, rule: Rule) -> None:
    """Delete exactly `rule` (as listed); already gone is fine."""
    try:
        nl.rule_del(
            family=rule.family,
            table=rule.table,
            priority=rule.priority,
            src=rule.src,
            dst=rule.dst,
            iif=rule.iif or None,
            oif=rule.oif or None,
        )
    except NetlinkError as err:
        if err.errno not in _ALREADY_GONE:
            raise


def _route_key(r: Route) -> tuple:
    return (
        r.family,
        r.table,
        r.dst,
        r.gateway,
        r.prefsrc,
        r.oif,
        r.priority,
        r.tos,
        r.scope,
        r.protocol,
        r.type,
        r.mtu,
        r.advmss,
        tuple(r.multipath),
    )


def _rule_key(r: Rule) -> tuple:
    return (r.family, r.priority, r.src, r.dst, r.iif, r.oif, r.table, r.fwmark, r.action)


# --- rollback ----------------------------------------------------------------------------


def restore_rules(nl: RtNetlink, before: list[Rule], srcs: list[str], tables: set[int]) -> None:
    """Delete the rules from `srcs` to `tables` that were not there `before`."""
    known = {_rule_key(r) for r in before}
    for rule in nl.rule_list():
        if rule.src in srcs and rule.table in tables and _rule_key(rule) not in known:
            delete_rule(nl, rule)


def restore_routes(nl: RtNetlink, table: int, before: list[Route], oif: int | None = None) -> None:
    """Put `table` back as it was `before` (only its routes via `oif` if
    given, else the whole table).

    Routes not there before are deleted; routes gone are re-added in their
    listed order, repeating while that makes progress, since a gateway route
    needs its subnet route back first."""
    now = [r for r in nl.route_list(table=table) if oif is None or r.oif == oif]
    want = {_route_key(r) for r in before}
    have = {_route_key(r) for r in now}
    for r in now:
        if _route_key(r) not in want:
            try:
                delete_route(nl, r)
            except NetlinkError as err:
                if err.errno not in _ALREADY_GONE:
                    raise
    pending = [r for r in before if _route_key(r) not in have]
    while pending:
        failed: list[tuple[Route, NetlinkError]] = []
        for r in pending:
            try:
                put_route(nl, r, r.table, replace=False, keep_flags=True)
            except NetlinkError as err:
                if err.errno != errno.EEXIST:
                    failed.append((r, err))
        if len(failed) == len(pending):
            raise failed[0][1]
        pending = [r for r, _ in failed]


# --- DEL ---------------------------------------------------------------------------------


def tidy_rules(nl: RtNetlink, ifname: str, table: int | None) -> None:
    """Delete every rule (to `table` if given) whose source is an address
    that `ifname` has now; nothing to do when the interface is gone."""
    with annotate("Failed to list all rules to tidy"):
        rules = nl.rule_list()
    link = nl.link_find(ifname)
    if link is None:
        return
    with annotate("Failed to list all addrs"):
        addrs = {a.address for a in nl.addr_list(link.index)}
    failures = Failures()
    for rule in rules:
        if rule.src is None or (table is not None and rule.table != table):
            continue
        if rule.src.partition("/")[0] in addrs:
            step("sbr.del.rule")
            failures.attempt(
                delete_rule,
                nl,
                rule,
                what=f"Failed to delete rule from {rule.src} lookup {rule.table}",
            )
    failures.raise_if_any()
