"""Interface addresses: list, add, delete, and the reference's DAD "settle" wait."""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nl

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_CACHEINFO = 6
IFA_FLAGS = 8

IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_OPTIMISTIC = 0x04
IFA_F_DADFAILED = 0x08
IFA_F_HOMEADDRESS = 0x10
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
IFA_F_STABLE_PRIVACY = 0x800

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
SCOPES = {
    "universe": RT_SCOPE_UNIVERSE,
    "global": RT_SCOPE_UNIVERSE,
    "site": RT_SCOPE_SITE,
    "link": RT_SCOPE_LINK,
    "host": RT_SCOPE_HOST,
    "nowhere": RT_SCOPE_NOWHERE,
}

INFINITY_LIFE_TIME = 0xFFFFFFFF

_IFADDR = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_CACHEINFO = struct.Struct("=IIII")  # prefered, valid, cstamp, tstamp


def scope_value(scope) -> int:
    if isinstance(scope, int):
        return scope
    try:
        return SCOPES[str(scope).lower()]
    except KeyError:
        raise ValueError(f"unknown scope: {scope!r}")


class Addr:
    """One interface address."""

    __slots__ = (
        "address",
        "broadcast",
        "family",
        "flags",
        "index",
        "label",
        "peer",
        "preferred_lft",
        "prefixlen",
        "scope",
        "valid_lft",
    )

    def __init__(self) -> None:
        self.index = 0
        self.family = 0
        self.address = ""
        self.peer = ""
        self.prefixlen = 0
        self.scope = 0
        self.flags = 0
        self.label = ""
        self.broadcast = ""
        self.preferred_lft = INFINITY_LIFE_TIME
        self.valid_lft = INFINITY_LIFE_TIME

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefixlen}"

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dadfailed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)

    def __repr__(self) -> str:
        return f"Addr(index={self.index}, cidr={self.cidr!r}, flags={self.flags:#x})"

    @classmethod
    def from_payload(cls, body) -> Addr:
        self = cls()
        self.family, self.prefixlen, self.flags, self.scope, self.index = _IFADDR.unpack_from(body)
        local = address = None
        for t, v in nl.iter_attrs(body, 8):
            if t == IFA_ADDRESS:
                address = nl.ip_unpack(self.family, v)
            elif t == IFA_LOCAL:
                local = nl.ip_unpack(self.family, v)
            elif t == IFA_FLAGS:
                self.flags = nl.get_u32(v)
            elif t == IFA_LABEL:
                self.label = nl.get_str(v)
            elif t == IFA_BROADCAST:
                self.broadcast = nl.ip_unpack(self.family, v)
            elif t == IFA_CACHEINFO and len(v) >= 8:
                self.preferred_lft, self.valid_lft = _CACHEINFO.unpack_from(v)[:2]
        # IPv4: IFA_LOCAL is the interface address, IFA_ADDRESS the peer on p2p links
        self.address = local or address or ""
        if local and address and local != address:
            self.peer = address
        return self


def addr_list(sock, index: int | None = None, family: int = 0) -> list[Addr]:
    msgs = sock.dump(nl.RTM_GETADDR, _IFADDR.pack(family, 0, 0, 0, 0), "list addresses")
    out = []
    for m in msgs:
        if m.type != nl.RTM_NEWADDR:
            continue
        a = Addr.from_payload(m.payload)
        if index and a.index != index:
            continue
        if family and a.family != family:
            continue
        out.append(a)
    return out


def _v4_broadcast(raw: bytes, prefixlen: int) -> bytes:
    host = (1 << (32 - prefixlen)) - 1
    return (int.from_bytes(raw, "big") | host).to_bytes(4, "big")


def addr_add(
    sock, index, cidr: str, *, scope=None, flags: int = 0, broadcast=True, label=None
) -> None:
    """`ip addr add <cidr> dev <index>` (NLM_F_CREATE|NLM_F_EXCL: a duplicate is EEXIST).

    broadcast=True computes the IPv4 broadcast for prefixes shorter than /31
    (like the reference's netlink.AddrAdd); a string sets it; False/None omits it.
    """
    idx = nl.index_of(index)
    fam, raw, plen = nl.parse_cidr(cidr)
    sc = scope_value(scope) if scope is not None else 0
    body = _IFADDR.pack(fam, plen, flags & 0xFF, sc, idx)
    parts = [nl.nla(IFA_LOCAL, raw), nl.nla(IFA_ADDRESS, raw)]
    if flags:
        parts.append(nl.nla_u32(IFA_FLAGS, flags))
    if fam == nl.AF_INET and broadcast:
        if isinstance(broadcast, str):
            parts.append(nl.nla(IFA_BROADCAST, nl.ip_pack(broadcast)[1]))
        elif plen < 31:
            parts.append(nl.nla(IFA_BROADCAST, _v4_broadcast(raw, plen)))
    if label:
        parts.append(nl.nla_str(IFA_LABEL, label))
    sock.request(
        nl.RTM_NEWADDR,
        body + b"".join(parts),
        f"add address {cidr} to link {getattr(index, 'name', '') or idx}",
        nl.NLM_F_CREATE | nl.NLM_F_EXCL,
        nodev=nl.LinkNotFound,
    )


def addr_del(sock, index, cidr: str) -> None:
    idx = nl.index_of(index)
    fam, raw, plen = nl.parse_cidr(cidr)
    body = _IFADDR.pack(fam, plen, 0, 0, idx) + nl.nla(IFA_LOCAL, raw)
    if fam == nl.AF_INET6:
        body += nl.nla(IFA_ADDRESS, raw)
    sock.request(
        nl.RTM_DELADDR,
        body,
        f"delete address {cidr} from link {getattr(index, 'name', '') or idx}",
        nodev=nl.LinkNotFound,
    )


def wait_dad(sock, index, timeout: float = 5.0, interval: float = 0.05) -> None:
    """The reference's SettleAddresses: poll every 50 ms until no IPv6 address
    on the link is tentative.  An address in DADFAILED state raises at once; on
    timeout it raises only if the link's operstate is UP.  A missing link
    raises LinkNotFound."""
    import errno
    import time

    from pycni.kernel.link import link_get

    idx = nl.index_of(index)
    name = link_get(sock, index=idx).name
    op = f"wait for DAD on link {name}"
    deadline = time.monotonic() + timeout
    while True:
        pending = False
        for a in addr_list(sock, idx, nl.AF_INET6):
            if a.flags & IFA_F_DADFAILED:
                raise nl.NetlinkError(
                    errno.EADDRNOTAVAIL,
                    op,
                    f"link {name} has address {a.address} in DADFAILED state",
                )
            if a.flags & IFA_F_TENTATIVE:
                pending = True
        if not pending:
            return
        if time.monotonic() >= deadline:
            if link_get(sock, index=idx).oper_up:
                raise nl.NetlinkError(
                    errno.ETIMEDOUT,
                    op,
                    f"link {name} still has tentative addresses after {timeout:g} seconds",
                )
            return
        time.sleep(interval)
