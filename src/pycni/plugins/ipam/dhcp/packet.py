"""DHCPv4 messages (RFC 2131/2132) and the IPv4/UDP frame around them.

The daemon's client sends on a packet socket, so it builds the IP and UDP
headers itself (as the reference's nclient4 does) and parses them on
receipt. Addresses are 4-byte `bytes` here; `ip_text` turns them into text.
What a lease means for CNI (address, gateway, routes, timers) is read from
an ACK by the functions at the end, with the reference's rules (plugins.md
4.3): option 121 over option 33 + router, 0.0.0.0 next hops on-link.
"""

from __future__ import annotations

import os
import struct

# message types (option 53)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
TYPE_NAMES = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}
BOOTREQUEST, BOOTREPLY = 1, 2
FLAG_BROADCAST = 0x8000

# option codes used here
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOST_NAME = 12
OPT_STATIC_ROUTES = 33
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAM_REQUEST = 55
OPT_MESSAGE = 56
OPT_RENEWAL_TIME = 58
OPT_REBINDING_TIME = 59
OPT_CLIENT_ID = 61
OPT_CLASSLESS_ROUTES = 121
OPT_END = 255

MAGIC = b"\x63\x82\x53\x63"
_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes, before the cookie
BOOTP_MIN_LEN = 300  # RFC 951 size; some servers and relays drop shorter messages
CLIENT_PORT, SERVER_PORT = 68, 67
ZERO = b"\0\0\0\0"
BROADCAST = b"\xff\xff\xff\xff"


class MalformedPacket(ValueError):
    """Bytes that are not a DHCP message."""


