"""IP, CIDR and MAC text forms and arithmetic, in one place.

Addresses are integers here: `ipaddress` costs milliseconds to import in
every plugin process, and this is the small part of it CNI plugins need,
built on inet_pton/inet_ntop. MAC addresses are read as Go's net.ParseMAC.
"""

from __future__ import annotations

# The C module: `socket` would pull in enum and selectors (2 ms per exec).
from _socket import AF_INET, AF_INET6, inet_pton

_BITS = {4: 32, 6: 128}
_AF = {4: AF_INET, 6: AF_INET6}


def parse_ip(text: str) -> tuple[int, int]:
    """(family, value) of an IPv4 or IPv6 address; ValueError if invalid."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid IP address {text!r}")
    family = 6 if ":" in text else 4
    try:
        packed = inet_pton(_AF[family], text)
    except OSError:
        raise ValueError(f"invalid IP address {text!r}")
    if family == 4 and text.count(".") != 3:
        raise ValueError(f"invalid IP address {text!r}")
    return family, int.from_bytes(packed, "big")


def format_ip(family: int, value: int) -> str:
    """Canonical text as Go prints it (RFC 5952; never glibc's ::a.b.c.d)."""
    if family == 4:
        return ".".join(str(b) for b in value.to_bytes(4, "big"))
    return format_ip6(value.to_bytes(16, "big"))


def format_ip6(raw: bytes) -> str:
    groups = [raw[i] << 8 | raw[i + 1] for i in range(0, 16, 2)]
    best_start, best_len, start = -1, 1, -1
    for i, group in enumerate([*groups, 1]):
        if group == 0:
            if start < 0:
                start = i
        elif start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    parts = [format(g, "x") for g in groups]
    if best_start < 0:
        return ":".join(parts)
    return ":".join(parts[:best_start]) + "::" + ":".join(parts[best_start + best_len :])


def bits(family: int) -> int:
    return _BITS[family]


class IPNet:
    """An address with a prefix length; `ip` keeps the host bits."""

    __slots__ = ("family", "ip", "prefixlen")

    def __init__(self, family: int, ip: int, prefixlen: int) -> None:
        self.family = family
        self.ip = ip
        self.prefixlen = prefixlen

    @classmethod
    def parse(cls, text: str) -> IPNet:
        """Parse "addr/len"; ValueError naming the text if malformed."""
        if not isinstance(text, str) or "/" not in text:
            raise ValueError(f"invalid CIDR address: {text}")
        addr, _, plen = text.partition("/")
        family, value = parse_ip(addr)
        if not plen.isdigit() or not plen.isascii() or int(plen) > _BITS[family]:
            raise ValueError(f"invalid CIDR address: {text}")
        return cls(family, value, int(plen))

    @property
    def mask(self) -> int:
        width = _BITS[self.family]
        return ((1 << width) - 1) ^ ((1 << (width - self.prefixlen)) - 1)

    @property
    def network(self) -> int:
        return self.ip & self.mask

    @property
    def last(self) -> int:
        """Highest address of the subnet (the v4 broadcast)."""
        return self.network | (((1 << _BITS[self.family]) - 1) ^ self.mask)

    def contains(self, family: int, value: int) -> bool:
        return family == self.family and (value & self.mask) == self.network

    def contains_ip(self, text: str) -> bool:
        return self.contains(*parse_ip(text))

    def overlaps(self, other: IPNet) -> bool:
        return self.family == other.family and (
            self.contains(other.family, other.network) or other.contains(self.family, self.network)
        )

    @property
    def ip_str(self) -> str:
        return format_ip(self.family, self.ip)

    @property
    def network_str(self) -> str:
        return f"{format_ip(self.family, self.network)}/{self.prefixlen}"

    def with_ip(self, value: int) -> IPNet:
        return IPNet(self.family, value, self.prefixlen)

    def __str__(self) -> str:
        return f"{format_ip(self.family, self.ip)}/{self.prefixlen}"

    def __repr__(self) -> str:
        return f"IPNet({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IPNet) and (self.family, self.ip, self.prefixlen) == (
            other.family,
            other.ip,
            other.prefixlen,
        )

    def __hash__(self) -> int:
        return hash((self.family, self.ip, self.prefixlen))


