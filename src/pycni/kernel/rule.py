"""Policy routing rules (`ip rule`): list, add, delete."""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nl

FRA_DST = 1
FRA_SRC = 2
FRA_IIFNAME = 3
FRA_GOTO = 4
FRA_PRIORITY = 6
FRA_FWMARK = 10
FRA_TABLE = 15
FRA_FWMASK = 16
FRA_OIFNAME = 17

FR_ACT_UNSPEC = 0
FR_ACT_TO_TBL = 1

_FRH = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table res1 res2 action flags


class Rule:
    """One policy rule; src/dst are CIDR strings or None."""

    __slots__ = (
        "action",
        "dst",
        "family",
        "flags",
        "fwmark",
        "iif",
        "oif",
        "priority",
        "src",
        "table",
        "tos",
    )

    action: int
    dst: str | None
    family: int
    flags: int
    fwmark: int
    iif: str
    oif: str
    priority: int
    src: str | None
    table: int
    tos: int

    def __init__(self) -> None:
        self.family = 0
        self.table = 0
        self.priority = 0
        self.src = None
        self.dst = None
        self.iif = ""
        self.oif = ""
        self.action = 0
        self.flags = 0
        self.tos = 0
        self.fwmark = 0

    def __repr__(self) -> str:
        return (
            f"Rule(priority={self.priority}, src={self.src}, dst={self.dst}, "
            f"iif={self.iif!r}, oif={self.oif!r}, table={self.table})"
        )

    @classmethod
    def from_payload(cls, body) -> Rule:
        self = cls()
        fam, dst_len, src_len, self.tos, table, _r1, _r2, self.action, self.flags = (
            _FRH.unpack_from(body)
        )
        self.family = fam
        self.table = table
        for t, v in nl.iter_attrs(body, _FRH.size):
            if t == FRA_TABLE:
                self.table = nl.get_u32(v)
            elif t == FRA_PRIORITY:
                self.priority = nl.get_u32(v)
            elif t == FRA_SRC:
                self.src = f"{nl.ip_unpack(fam, v)}/{src_len}"
            elif t == FRA_DST:
                self.dst = f"{nl.ip_unpack(fam, v)}/{dst_len}"
            elif t == FRA_IIFNAME:
                self.iif = nl.get_str(v)
            elif t == FRA_OIFNAME:
                self.oif = nl.get_str(v)
            elif t == FRA_FWMARK:
                self.fwmark = nl.get_u32(v)
        return self


def rule_list(sock, family: int = 0) -> list[Rule]:
    """IPv4 and/or IPv6 rules (family 0: both; multicast-routing rules are skipped)."""
    wanted = (family,) if family else (nl.AF_INET, nl.AF_INET6)
    out = []
    for m in sock.dump(nl.RTM_GETRULE, _FRH.pack(family, 0, 0, 0, 0, 0, 0, 0, 0), "list rules"):
        if m.type != nl.RTM_NEWRULE:
            continue
        r = Rule.from_payload(m.payload)
        if r.family not in wanted:
            continue
        out.append(r)
    return out


def _build(family, table, priority, src, dst, iif, oif, action) -> bytes:
    """The fib_rule_hdr and attributes that rule_add and rule_del send."""
    fam = family or 0
    src_t = nl.parse_cidr(src, mask=True) if src else None
    dst_t = nl.parse_cidr(dst, mask=True) if dst else None
    for t in (src_t, dst_t):
        if t is not None:
            if fam and fam != t[0]:
                raise ValueError("rule: address family mismatch")
            fam = t[0]
    if not fam:
        fam = nl.AF_INET
    tbl = table or 0
    body = _FRH.pack(
        fam,
        dst_t[2] if dst_t else 0,
        src_t[2] if src_t else 0,
        0,
        tbl if tbl < 256 else 0,
        0,
        0,
        action,
        0,
    )
    parts = []
    if tbl:
        parts.append(nl.nla_u32(FRA_TABLE, tbl))
    if priority is not None:
        parts.append(nl.nla_u32(FRA_PRIORITY, priority))
    if src_t:
        parts.append(nl.nla(FRA_SRC, src_t[1]))
    if dst_t:
        parts.append(nl.nla(FRA_DST, dst_t[1]))
    if iif:
        parts.append(nl.nla_str(FRA_IIFNAME, iif))
    if oif:
        parts.append(nl.nla_str(FRA_OIFNAME, oif))
    return body + b"".join(parts)


def rule_add(
    sock,
    *,
    family: int | None = None,
    table: int,
    priority: int | None = None,
    src: str | None = None,
    dst: str | None = None,
    iif: str | None = None,
    oif: str | None = None,
) -> None:
    """`ip rule add [from src] [to dst] [iif] [oif] [priority] lookup table`
    (NLM_F_CREATE|NLM_F_EXCL). iif/oif are interface names; the family comes
    from `family`, else src/dst, else IPv4."""
    body = _build(family, table, priority, src, dst, iif, oif, FR_ACT_TO_TBL)
    sock.request(nl.RTM_NEWRULE, body, f"add rule lookup {table}", nl.NLM_F_CREATE | nl.NLM_F_EXCL)


def rule_del(
    sock,
    *,
    family: int | None = None,
    table: int | None = None,
    priority: int | None = None,
    src: str | None = None,
    dst: str | None = None,
    iif: str | None = None,
    oif: str | None = None,
) -> None:
    """Delete the first rule matching every given field (ENOENT if none)."""
    body = _build(family, table, priority, src, dst, iif, oif, FR_ACT_UNSPEC)
    sock.request(nl.RTM_DELRULE, body, "delete rule")
