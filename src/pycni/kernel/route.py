"""Routes: list (main table by default, like the reference), add, replace, delete, get."""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nl

RTA_DST = 1
RTA_SRC = 2
RTA_IIF = 3
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_METRICS = 8
RTA_MULTIPATH = 9
RTA_TABLE = 15
RTA_VIA = 18

RTAX_MTU = 2
RTAX_ADVMSS = 8

RTN_UNSPEC = 0
RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTN_ANYCAST = 4
RTN_MULTICAST = 5
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8
RTN_THROW = 9
TYPES = {
    "unicast": RTN_UNICAST,
    "local": RTN_LOCAL,
    "broadcast": RTN_BROADCAST,
    "anycast": RTN_ANYCAST,
    "multicast": RTN_MULTICAST,
    "blackhole": RTN_BLACKHOLE,
    "unreachable": RTN_UNREACHABLE,
    "prohibit": RTN_PROHIBIT,
    "throw": RTN_THROW,
}

RTPROT_UNSPEC = 0
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255

RT_TABLE_UNSPEC = 0
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255

RTM_F_CLONED = 0x200
RTNH_F_ONLINK = 0x4

_RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table protocol scope type flags
_RTNH = struct.Struct("=HBBi")  # len, flags, hops, ifindex
_DEFAULTS = ("default", "0.0.0.0/0", "::/0")


class Route:
    """One route as the kernel reports it; dst/src are CIDR strings (dst None = default)."""

    __slots__ = (
        "advmss",
        "dst",
        "family",
        "flags",
        "gateway",
        "iif",
        "mtu",
        "multipath",
        "oif",
        "prefsrc",
        "priority",
        "protocol",
        "scope",
        "src",
        "table",
        "tos",
        "type",
    )

    advmss: int
    dst: str | None
    family: int
    flags: int
    gateway: str | None
    iif: int
    mtu: int
    multipath: list[tuple[str | None, int]]
    oif: int
    prefsrc: str | None
    priority: int
    protocol: int
    scope: int
    src: str | None
    table: int
    tos: int
    type: int

    def __init__(self) -> None:
        self.family = 0
        self.dst = None
        self.src = None
        self.gateway = None
        self.prefsrc = None
        self.oif = 0
        self.iif = 0
        self.table = 0
        self.priority = 0
        self.scope = 0
        self.protocol = 0
        self.type = 0
        self.flags = 0
        self.tos = 0
        self.mtu = 0
        self.advmss = 0
        self.multipath = []

    @property
    def is_default(self) -> bool:
        return self.dst is None

    def __repr__(self) -> str:
        return (
            f"Route(dst={self.dst or 'default'}, gateway={self.gateway}, oif={self.oif}, "
            f"table={self.table}, priority={self.priority})"
        )

    @classmethod
    def from_payload(cls, body) -> Route:
        self = cls()
        (
            fam,
            dst_len,
            src_len,
            self.tos,
            table,
            self.protocol,
            self.scope,
            self.type,
            self.flags,
        ) = _RTMSG.unpack_from(body)
        self.family = fam
        self.table = table
        dst: str | None = None
        src: str | None = None
        for t, v in nl.iter_attrs(body, _RTMSG.size):
            if t == RTA_DST:
                dst = nl.ip_unpack(fam, v)
            elif t == RTA_SRC:
                src = nl.ip_unpack(fam, v)
            elif t == RTA_GATEWAY:
                self.gateway = nl.ip_unpack(fam, v)
            elif t == RTA_VIA and len(v) > 2:
                vfam = nl.get_u16(v)
                self.gateway = nl.ip_unpack(vfam, v[2:])
            elif t == RTA_OIF:
                self.oif = nl.get_u32(v)
            elif t == RTA_IIF:
                self.iif = nl.get_u32(v)
            elif t == RTA_PRIORITY:
                self.priority = nl.get_u32(v)
            elif t == RTA_PREFSRC:
                self.prefsrc = nl.ip_unpack(fam, v)
            elif t == RTA_TABLE:
                self.table = nl.get_u32(v)
            elif t == RTA_METRICS:
                for mt, mv in nl.iter_attrs(v):
                    if mt == RTAX_MTU:
                        self.mtu = nl.get_u32(mv)
                    elif mt == RTAX_ADVMSS:
                        self.advmss = nl.get_u32(mv)
            elif t == RTA_MULTIPATH:
                self.multipath = _parse_multipath(fam, v)
        if dst_len:
            self.dst = f"{dst or _zero(fam)}/{dst_len}"
        if src_len:
            self.src = f"{src or _zero(fam)}/{src_len}"
        return self


