"""Ranges, range sets and the round-robin address iterator of host-local.

Addresses are (family, int) pairs; text is produced only for file names,
messages and results, in Go's canonical form (so the store is shared with
the Go plugin). The semantics are the reference's `pkg/allocator`: a range
is the inclusive interval [rangeStart, rangeEnd] of its subnet, the gateway
of a range is never handed out, and iteration resumes after the last
reserved address of the set, wrapping across the set's ranges.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INTERNAL, CNIError
from pycni.spec.ipnet import IPNet, ip_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    from pycni.plugins.ipam.host_local.store import Store


class RangeError(ValueError):
    """A range or range set that cannot be used; the message is the reference's."""


class Range:
    """One canonical range: subnet (network address), start, end, gateway."""

    __slots__ = ("end", "family", "gateway", "prefixlen", "start", "subnet")

    def __init__(self, subnet: IPNet, start: int, end: int, gateway: int) -> None:
        self.subnet = subnet
        self.family = subnet.family
        self.prefixlen = subnet.prefixlen
        self.start = start
        self.end = end
        self.gateway = gateway

    @classmethod
    def canonical(
        cls,
        subnet: IPNet,
        start: tuple[int, int] | None = None,
        end: tuple[int, int] | None = None,
        gateway: tuple[int, int] | None = None,
    ) -> Range:
        """Range.Canonicalize of the reference: defaults and validation.

        `subnet` keeps the host bits as written; the addresses are parsed
        (family, value) pairs or None for "not set". Raises RangeError.
        """
        family = subnet.family
        width = 32 if family == 4 else 128
        if subnet.prefixlen > width - 2:
            raise RangeError(f"Network {subnet} too small to allocate from")
        if family == 6 and subnet.ip >> 32 == 0xFFFF:
            raise RangeError("IPNet IP and Mask version mismatch")
        network = subnet.network
        if subnet.ip != network:
            raise RangeError(
                f"Network has host bits set. For a subnet mask of length {subnet.prefixlen} "
                f"the network address is {ip_text(family, network)}"
            )
        net = IPNet(family, network, subnet.prefixlen)
        if gateway is None:
            gw = network + 1
        elif gateway[0] != family:
            raise RangeError(
                f"gateway {ip_text(*gateway)} is not an IPv{family} address like subnet {net}"
            )
        else:
            gw = gateway[1]
        if start is None:
            first = network + 1
        elif not net.contains(*start):
            raise RangeError(f"RangeStart {ip_text(*start)} not in network {net}")
        else:
            first = start[1]
        if end is None:
            last = net.last - 1 if family == 4 else net.last
        elif not net.contains(*end):
            raise RangeError(f"RangeEnd {ip_text(*end)} not in network {net}")
        elif end[1] < first:
            raise RangeError(
                f"RangeEnd {ip_text(*end)} is lower than RangeStart {ip_text(family, first)}"
            )
        else:
            last = end[1]
        return cls(net, first, last, gw)

    def ip_config(self, value: int):
        """The result entry of address `value` of this range: CIDR and gateway."""
        from pycni.spec.result import IPConfig

        return IPConfig(
            f"{ip_text(self.family, value)}/{self.prefixlen}", ip_text(self.family, self.gateway)
        )

    def contains(self, family: int, value: int) -> bool:
        return family == self.family and self.start <= value <= self.end

    def overlaps(self, other: Range) -> bool:
        return self.family == other.family and self.start <= other.end and other.start <= self.end

    def size(self) -> int:
        """Addresses this range can hand out (all but its gateway)."""
        n = self.end - self.start + 1
        return n - 1 if self.start <= self.gateway <= self.end else n

    def __str__(self) -> str:
        return f"{ip_text(self.family, self.start)}-{ip_text(self.family, self.end)}"

    def __repr__(self) -> str:
        return f"Range({self.subnet}, {self}, gw={ip_text(self.family, self.gateway)})"


class RangeSet:
    """A non-empty, single-family list of non-overlapping ranges."""

    __slots__ = ("family", "ranges")

    def __init__(self, ranges: list[Range]) -> None:
        if not ranges:
            raise RangeError("empty range set")
        family = ranges[0].family
        if any(r.family != family for r in ranges):
            raise RangeError("mixed address families")
        for i, r1 in enumerate(ranges):
            for r2 in ranges[i + 1 :]:
                if r1.overlaps(r2):
                    raise RangeError(f"subnets {r1} and {r2} overlap")
        self.ranges = ranges
        self.family = family

    def range_for(self, family: int, value: int) -> Range | None:
        for r in self.ranges:
            if r.contains(family, value):
                return r
        return None

    def contains(self, family: int, value: int) -> bool:
        return self.range_for(family, value) is not None

    def overlaps(self, other: RangeSet) -> bool:
        return any(r1.overlaps(r2) for r1 in self.ranges for r2 in other.ranges)

    def is_allocatable(self, family: int, value: int) -> bool:
        r = self.range_for(family, value)
        return r is not None and value != r.gateway

    def size(self) -> int:
        return sum(r.size() for r in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)

    def __repr__(self) -> str:
        return f"RangeSet({self})"


