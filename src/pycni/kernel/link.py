"""Links: list, get, create (veth, bridge, macvlan, ipvlan, vlan, vrf, dummy), set, delete."""

from __future__ import annotations

import os
import struct

from pycni.kernel import netlink as nl

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000

IF_OPER_UNKNOWN = 0
IF_OPER_NOTPRESENT = 1
IF_OPER_DOWN = 2
IF_OPER_LOWERLAYERDOWN = 3
IF_OPER_TESTING = 4
IF_OPER_DORMANT = 5
IF_OPER_UP = 6

IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_AF_SPEC = 26
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_PROMISCUITY = 30
IFLA_LINK_NETNSID = 37
IFLA_ALLMULTI = 61

IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5

VETH_INFO_PEER = 1

IFLA_BR_VLAN_FILTERING = 7

IFLA_MACVLAN_MODE = 1
IFLA_MACVLAN_FLAGS = 2
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}

IFLA_IPVLAN_MODE = 1
IFLA_IPVLAN_FLAGS = 2
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}

IFLA_VLAN_ID = 1
IFLA_VLAN_PROTOCOL = 5
VLAN_PROTOCOLS = {"802.1q": 0x8100, "802.1ad": 0x88A8}

IFLA_VRF_TABLE = 1

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


# bridge-port attributes reported in IFLA_INFO_SLAVE_DATA / IFLA_PROTINFO:
# name -> (IFLA_BRPORT_* type, width in bytes); width 1 ones are booleans.
BRPORT_ATTRS = {
    "state": (1, 1),
    "priority": (2, 2),
    "cost": (3, 4),
    "hairpin": (4, 1),
    "guard": (5, 1),
    "root_block": (6, 1),
    "fast_leave": (7, 1),
    "learning": (8, 1),
    "flood": (9, 1),
    "proxy_arp": (10, 1),
    "learning_sync": (11, 1),
    "proxy_arp_wifi": (12, 1),
    "mcast_flood": (27, 1),
    "mcast_to_unicast": (28, 1),
    "vlan_tunnel": (29, 1),
    "bcast_flood": (30, 1),
    "neigh_suppress": (32, 1),
    "isolated": (33, 1),
    "locked": (39, 1),
    "mab": (40, 1),
}
_BRPORT_NONBOOL = ("state", "priority", "cost")
_BRPORT_BY_TYPE = {t: (name, w) for name, (t, w) in BRPORT_ATTRS.items()}


def parse_brport(attrs_mv) -> dict:
    out = {}
    for t, v in nl.iter_attrs(attrs_mv):
        ent = _BRPORT_BY_TYPE.get(t)
        if ent is None:
            continue
        name, width = ent
        if len(v) < width:
            continue
        if width == 1:
            val = v[0]
            out[name] = val if name in _BRPORT_NONBOOL else bool(val)
        elif width == 2:
            out[name] = nl.get_u16(v)
        else:
            out[name] = nl.get_u32(v)
    return out