class Packet:
    """One DHCP message; `options` keeps codes in insertion order, each once
    (a code split over several instances, RFC 3396, is joined on decode)."""

    __slots__ = (
        "chaddr",
        "ciaddr",
        "file",
        "flags",
        "giaddr",
        "hops",
        "htype",
        "op",
        "options",
        "secs",
        "siaddr",
        "sname",
        "xid",
        "yiaddr",
    )

    def __init__(
        self,
        op: int = BOOTREQUEST,
        xid: int = 0,
        chaddr: bytes = b"",
        *,
        htype: int = 1,
        hops: int = 0,
        secs: int = 0,
        flags: int = 0,
        ciaddr: bytes = ZERO,
        yiaddr: bytes = ZERO,
        siaddr: bytes = ZERO,
        giaddr: bytes = ZERO,
        sname: bytes = b"",
        file: bytes = b"",
        options: dict[int, bytes] | None = None,
    ) -> None:
        self.op = op
        self.htype = htype
        self.hops = hops
        self.xid = xid
        self.secs = secs
        self.flags = flags
        self.ciaddr = ciaddr
        self.yiaddr = yiaddr
        self.siaddr = siaddr
        self.giaddr = giaddr
        self.chaddr = chaddr
        self.sname = sname
        self.file = file
        self.options = dict(options) if options else {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        return (
            f"Packet({TYPE_NAMES.get(self.message_type, self.message_type)}, "
            f"xid={self.xid:#010x}, yiaddr={ip_text(self.yiaddr)}, options={sorted(self.options)})"
        )

    @property
    def message_type(self) -> int:
        value = self.options.get(OPT_MESSAGE_TYPE, b"")
        return value[0] if len(value) == 1 else 0

    @property
    def server_id(self) -> bytes | None:
        value = self.options.get(OPT_SERVER_ID)
        return value if value is not None and len(value) == 4 else None

    def encode(self) -> bytes:
        """The message, options in order, END, padded to the BOOTP minimum."""
        out = [
            _FIXED.pack(
                self.op,
                self.htype,
                len(self.chaddr),
                self.hops,
                self.xid,
                self.secs,
                self.flags,
                self.ciaddr,
                self.yiaddr,
                self.siaddr,
                self.giaddr,
                self.chaddr,
                self.sname,
                self.file,
            ),
            MAGIC,
        ]
        for code, value in self.options.items():
            if code in (OPT_PAD, OPT_END):
                raise ValueError(f"option {code} cannot carry a value")
            # RFC 3396: a value over 255 bytes goes in consecutive instances
            for start in range(0, max(len(value), 1), 255):
                chunk = value[start : start + 255]
                out.append(bytes((code, len(chunk))) + chunk)
        out.append(bytes((OPT_END,)))
        data = b"".join(out)
        if len(data) < BOOTP_MIN_LEN:
            data += b"\0" * (BOOTP_MIN_LEN - len(data))
        return data

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        if len(data) < _FIXED.size + 4:
            raise MalformedPacket(f"{len(data)} bytes is too short for a DHCP message")
        if data[_FIXED.size : _FIXED.size + 4] != MAGIC:
            raise MalformedPacket("no DHCP magic cookie")
        f = _FIXED.unpack_from(data)
        hlen = min(f[2], 16)
        p = cls(
            f[0],
            f[4],
            f[11][:hlen],
            htype=f[1],
            hops=f[3],
            secs=f[5],
            flags=f[6],
            ciaddr=f[7],
            yiaddr=f[8],
            siaddr=f[9],
            giaddr=f[10],
            sname=f[12].split(b"\0", 1)[0],
            file=f[13].split(b"\0", 1)[0],
        )
        p.options = decode_options(data, _FIXED.size + 4)
        overload = p.options.get(OPT_OVERLOAD, b"")
        if len(overload) == 1:  # RFC 2132 9.3: options continue in file, then sname
            if overload[0] & 1:
                _merge(p.options, decode_options(f[13], 0))
            if overload[0] & 2:
                _merge(p.options, decode_options(f[12], 0))
        return p


def _merge(into: dict[int, bytes], more: dict[int, bytes]) -> None:
    for code, value in more.items():
        into[code] = into.get(code, b"") + value


def decode_options(data: bytes, start: int) -> dict[int, bytes]:
    """Options from `start` to END (or the end of data); repeated codes are
    concatenated (RFC 3396). A truncated option ends the list."""
    out: dict[int, bytes] = {}
    i, n = start, len(data)
    while i < n:
        code = data[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= n:
            break
        length = data[i + 1]
        if i + 2 + length > n:
            break
        out[code] = out.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return out


def new_xid() -> int:
    return int.from_bytes(os.urandom(4), "big")


# --- messages of the client ---------------------------------------------------------------


def discover(
    mac: bytes, client_id: bytes, options: list[tuple[int, bytes]], broadcast: bool = False
) -> Packet:
    """DISCOVER: the client ID and the configured options (plugins.md 4.3)."""
    p = Packet(BOOTREQUEST, new_xid(), mac, flags=FLAG_BROADCAST if broadcast else 0)
    p.options[OPT_MESSAGE_TYPE] = bytes((DISCOVER,))
    _client_options(p, client_id, options)
    return p


def request_from_offer(
    offer: Packet, mac: bytes, client_id: bytes, options: list[tuple[int, bytes]], flags: int = 0
) -> Packet:
    """REQUEST in SELECTING state: the offer's xid, requested IP and server ID."""
    p = Packet(BOOTREQUEST, offer.xid, mac, flags=flags)
    p.options[OPT_MESSAGE_TYPE] = bytes((REQUEST,))
    p.options[OPT_REQUESTED_IP] = offer.yiaddr
    if offer.server_id is not None:
        p.options[OPT_SERVER_ID] = offer.server_id
    _client_options(p, client_id, options)
    return p


def renew_from_ack(
    ack: Packet, mac: bytes, client_id: bytes, options: list[tuple[int, bytes]]
) -> Packet:
    """REQUEST in RENEWING state: ciaddr set, no requested IP or server ID,
    unicast replies (RFC 2131 4.3.2)."""
    p = Packet(BOOTREQUEST, new_xid(), mac, ciaddr=ack.yiaddr)
    p.options[OPT_MESSAGE_TYPE] = bytes((REQUEST,))
    _client_options(p, client_id, options)
    return p


def release_from_ack(ack: Packet, mac: bytes, client_id: bytes) -> Packet:
    """RELEASE: ciaddr is the leased address, addressed to the server ID."""
    p = Packet(BOOTREQUEST, new_xid(), mac, ciaddr=ack.yiaddr)
    p.options[OPT_MESSAGE_TYPE] = bytes((RELEASE,))
    if ack.server_id is not None:
        p.options[OPT_SERVER_ID] = ack.server_id
    p.options[OPT_CLIENT_ID] = client_id
    return p


def _client_options(p: Packet, client_id: bytes, options: list[tuple[int, bytes]]) -> None:
    p.options[OPT_CLIENT_ID] = client_id
    for code, value in options:  # `provide` may override the client ID, as in Go
        p.options[code] = value


def client_id_option(client_id: str) -> bytes:
    """Option 61's value: type byte 0 ("not a hardware address"), the ID."""
    return b"\0" + client_id.encode("utf-8", "surrogateescape")


# --- IPv4 + UDP ---------------------------------------------------------------------------

_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """An IPv4 packet (TTL 64, no options) carrying one UDP datagram, both
    checksums filled in: what goes out on a SOCK_DGRAM packet socket."""
    ulen = _UDP.size + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = _UDP.pack(sport, dport, ulen, 0) + payload
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    total = _IP.size + ulen
    header = _IP.pack(0x45, 0, total, 0, 0, 64, 17, 0, src, dst)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def parse_udp_frame(data: bytes) -> tuple[bytes, bytes, int, int, bytes] | None:
    """(src, dst, sport, dport, payload) of an unfragmented IPv4 UDP packet,
    None for anything else (padding after the IP length is ignored)."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    total = int.from_bytes(data[2:4], "big")
    if ihl < 20 or data[9] != 17 or total > len(data) or total < ihl + 8:
        return None
    if int.from_bytes(data[6:8], "big") & 0x3FFF:  # MF set or an offset: a fragment
        return None
    sport, dport, ulen, _ = _UDP.unpack_from(data, ihl)
    end = min(ihl + ulen, total) if ulen >= 8 else total
    return data[12:16], data[16:20], sport, dport, bytes(data[ihl + 8 : end])


# --- what a lease means -------------------------------------------------------------------


def ip_text(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def mask_prefix(mask: bytes) -> int | None:
    """The prefix length of a contiguous netmask, None for any other mask."""
    if len(mask) != 4:
        return None
    value = int.from_bytes(mask, "big")
    ones = bin(value).count("1")
    return ones if value == (0xFFFFFFFF << (32 - ones)) & 0xFFFFFFFF else None


def subnet(ack: Packet) -> str:
    """ "yiaddr/prefix" from option 1; ValueError without a usable mask."""
    mask = ack.options.get(OPT_SUBNET_MASK)
    if mask is None:
        raise ValueError("DHCP option Subnet Mask not found in DHCPACK")
    prefix = mask_prefix(mask)
    if prefix is None:
        raise ValueError(f"DHCP option Subnet Mask {mask.hex()} is not a netmask")
    return f"{ip_text(ack.yiaddr)}/{prefix}"


def gateway(ack: Packet) -> str | None:
    """The first router of option 3 (a list of 4-byte addresses)."""
    value = ack.options.get(OPT_ROUTER, b"")
    if len(value) < 4 or len(value) % 4:
        return None
    return ip_text(value[:4])


SCOPE_LINK = 253


def classless_routes(value: bytes) -> list[tuple[str, str]] | None:
    """Option 121 (RFC 3442) as (dst, gw); None if it does not parse."""
    routes = []
    i = 0
    while i < len(value):
        width = value[i]
        if width > 32:
            return None
        octets = (width + 7) // 8
        if i + 1 + octets + 4 > len(value):
            return None
        dst = value[i + 1 : i + 1 + octets] + b"\0" * (4 - octets)
        gw = value[i + 1 + octets : i + 5 + octets]
        routes.append((f"{ip_text(dst)}/{width}", ip_text(gw)))
        i += 5 + octets
    return routes


def _classful_prefix(first: int) -> int | None:
    if first < 128:
        return 8
    if first < 192:
        return 16
    if first < 224:
        return 24
    return None  # class D/E: no default mask


def static_routes(value: bytes) -> list[tuple[str, str]]:
    """Option 33: (destination, router) pairs, classful destinations."""
    routes = []
    for i in range(0, len(value) - 7, 8):
        dst, gw = value[i : i + 4], value[i + 4 : i + 8]
        prefix = _classful_prefix(dst[0])
        if prefix is not None:
            routes.append((f"{ip_text(dst)}/{prefix}", ip_text(gw)))
    return routes


def routes(ack: Packet) -> list[tuple[str, str, int | None]]:
    """(dst, gw, scope) of the lease: option 121 alone when it has routes
    (RFC 3442: then option 33 and the router option are ignored; a 0.0.0.0
    next hop is on-link), else option 33 plus a default route via the first
    router."""
    opt121 = ack.options.get(OPT_CLASSLESS_ROUTES)
    if opt121 is not None:
        parsed = classless_routes(opt121)
        if parsed:
            return [(d, g, SCOPE_LINK if g == "0.0.0.0" else None) for d, g in parsed]
    out: list[tuple[str, str, int | None]] = [
        (d, g, None) for d, g in static_routes(ack.options.get(OPT_STATIC_ROUTES, b""))
    ]
    gw = gateway(ack)
    if gw is not None:
        out.append(("0.0.0.0/0", gw, None))
    return out


DEFAULT_LEASE_TIME = 3600


def _seconds(ack: Packet, code: int) -> int | None:
    value = ack.options.get(code)
    if value is None or len(value) != 4:
        return None
    return int.from_bytes(value, "big")


def timers(ack: Packet) -> tuple[int, int, int]:
    """(T1, T2, lease) in seconds: options 58, 59, 51; defaults 50%, 85% and
    one hour (RFC 2131 4.4.5); a T2 past the lease or a T1 past T2 is
    replaced by its default."""
    lease = _seconds(ack, OPT_LEASE_TIME)
    if lease is None:
        lease = DEFAULT_LEASE_TIME
    t2 = _seconds(ack, OPT_REBINDING_TIME)
    if t2 is None or t2 > lease:
        t2 = lease * 85 // 100
    t1 = _seconds(ack, OPT_RENEWAL_TIME)
    if t1 is None or t1 > t2:
        t1 = min(lease // 2, t2)
    return t1, t2, lease