def is_global_unicast(ip: str) -> bool:
    """Go's net.IP.IsGlobalUnicast."""
    family, v = parse_ip(ip)
    if family == 4:
        return not (
            v == 0xFFFFFFFF or v == 0 or v >> 24 == 127 or v >> 28 == 0xE or v >> 16 == 0xA9FE
        )
    return not (v == 0 or v == 1 or v >> 120 == 0xFF or v >> 118 == 0x3FA)


def parse_mac(value: str) -> str:
    """Go's net.ParseMAC (6, 8 or 20 bytes; ':' '-' or '.' separated) printed
    as lower-case colon-separated hex."""
    error = ValueError(f"address {value}: invalid MAC address")
    if len(value) < 14:
        raise error
    if value[2] in ":-":
        sep, width = value[2], 2
    elif value[4] == ".":
        sep, width = ".", 4
    else:
        raise error
    groups = value.split(sep)
    if any(len(g) != width for g in groups) or len(groups) * width // 2 not in (6, 8, 20):
        raise error
    hexdigits = "".join(groups)
    if not all(c in "0123456789abcdefABCDEF" for c in hexdigits):
        raise error
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2)).lower()


def parse_addr(text: str) -> tuple[int, int]:
    """(family, value) like Go's net.ParseIP + To4: IPv4-mapped IPv6 is IPv4."""
    family, value = parse_ip(text)
    if family == 6 and value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return family, value


def ip_text(family: int, value: int) -> str:
    """Go's net.IP.String(): the name of a reservation file."""
    if family == 6 and value >> 32 == 0xFFFF:
        family, value = 4, value & 0xFFFFFFFF
    return format_ip(family, value)


# -- Go's net.IP text forms (ParseIP, ParseCIDR, String) --------------------------------

_V4_IN_V6 = b"\x00" * 10 + b"\xff\xff"


def _parse_ip(text: str) -> tuple[str, int, int] | None:
    """(canonical text, family, bit length of the literal) or None."""
    if not isinstance(text, str):
        return None
    try:
        inet_pton(AF_INET, text)
        # inet_pton accepts only the dotted quad without leading zeros,
        # which is already Go's canonical form.
        return text, 4, 32
    except (OSError, ValueError):
        pass
    try:
        raw = inet_pton(AF_INET6, text)
    except (OSError, ValueError):
        return None
    if raw[:12] == _V4_IN_V6:
        # Go's net.IP treats IPv4-mapped addresses as IPv4 and prints them so.
        return ".".join(str(b) for b in raw[12:]), 4, 128
    return format_ip6(raw), 6, 128


def go_ip(text: str) -> tuple[str, int]:
    """(canonical text, family 4 or 6) of an IP as Go's net.ParseIP + String().

    Raises ValueError with Go's message "invalid IP address: <text>".
    """
    parsed = _parse_ip(text)
    if parsed is None:
        raise ValueError(f"invalid IP address: {text}")
    return parsed[0], parsed[1]


def go_cidr(text: str) -> tuple[str, int, int]:
    """(canonical host address, prefix length, family) of "ip/prefix" as CNI's
    types.ParseCIDR + IPNet.String() give it: the host bits are kept.

    Raises ValueError with Go's message "invalid CIDR address: <text>".
    """
    if isinstance(text, str):
        addr, slash, prefix = text.partition("/")
        digits = prefix.lstrip("0")
        parsed = _parse_ip(addr) if slash else None
        if (
            parsed is not None
            and prefix.isdigit()
            and prefix.isascii()
            and len(digits) <= 3
            and int(digits or "0") <= parsed[2]
        ):
            ip, family, width = parsed
            length = int(digits or "0")
            if family == 4 and width == 128:
                # Go keeps the last 32 bits of a v4-mapped mask.
                length = max(0, length - 96)
            return ip, length, family
    raise ValueError(f"invalid CIDR address: {text}")