class Link:
    """One network interface as the kernel reports it."""

    __slots__ = (
        "alias",
        "allmulti",
        "brport",
        "data",
        "flags",
        "index",
        "kind",
        "link",
        "link_netnsid",
        "mac",
        "master",
        "mtu",
        "name",
        "operstate",
        "promiscuity",
        "slave_kind",
        "txqlen",
        "type",
    )

    alias: str
    allmulti: int
    brport: dict | None
    data: dict
    flags: int
    index: int
    kind: str
    link: int
    link_netnsid: int | None
    mac: str
    master: int
    mtu: int
    name: str
    operstate: int
    promiscuity: int
    slave_kind: str
    txqlen: int
    type: int

    def __init__(self) -> None:
        self.index = 0
        self.name = ""
        self.kind = ""
        self.slave_kind = ""
        self.mac = ""
        self.mtu = 0
        self.flags = 0
        self.type = 0
        self.master = 0
        self.link = 0
        self.link_netnsid = None
        self.operstate = IF_OPER_UNKNOWN
        self.alias = ""
        self.txqlen = 0
        self.promiscuity = 0
        self.allmulti = 0
        self.brport = None
        self.data = {}

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def promisc(self) -> bool:
        return bool(self.flags & IFF_PROMISC)

    @property
    def oper_up(self) -> bool:
        return self.operstate == IF_OPER_UP

    @property
    def lower_up(self) -> bool:
        return bool(self.flags & IFF_LOWER_UP)

    def __repr__(self) -> str:
        return f"Link(index={self.index}, name={self.name!r}, kind={self.kind!r}, mac={self.mac!r})"

    @classmethod
    def from_payload(cls, body) -> Link:
        self = cls()
        _fam, self.type, self.index, self.flags, _chg = _IFINFO.unpack_from(body)
        for t, v in nl.iter_attrs(body, 16):
            if t == IFLA_IFNAME:
                self.name = nl.get_str(v)
            elif t == IFLA_ADDRESS:
                self.mac = nl.mac_unpack(v)
            elif t == IFLA_MTU:
                self.mtu = nl.get_u32(v)
            elif t == IFLA_MASTER:
                self.master = nl.get_u32(v)
            elif t == IFLA_LINK:
                self.link = nl.get_u32(v)
            elif t == IFLA_LINK_NETNSID:
                self.link_netnsid = nl.get_s32(v)
            elif t == IFLA_OPERSTATE:
                self.operstate = v[0]
            elif t == IFLA_IFALIAS:
                self.alias = nl.get_str(v)
            elif t == IFLA_TXQLEN:
                self.txqlen = nl.get_u32(v)
            elif t == IFLA_PROMISCUITY:
                self.promiscuity = nl.get_u32(v)
            elif t == IFLA_ALLMULTI:
                self.allmulti = nl.get_u32(v)
            elif t == IFLA_LINKINFO:
                self._linkinfo(v)
            elif t == IFLA_PROTINFO and self.brport is None:
                # AF_BRIDGE messages: nested IFLA_BRPORT_* attributes
                br = parse_brport(v)
                if br:
                    self.brport = br
        return self

    def _linkinfo(self, v) -> None:
        data = None
        for t, sub in nl.iter_attrs(v):
            if t == IFLA_INFO_KIND:
                self.kind = nl.get_str(sub)
            elif t == IFLA_INFO_DATA:
                data = sub
            elif t == IFLA_INFO_SLAVE_KIND:
                self.slave_kind = nl.get_str(sub)
            elif t == IFLA_INFO_SLAVE_DATA and self.slave_kind in ("", "bridge"):
                self.brport = parse_brport(sub)
        if self.slave_kind and self.slave_kind != "bridge":
            self.brport = None
        if data is not None:
            self.data = decode_info_data(self.kind, data)


def _name_of(table: dict, value: int) -> str | int:
    for k, v in table.items():
        if v == value:
            return k
    return value


def decode_info_data(kind: str, mv) -> dict:
    """IFLA_INFO_DATA as the dict link_add(data=...) takes."""
    a = nl.parse_attrs(mv)
    out: dict = {}
    if kind == "macvlan" or kind == "macvtap":
        if IFLA_MACVLAN_MODE in a:
            out["mode"] = _name_of(MACVLAN_MODES, nl.get_u32(a[IFLA_MACVLAN_MODE]))
        if IFLA_MACVLAN_FLAGS in a and nl.get_u16(a[IFLA_MACVLAN_FLAGS]):
            out["flags"] = nl.get_u16(a[IFLA_MACVLAN_FLAGS])
    elif kind == "ipvlan" or kind == "ipvtap":
        if IFLA_IPVLAN_MODE in a:
            out["mode"] = _name_of(IPVLAN_MODES, nl.get_u16(a[IFLA_IPVLAN_MODE]))
        if IFLA_IPVLAN_FLAGS in a:
            out["flags"] = _name_of(IPVLAN_FLAGS, nl.get_u16(a[IFLA_IPVLAN_FLAGS]))
    elif kind == "vlan":
        if IFLA_VLAN_ID in a:
            out["id"] = nl.get_u16(a[IFLA_VLAN_ID])
        if IFLA_VLAN_PROTOCOL in a:
            proto = int.from_bytes(bytes(a[IFLA_VLAN_PROTOCOL][:2]), "big")
            out["protocol"] = _name_of(VLAN_PROTOCOLS, proto)
    elif kind == "vrf":
        if IFLA_VRF_TABLE in a:
            out["table"] = nl.get_u32(a[IFLA_VRF_TABLE])
    elif kind == "bridge" and IFLA_BR_VLAN_FILTERING in a:
        out["vlan_filtering"] = bool(a[IFLA_BR_VLAN_FILTERING][0])
    return out


