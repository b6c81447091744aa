"""Block and address arithmetic of a range set; no I/O, no database.

A pool is one range set of one network. Its blocks are the aligned
`/blockSize` networks that meet some range's [rangeStart, rangeEnd]; a
block's usable addresses are those inside a range of the set that are
neither the range's gateway nor its subnet's network address nor (IPv4) its
broadcast address. Addresses are (family, int) pairs as in host-local.
"""

from __future__ import annotations

from pycni.spec.ipnet import ip_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    from pycni.plugins.ipam.host_local.allocator import Range, RangeSet


def width(family: int) -> int:
    return 32 if family == 4 else 128


def block_span(family: int, prefix: int) -> int:
    """Addresses in one block of prefix length `prefix`."""
    return 1 << (width(family) - prefix)


def block_base(family: int, prefix: int, value: int) -> int:
    """The first address of the block that holds `value`."""
    return value & ~(block_span(family, prefix) - 1)


def block_cidr(family: int, prefix: int, base: int) -> str:
    return f"{ip_text(family, base)}/{prefix}"


def usable(rng: Range, value: int) -> bool:
    """Whether `rng` may hand out `value` (in range, not reserved)."""
    if not rng.start <= value <= rng.end or value == rng.gateway:
        return False
    if value == rng.subnet.network:
        return False
    return not (rng.family == 4 and value == rng.subnet.last)


def set_usable(rset: RangeSet, family: int, value: int) -> bool:
    return family == rset.family and any(usable(r, value) for r in rset.ranges)


def _reserved_in(rng: Range, lo: int, hi: int) -> int:
    """Addresses of [lo, hi] (already clipped to the range) it never hands out."""
    special = {rng.gateway, rng.subnet.network}
    if rng.family == 4:
        special.add(rng.subnet.last)
    return sum(1 for v in special if lo <= v <= hi)


def range_capacity(rng: Range, lo: int | None = None, hi: int | None = None) -> int:
    """Usable addresses of `rng` within [lo, hi] (default: the whole range)."""
    first = rng.start if lo is None else max(lo, rng.start)
    last = rng.end if hi is None else min(hi, rng.end)
    if last < first:
        return 0
    return last - first + 1 - _reserved_in(rng, first, last)


def capacity(rset: RangeSet, prefix: int, base: int | None = None) -> int:
    """Usable addresses of the block at `base`, or of the whole set."""
    if base is None:
        return sum(range_capacity(r) for r in rset.ranges)
    hi = base + block_span(rset.family, prefix) - 1
    return sum(range_capacity(r, base, hi) for r in rset.ranges)


def addresses(rset: RangeSet, prefix: int, base: int) -> Iterator[int]:
    """The usable addresses of one block, lowest first."""
    hi = base + block_span(rset.family, prefix) - 1
    for r in sorted(rset.ranges, key=lambda r: r.start):
        for value in range(max(base, r.start), min(hi, r.end) + 1):
            if usable(r, value):
                yield value


def free_block(rset: RangeSet, prefix: int, taken: list[tuple[int, int]]) -> int | None:
    """The lowest block with a usable address that meets no `taken` interval.

    `taken` are the [first, last] addresses of the pool's claimed blocks
    (they may have another prefix length, if the config's blockSize
    changed). Each range's blocks are walked upward, jumping past a taken
    interval; the walk is bounded by len(taken) plus the few blocks that
    hold only reserved addresses, so a /8 of IPv6 costs no more than a /24.
    """
    family = rset.family
    span = block_span(family, prefix)
    best: int | None = None
    for r in rset.ranges:
        base = block_base(family, prefix, r.start)
        while base <= r.end and (best is None or base < best):
            last = base + span - 1
            hit = max((hi for lo, hi in taken if lo <= last and base <= hi), default=None)
            if hit is not None:
                base = block_base(family, prefix, hit) + span
                continue
            if capacity(rset, prefix, base) > 0:
                best = base
                break
            base += span
    return best
