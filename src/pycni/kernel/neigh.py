"""Neighbour (ARP / NDP) entries: list, add, delete."""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nl

NDA_DST = 1
NDA_LLADDR = 2

NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80

_NDMSG = struct.Struct("=BxxxiHBB")  # family, pad, ifindex, state, flags, type


class Neigh:
    """One neighbour entry."""

    __slots__ = ("family", "flags", "index", "ip", "mac", "state", "type")

    def __init__(self) -> None:
        self.index = 0
        self.family = 0
        self.ip = ""
        self.mac = ""
        self.state = 0
        self.flags = 0
        self.type = 0

    @property
    def permanent(self) -> bool:
        return bool(self.state & NUD_PERMANENT)

    def __repr__(self) -> str:
        return f"Neigh(index={self.index}, ip={self.ip!r}, mac={self.mac!r}, state={self.state:#x})"

    @classmethod
    def from_payload(cls, body) -> Neigh:
        self = cls()
        self.family, self.index, self.state, self.flags, self.type = _NDMSG.unpack_from(body)
        for t, v in nl.iter_attrs(body, _NDMSG.size):
            if t == NDA_DST and self.family in (nl.AF_INET, nl.AF_INET6):
                self.ip = nl.ip_unpack(self.family, v)
            elif t == NDA_LLADDR:
                self.mac = nl.mac_unpack(v)
        return self


def neigh_list(sock, index: int | None = None, family: int = 0) -> list[Neigh]:
    body = _NDMSG.pack(family, 0, 0, 0, 0)
    out = []
    for m in sock.dump(nl.RTM_GETNEIGH, body, "list neighbours"):
        if m.type != nl.RTM_NEWNEIGH:
            continue
        n = Neigh.from_payload(m.payload)
        if not n.ip:
            continue
        if index and n.index != index:
            continue
        if family and n.family != family:
            continue
        out.append(n)
    return out


def neigh_add(sock, index, ip: str, mac, permanent: bool = True, replace: bool = False) -> None:
    """`ip neigh add` (or `replace` with replace=True); a duplicate is EEXIST."""
    idx = nl.index_of(index)
    fam, raw = nl.ip_pack(ip)
    state = NUD_PERMANENT if permanent else NUD_REACHABLE
    body = _NDMSG.pack(fam, idx, state, 0, 0) + nl.nla(NDA_DST, raw)
    body += nl.nla(NDA_LLADDR, nl.mac_pack(mac))
    flags = nl.NLM_F_CREATE | (nl.NLM_F_REPLACE if replace else nl.NLM_F_EXCL)
    sock.request(nl.RTM_NEWNEIGH, body, f"add neighbour {ip}", flags, nodev=nl.LinkNotFound)


def neigh_del(sock, index, ip: str) -> None:
    idx = nl.index_of(index)
    fam, raw = nl.ip_pack(ip)
    body = _NDMSG.pack(fam, idx, 0, 0, 0) + nl.nla(NDA_DST, raw)
    sock.request(nl.RTM_DELNEIGH, body, f"delete neighbour {ip}", nodev=nl.LinkNotFound)
