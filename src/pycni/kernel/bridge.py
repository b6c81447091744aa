"""Bridge-port flags (IFLA_PROTINFO) and bridge VLANs (IFLA_AF_SPEC), via AF_BRIDGE."""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nl
from pycni.kernel.link import BRPORT_ATTRS, IFLA_AF_SPEC, IFLA_EXT_MASK, IFLA_PROTINFO, ifinfomsg

IFLA_BRIDGE_FLAGS = 0
IFLA_BRIDGE_MODE = 1
IFLA_BRIDGE_VLAN_INFO = 2

BRIDGE_FLAGS_MASTER = 1
BRIDGE_FLAGS_SELF = 2

BRIDGE_VLAN_INFO_MASTER = 1
BRIDGE_VLAN_INFO_PVID = 2
BRIDGE_VLAN_INFO_UNTAGGED = 4
BRIDGE_VLAN_INFO_RANGE_BEGIN = 8
BRIDGE_VLAN_INFO_RANGE_END = 16
BRIDGE_VLAN_INFO_BRENTRY = 32

RTEXT_FILTER_BRVLAN = 2

_VLAN_INFO = struct.Struct("=HH")  # flags, vid


def port_set(sock, index, **flags) -> None:
    """Set bridge-port attributes (hairpin, isolated, learning, flood, ...) of
    a bridge port: RTM_SETLINK, AF_BRIDGE, IFLA_PROTINFO|NLA_F_NESTED.

    Booleans take True/False; state/priority/cost take ints. None is skipped.
    """
    idx = nl.index_of(index)
    parts = []
    for name, value in flags.items():
        if value is None:
            continue
        try:
            atype, width = BRPORT_ATTRS[name]
        except KeyError:
            raise TypeError(f"unknown bridge port attribute: {name!r}")
        v = int(value)
        if width == 1:
            parts.append(nl.nla_u8(atype, v))
        elif width == 2:
            parts.append(nl.nla_u16(atype, v))
        else:
            parts.append(nl.nla_u32(atype, v))
    if not parts:
        return
    body = ifinfomsg(idx, family=nl.AF_BRIDGE) + nl.nla_nest(
        IFLA_PROTINFO, *parts, nested_flag=True
    )
    label = getattr(index, "name", "") or str(idx)
    sock.request(nl.RTM_SETLINK, body, f"set bridge port {label}", nodev=nl.LinkNotFound)


def _vlan_change(sock, mtype: int, op: str, index, vid, pvid, untagged, master, self_) -> None:
    """One bridge VLAN entry in IFLA_AF_SPEC: RTM_SETLINK adds it, RTM_DELLINK
    deletes it; `op` is the error text before "link <name>"."""
    idx = nl.index_of(index)
    if not 1 <= vid <= 4094:
        raise ValueError(f"invalid VLAN id: {vid}")
    bflags = (BRIDGE_FLAGS_MASTER if master else 0) | (BRIDGE_FLAGS_SELF if self_ else 0)
    vflags = (BRIDGE_VLAN_INFO_PVID if pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0)
    spec = []
    if bflags:
        spec.append(nl.nla_u16(IFLA_BRIDGE_FLAGS, bflags))
    spec.append(nl.nla(IFLA_BRIDGE_VLAN_INFO, _VLAN_INFO.pack(vflags, vid)))
    sock.request(
        mtype,
        ifinfomsg(idx, family=nl.AF_BRIDGE) + nl.nla_nest(IFLA_AF_SPEC, *spec),
        f"{op} link {getattr(index, 'name', '') or idx}",
        nodev=nl.LinkNotFound,
    )


def vlan_add(sock, index, vid: int, *, pvid=False, untagged=False, master=True, self_=False):
    """`bridge vlan add dev <index> vid <vid> [pvid] [untagged] [self] [master]`."""
    op = f"add bridge vlan {vid} to"
    _vlan_change(sock, nl.RTM_SETLINK, op, index, vid, pvid, untagged, master, self_)


def vlan_del(sock, index, vid: int, *, pvid=False, untagged=False, master=True, self_=False):
    """`bridge vlan del dev <index> vid <vid> [pvid] [untagged] [self] [master]`."""
    op = f"delete bridge vlan {vid} from"
    _vlan_change(sock, nl.RTM_DELLINK, op, index, vid, pvid, untagged, master, self_)


def parse_vlans(afspec) -> list[tuple[int, int]]:
    """IFLA_AF_SPEC of an AF_BRIDGE link -> [(vid, flags)], ranges expanded."""
    out: list[tuple[int, int]] = []
    start = None
    for t, v in nl.iter_attrs(afspec):
        if t != IFLA_BRIDGE_VLAN_INFO or len(v) < 4:
            continue
        flags, vid = _VLAN_INFO.unpack_from(v)
        if flags & BRIDGE_VLAN_INFO_RANGE_BEGIN:
            start = vid
            continue
        if flags & BRIDGE_VLAN_INFO_RANGE_END and start is not None:
            base = flags & ~BRIDGE_VLAN_INFO_RANGE_END
            out.extend((x, base) for x in range(start, vid + 1))
            start = None
            continue
        out.append((vid, flags))
    return out


def vlan_list(sock, index) -> list[tuple[int, int]]:
    """VLANs configured on a bridge or bridge port: [(vid, BRIDGE_VLAN_INFO_* flags)]."""
    idx = nl.index_of(index)
    body = ifinfomsg(family=nl.AF_BRIDGE) + nl.nla_u32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN)
    out: list[tuple[int, int]] = []
    for m in sock.dump(nl.RTM_GETLINK, body, "list bridge vlans"):
        if m.type != nl.RTM_NEWLINK or nl.get_s32(m.payload[4:8]) != idx:
            continue
        for t, v in nl.iter_attrs(m.payload, 16):
            if t == IFLA_AF_SPEC:
                out.extend(x for x in parse_vlans(v) if x not in out)
    return out