def _zero(fam: int) -> str:
    return "::" if fam == nl.AF_INET6 else "0.0.0.0"


def _parse_multipath(fam: int, mv) -> list[tuple[str | None, int]]:
    out = []
    off = 0
    while off + 8 <= len(mv):
        ln, _flags, _hops, ifindex = _RTNH.unpack_from(mv, off)
        if ln < 8:
            break
        gw = None
        for t, v in nl.iter_attrs(mv, off + 8, off + ln):
            if t == RTA_GATEWAY:
                gw = nl.ip_unpack(fam, v)
            elif t == RTA_VIA and len(v) > 2:
                gw = nl.ip_unpack(nl.get_u16(v), v[2:])
        out.append((gw, ifindex))
        off += (ln + 3) & ~3
    return out


def _enum(table: dict, value, what: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return table[str(value).lower()]
    except KeyError:
        raise ValueError(f"unknown route {what}: {value!r}")


def _gateway_attr(route_family: int, gw: str) -> bytes:
    gfam, raw = nl.ip_pack(gw)
    if gfam == route_family:
        return nl.nla(RTA_GATEWAY, raw)
    return nl.nla(RTA_VIA, struct.pack("=H", gfam) + raw)


def _dst(dst, family, gateway, multipath=None) -> tuple[int, bytes | None, int]:
    """-> (family, dst bytes or None for default, prefixlen)."""
    if dst is not None and str(dst) not in _DEFAULTS:
        fam, raw, plen = nl.parse_cidr(str(dst), mask=True)
        if family and family != fam:
            raise ValueError(f"route {dst}: family mismatch")
        return fam, raw, plen
    fam = family or 0
    if not fam and dst in ("0.0.0.0/0", "::/0"):
        fam = nl.ip_family(dst)
    if not fam and gateway:
        fam = nl.ip_family(gateway)
    if not fam and multipath:
        fam = nl.ip_family(multipath[0][0])
    if not fam:
        raise ValueError("default route needs a gateway or a family")
    return fam, None, 0


def _selector(fam, raw, plen, table, gateway, oif, priority, proto, scope, rtype, flags) -> list:
    """The rtmsg header and the attributes that pick a route, which add and
    delete share: table, dst (raw None: default), gateway, oif, priority."""
    parts = [
        _RTMSG.pack(fam, plen, 0, 0, table if table < 256 else 0, proto, scope, rtype, flags),
        nl.nla_u32(RTA_TABLE, table),
    ]
    if raw is not None:
        parts.append(nl.nla(RTA_DST, raw))
    if gateway:
        parts.append(_gateway_attr(fam, gateway))
    if oif:
        parts.append(nl.nla_u32(RTA_OIF, nl.index_of(oif)))
    if priority is not None:
        parts.append(nl.nla_u32(RTA_PRIORITY, priority))
    return parts


def _label(dst, raw, gateway) -> str:
    """'default via 198.18.0.1', '198.18.1.0/24' ... for error messages."""
    via = f" via {gateway}" if gateway else ""
    return f"{'default' if raw is None else dst}{via}"


def route_add(
    sock,
    dst,
    *,
    gateway: str | None = None,
    oif: int | None = None,
    table: int | None = None,
    priority: int | None = None,
    scope=None,
    src: str | None = None,
    mtu: int | None = None,
    advmss: int | None = None,
    onlink: bool = False,
    replace: bool = False,
    exclusive: bool = False,
    family: int | None = None,
    type=None,
    protocol: int | None = None,
    multipath=None,
) -> None:
    """Add a route (RTM_NEWROUTE).

    dst "0.0.0.0/0", "::/0", "default" or None is the default route (then the
    family comes from `family` or `gateway`); host bits of dst are cleared.
    Flags are NLM_F_CREATE only, as in the reference ConfigureIface: a route to
    the same destination via another gateway is accepted (IPv4 keeps a second
    entry, IPv6 merges into a multipath route) while an identical route is
    EEXIST.  exclusive=True adds NLM_F_EXCL, replace=True NLM_F_REPLACE.
    `src` is the preferred source (RTA_PREFSRC, iproute2's "src").  Scope
    defaults to universe (host for type "local"), protocol to RTPROT_BOOT.
    `multipath` is a list of (gateway, oif) next hops.
    """
    from pycni.kernel.addr import scope_value

    fam, raw, plen = _dst(dst, family, gateway, multipath)
    rtype = _enum(TYPES, type, "type") if type is not None else RTN_UNICAST
    if scope is not None:
        sc = scope_value(scope)
    else:
        sc = RT_SCOPE_HOST if rtype == RTN_LOCAL else RT_SCOPE_UNIVERSE
    tbl = RT_TABLE_MAIN if table is None else table
    flags = RTNH_F_ONLINK if onlink else 0
    proto = RTPROT_BOOT if protocol is None else protocol
    parts = _selector(fam, raw, plen, tbl, gateway, oif, priority, proto, sc, rtype, flags)
    if src:
        parts.append(nl.nla(RTA_PREFSRC, nl.ip_pack(src)[1]))
    metrics = []
    if mtu:
        metrics.append(nl.nla_u32(RTAX_MTU, mtu))
    if advmss:
        metrics.append(nl.nla_u32(RTAX_ADVMSS, advmss))
    if metrics:
        parts.append(nl.nla_nest(RTA_METRICS, *metrics))
    if multipath:
        hops = []
        for gw, hop_oif in multipath:
            attrs = _gateway_attr(fam, gw) if gw else b""
            hop_flags = RTNH_F_ONLINK if onlink else 0
            hops.append(_RTNH.pack(8 + len(attrs), hop_flags, 0, hop_oif or 0) + attrs)
        parts.append(nl.nla(RTA_MULTIPATH, b"".join(hops)))
    nlflags = nl.NLM_F_CREATE
    if exclusive:
        nlflags |= nl.NLM_F_EXCL
    if replace:
        nlflags |= nl.NLM_F_REPLACE
    verb = "replace" if replace else "add"
    sock.request(
        nl.RTM_NEWROUTE, b"".join(parts), f"{verb} route {_label(dst, raw, gateway)}", nlflags
    )


def route_del(
    sock,
    dst,
    *,
    gateway: str | None = None,
    oif: int | None = None,
    table: int | None = None,
    priority: int | None = None,
    family: int | None = None,
    scope=None,
    type=None,
    src: str | None = None,
) -> None:
    """Delete the first route matching the given fields (RTM_DELROUTE).
    `src` is the preferred source (RTA_PREFSRC), which tells apart IPv4
    routes to one prefix that differ only in it.  A missing route raises
    NetlinkError ESRCH."""
    from pycni.kernel.addr import scope_value

    fam, raw, plen = _dst(dst, family, gateway)
    tbl = RT_TABLE_MAIN if table is None else table
    sc = scope_value(scope) if scope is not None else RT_SCOPE_NOWHERE
    rtype = _enum(TYPES, type, "type") if type is not None else RTN_UNSPEC
    parts = _selector(fam, raw, plen, tbl, gateway, oif, priority, 0, sc, rtype, 0)
    if src:
        parts.append(nl.nla(RTA_PREFSRC, nl.ip_pack(src)[1]))
    sock.request(nl.RTM_DELROUTE, b"".join(parts), f"delete route {_label(dst, raw, gateway)}")


def route_list(sock, family: int = 0, table: int | None = None) -> list[Route]:
    """Routes of `family` (0: IPv4 and IPv6).  table=None lists the main table
    only, like the reference's netlink.RouteList; table=0 lists every table.
    Cloned (cache) routes are dropped."""
    want_table = RT_TABLE_MAIN if table is None else table
    wanted = (family,) if family else (nl.AF_INET, nl.AF_INET6)
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    out = []
    for m in sock.dump(nl.RTM_GETROUTE, body, "list routes"):
        if m.type != nl.RTM_NEWROUTE:
            continue
        r = Route.from_payload(m.payload)
        if r.family not in wanted:
            continue
        if r.flags & RTM_F_CLONED:
            continue
        if want_table and r.table != want_table:
            continue
        out.append(r)
    return out


def route_get(sock, dst: str, *, oif: int | None = None) -> Route:
    """`ip route get <dst>`: the route the kernel would use."""
    fam, raw, _plen = nl.parse_cidr(dst.partition("/")[0])
    body = _RTMSG.pack(fam, len(raw) * 8, 0, 0, 0, 0, 0, 0, 0) + nl.nla(RTA_DST, raw)
    if oif:
        body += nl.nla_u32(RTA_OIF, nl.index_of(oif))
    for m in sock.request(nl.RTM_GETROUTE, body, f"get route {dst}"):
        if m.type == nl.RTM_NEWROUTE:
            return Route.from_payload(m.payload)
    raise nl.NetlinkError(2, f"get route {dst}")  # ENOENT