def _lookup(table: dict, value, what: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return table[str(value).lower()]
    except KeyError:
        raise ValueError(f"unknown {what}: {value!r}")


def encode_info_data(kind: str, data) -> bytes:
    """Build the IFLA_INFO_DATA payload for `kind` from a dict (or raw bytes)."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    data = dict(data or {})
    parts = []
    if kind in ("macvlan", "macvtap"):
        if "mode" in data:
            parts.append(
                nl.nla_u32(IFLA_MACVLAN_MODE, _lookup(MACVLAN_MODES, data.pop("mode"), "mode"))
            )
        if "flags" in data:
            parts.append(nl.nla_u16(IFLA_MACVLAN_FLAGS, int(data.pop("flags"))))
    elif kind in ("ipvlan", "ipvtap"):
        if "mode" in data:
            parts.append(
                nl.nla_u16(IFLA_IPVLAN_MODE, _lookup(IPVLAN_MODES, data.pop("mode"), "mode"))
            )
        if "flags" in data:
            parts.append(
                nl.nla_u16(IFLA_IPVLAN_FLAGS, _lookup(IPVLAN_FLAGS, data.pop("flags"), "flags"))
            )
    elif kind == "vlan":
        if "id" in data:
            vid = int(data.pop("id"))
            if not 0 <= vid <= 4094:
                raise ValueError(f"invalid VLAN id: {vid}")
            parts.append(nl.nla_u16(IFLA_VLAN_ID, vid))
        if "protocol" in data:
            proto = _lookup(VLAN_PROTOCOLS, data.pop("protocol"), "VLAN protocol")
            parts.append(nl.nla_be16(IFLA_VLAN_PROTOCOL, proto))
    elif kind == "vrf":
        if "table" in data:
            parts.append(nl.nla_u32(IFLA_VRF_TABLE, int(data.pop("table"))))
    elif kind == "bridge":
        if data.get("vlan_filtering") is not None:
            parts.append(nl.nla_u8(IFLA_BR_VLAN_FILTERING, int(bool(data["vlan_filtering"]))))
        data.pop("vlan_filtering", None)
    if data:
        raise ValueError(f"unsupported {kind or 'link'} data keys: {sorted(data)}")
    return b"".join(parts)


# --- operations -----------------------------------------------------------------


def link_list(sock) -> list[Link]:
    msgs = sock.dump(nl.RTM_GETLINK, ifinfomsg(), "list links")
    return [Link.from_payload(m.payload) for m in msgs if m.type == nl.RTM_NEWLINK]


def link_get(sock, name: str | None = None, index: int | None = None) -> Link:
    if index:
        body = ifinfomsg(index)
        what = f"index {index}"
    elif name:
        body = ifinfomsg() + nl.nla_str(IFLA_IFNAME, name)
        what = name
    else:
        raise ValueError("link_get needs a name or an index")
    msgs = sock.request(nl.RTM_GETLINK, body, f"get link {what}", nodev=nl.LinkNotFound)
    for m in msgs:
        if m.type == nl.RTM_NEWLINK:
            return Link.from_payload(m.payload)
    raise nl.LinkNotFound(op=f"get link {what}")


def link_find(sock, name: str) -> Link | None:
    try:
        return link_get(sock, name)
    except nl.LinkNotFound:
        return None


def _common_attrs(name: str, mtu: int = 0, mac=None) -> list[bytes]:
    parts = [nl.nla_str(IFLA_IFNAME, name)]
    if mtu:
        parts.append(nl.nla_u32(IFLA_MTU, mtu))
    if mac:
        parts.append(nl.nla(IFLA_ADDRESS, nl.mac_pack(mac)))
    return parts


def _create(sock, name: str, parts: list[bytes], flags: int = 0) -> None:
    sock.request(
        nl.RTM_NEWLINK,
        ifinfomsg(0, flags, flags) + b"".join(parts),
        f"add link {name}",
        nl.NLM_F_CREATE | nl.NLM_F_EXCL,
        nodev=nl.LinkNotFound,
    )


def random_mac() -> bytes:
    """A random unicast, locally administered MAC (the kernel's eth_random_addr)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return bytes(raw)


def link_add_bridge(
    sock, name: str, mtu: int = 0, vlan_filtering: bool | None = None, mac=None
) -> None:
    """Create a bridge; vlan_filtering None leaves the attribute out entirely
    (kernels without CONFIG_BRIDGE_VLAN_FILTERING refuse it even as 0)."""
    parts = _common_attrs(name, mtu, mac)
    info = [nl.nla(IFLA_INFO_KIND, b"bridge")]
    data = encode_info_data("bridge", {"vlan_filtering": vlan_filtering})
    if data:
        info.append(nl.nla(IFLA_INFO_DATA, data))
    parts.append(nl.nla_nest(IFLA_LINKINFO, *info))
    _create(sock, name, parts)


def link_add_veth(
    sock, name: str, peer_name: str, peer_netns=None, mtu: int = 0, mac=None, peer_mac=None
) -> None:
    """Create a veth pair; the peer is created directly in `peer_netns` (fd or path)."""
    peer = _common_attrs(peer_name, mtu, peer_mac)
    with nl.netns_fd(peer_netns) as fd:
        if fd is not None:
            peer.append(nl.nla_u32(IFLA_NET_NS_FD, fd))
        peer_info = nl.nla(VETH_INFO_PEER, ifinfomsg() + b"".join(peer))
        parts = _common_attrs(name, mtu, mac)
        parts.append(
            nl.nla_nest(
                IFLA_LINKINFO,
                nl.nla(IFLA_INFO_KIND, b"veth"),
                nl.nla(IFLA_INFO_DATA, peer_info),
            )
        )
        _create(sock, name, parts)


def link_add(
    sock,
    kind: str,
    name: str,
    *,
    parent: int | None = None,
    netns=None,
    mtu: int = 0,
    mac=None,
    data=None,
    up: bool = False,
    txqlen: int | None = None,
) -> None:
    """Create a link of any kind; `parent` is the IFLA_LINK ifindex (in the
    socket's netns), `netns` (fd or path) creates the link directly there,
    `data` is the IFLA_INFO_DATA dict (see encode_info_data) or raw bytes,
    `up` creates it up and `txqlen` sets its queue length (0 included)."""
    if kind == "veth":
        raise ValueError("use link_add_veth for veth pairs")
    parts = _common_attrs(name, mtu, mac)
    if txqlen is not None:
        parts.append(nl.nla_u32(IFLA_TXQLEN, txqlen))
    if parent:
        parts.append(nl.nla_u32(IFLA_LINK, nl.index_of(parent)))
    # the kind goes without a NUL, as iproute2 and Go's netlink send it
    info = [nl.nla(IFLA_INFO_KIND, kind.encode())]
    payload = encode_info_data(kind, data)
    if payload:
        info.append(nl.nla(IFLA_INFO_DATA, payload))
    parts.append(nl.nla_nest(IFLA_LINKINFO, *info))
    with nl.netns_fd(netns) as fd:
        if fd is not None:
            parts.append(nl.nla_u32(IFLA_NET_NS_FD, fd))
        _create(sock, name, parts, IFF_UP if up else 0)


def _flag(flags: int, change: int, bit: int, on) -> tuple[int, int]:
    if on is None:
        return flags, change
    return (flags | bit if on else flags & ~bit), change | bit


def link_set(
    sock,
    link_or_index,
    *,
    up: bool | None = None,
    mtu: int | None = None,
    mac=None,
    master: int | None = None,
    name: str | None = None,
    netns=None,
    promisc: bool | None = None,
    alias: str | None = None,
    allmulti: bool | None = None,
    txqlen: int | None = None,
) -> None:
    """Change attributes in one RTM_SETLINK.  The kernel applies them in the
    order: netns (with `name` as the name in the target), MAC, MTU, name,
    alias, master, flags (up/promisc/allmulti), txqlen."""
    index = nl.index_of(link_or_index)
    flags, change = 0, 0
    flags, change = _flag(flags, change, IFF_UP, up)
    flags, change = _flag(flags, change, IFF_PROMISC, promisc)
    flags, change = _flag(flags, change, IFF_ALLMULTI, allmulti)
    parts = []
    if name is not None:
        parts.append(nl.nla_str(IFLA_IFNAME, name))
    if mtu is not None:
        parts.append(nl.nla_u32(IFLA_MTU, mtu))
    if mac is not None:
        parts.append(nl.nla(IFLA_ADDRESS, nl.mac_pack(mac)))
    if master is not None:
        parts.append(nl.nla_u32(IFLA_MASTER, nl.index_of(master)))
    if alias is not None:
        parts.append(nl.nla(IFLA_IFALIAS, alias.encode("utf-8", "surrogateescape")))
    if txqlen is not None:
        parts.append(nl.nla_u32(IFLA_TXQLEN, txqlen))
    label = getattr(link_or_index, "name", "") or str(index)
    with nl.netns_fd(netns) as fd:
        if fd is not None:
            parts.append(nl.nla_u32(IFLA_NET_NS_FD, fd))
        sock.request(
            nl.RTM_SETLINK,
            ifinfomsg(index, flags, change) + b"".join(parts),
            f"set link {label}",
            nodev=nl.LinkNotFound,
        )


def link_del(sock, link_or_index_or_name) -> None:
    if isinstance(link_or_index_or_name, str):
        label = link_or_index_or_name
        body = ifinfomsg() + nl.nla_str(IFLA_IFNAME, label)
    else:
        index = nl.index_of(link_or_index_or_name)
        label = getattr(link_or_index_or_name, "name", "") or str(index)
        body = ifinfomsg(index)
    sock.request(nl.RTM_DELLINK, body, f"delete link {label}", nodev=nl.LinkNotFound)
