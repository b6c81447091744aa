"""Compact IP and CIDR arithmetic on integers.

`ipaddress` costs milliseconds to import in every plugin process; this is the
small part of it that CNI plugins need, built on socket.inet_pton/inet_ntop.
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


def canonical_ip(text: str) -> str:
    return format_ip(*parse_ip(text))


def is_ip(text: object) -> bool:
    try:
        parse_ip(text)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


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