def iterate(rset: RangeSet, last: tuple[int, int] | None = None) -> Iterator[tuple[Range, int]]:
    """Candidate addresses in the reference's order (RangeIter.Next).

    Starts right after `last` when the set contains it (so `last` itself is
    tried last), else at the first range's rangeStart; walks up each range,
    jumps from a rangeEnd to the next range's rangeStart (wrapping) and skips
    each range's gateway; ends after one full lap.
    """
    ranges = rset.ranges
    count = len(ranges)
    idx = 0
    cur: int | None = None
    start: int | None = ranges[0].start
    if last is not None:
        for i, r in enumerate(ranges):
            if r.contains(*last):
                idx, cur, start = i, last[1], None
                break
    r = ranges[idx]
    if cur is None:
        cur = start = r.start
        if cur != r.gateway:
            yield r, cur
    while True:
        if cur == r.end:
            idx = (idx + 1) % count
            r = ranges[idx]
            cur = r.start
        else:
            cur += 1
        if start is None:
            start = cur
        elif cur == start:
            return
        if cur != r.gateway:
            yield r, cur


class Allocator:
    """Hands out addresses of one range set (index `idx`) from a locked store."""

    __slots__ = ("idx", "rset", "store")

    def __init__(self, rset: RangeSet, store: Store, idx: int) -> None:
        self.rset = rset
        self.store = store
        self.idx = idx

    def get(
        self,
        container_id: str,
        ifname: str,
        requested: tuple[int, int] | None = None,
        owned: list[tuple[int, int]] | None = None,
    ) -> tuple[Range, int]:
        """Reserve one address: `requested` if given, else the next free one.

        `owned` are the addresses the store already holds for this
        attachment (the duplicate-allocation check). The store must be
        locked. Returns (range, address); raises CNIError with the
        reference's messages.
        """
        rset, store = self.rset, self.store
        if requested is not None:
            family, value = requested
            r = rset.range_for(family, value)
            if r is None:
                raise CNIError(ERR_INTERNAL, f"{ip_text(family, value)} not in range set {rset}")
            text = ip_text(family, value)
            if value == r.gateway:
                raise CNIError(ERR_INTERNAL, f"requested ip {text} is subnet's gateway")
            if not store.reserve(text, container_id, ifname, self.idx):
                raise CNIError(
                    ERR_INTERNAL,
                    f"requested IP address {text} is not available in range set {rset}",
                )
            return r, value
        for family, value in owned or ():
            if rset.contains(family, value):
                raise CNIError(
                    ERR_INTERNAL,
                    f"{ip_text(family, value)} has been allocated to "
                    f"{container_id}, duplicate allocation is not allowed",
                )
        last = store.last_reserved(self.idx)
        family = rset.family
        for r, value in iterate(rset, last):
            if store.reserve(ip_text(family, value), container_id, ifname, self.idx):
                return r, value
        raise CNIError(ERR_INTERNAL, f"no IP addresses available in range set: {rset}")


def free_count(rset: RangeSet, reserved: list[tuple[int, int]]) -> int:
    """Addresses of `rset` that are neither a gateway nor in `reserved`."""
    taken = {a for a in reserved if rset.is_allocatable(*a)}
    return rset.size() - len(taken)


def check_owned(
    plugin: str, container_id: str, owned: list, range_sets: list, prev, held: str, to: str
) -> None:
    """CHECK of an IPAM plugin that hands out from range sets (host-local,
    sql): every range set holds an address of the attachment (`owned`), and
    so does every prevResult address that lies in a range set. `held` and
    `to` word the messages ("reserved", "for"; "leased", "to")."""
    if not owned:
        raise CNIError(
            ERR_INTERNAL, f"{plugin}: Failed to find address added by container {container_id}"
        )
    for idx, rset in enumerate(range_sets):
        if not any(rset.contains(*a) for a in owned):
            raise CNIError(
                ERR_INTERNAL,
                f"{plugin}: no address of container {container_id} {held} "
                f"in range set {idx} ({rset})",
            )
    from pycni.spec.ipnet import parse_addr

    for ipc in prev.ips if prev is not None else ():
        addr = parse_addr(ipc.ip)
        if addr not in owned and any(s.contains(*addr) for s in range_sets):
            raise CNIError(
                ERR_INTERNAL,
                f"{plugin}: address {ip_text(*addr)} of prevResult "
                f"is not {held} {to} container {container_id}",
            )
