"""Block and address arithmetic (blocks.py), held against brute force."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pycni.plugins.ipam.host_local.allocator import Range, RangeError, RangeSet
from pycni.plugins.ipam.sql.blocks import (
    addresses,
    block_base,
    block_span,
    capacity,
    free_block,
    set_usable,
    usable,
)
from pycni.spec.ipnet import IPNet, parse_addr

BASE4 = parse_addr("198.18.0.0")[1]
BASE6 = parse_addr("fd00::")[1]


@st.composite
def range_sets(draw):
    """A one-range set in 198.18.0.0/15 or fd00::/8 with optional start,
    end and gateway, and a block prefix within its subnet."""
    family = draw(st.sampled_from([4, 6]))
    bits = 32 if family == 4 else 128
    plen = draw(st.integers(bits - 10, bits - 2))
    base = BASE4 if family == 4 else BASE6
    net = IPNet(family, base + (draw(st.integers(0, 3)) << (bits - plen)), plen)
    size = 1 << (bits - plen)
    lo = draw(st.integers(0, size - 1))
    hi = draw(st.integers(lo, size - 1))
    gw = draw(st.one_of(st.none(), st.integers(0, size - 1)))
    start = (family, net.network + lo) if draw(st.booleans()) else None
    end = (family, net.network + hi) if draw(st.booleans()) else None
    try:
        rng = Range.canonical(net, start, end, None if gw is None else (family, net.network + gw))
    except RangeError:
        assume(False)  # rangeEnd below the default rangeStart
    prefix = draw(st.integers(plen, bits))
    return RangeSet([rng]), prefix


def brute(rset: RangeSet, lo: int, hi: int) -> list[int]:
    r = rset.ranges[0]
    out = []
    for v in range(lo, hi + 1):
        if not r.start <= v <= r.end or v == r.gateway or v == r.subnet.network:
            continue
        if r.family == 4 and v == r.subnet.last:
            continue
        out.append(v)
    return out


@settings(max_examples=200, deadline=None)
@given(range_sets())
def test_block_addresses_match_brute_force(case):
    rset, prefix = case
    r = rset.ranges[0]
    span = block_span(r.family, prefix)
    base = block_base(r.family, prefix, r.subnet.network)
    total = 0
    while base <= r.subnet.last:
        expected = brute(rset, base, base + span - 1)
        assert list(addresses(rset, prefix, base)) == expected
        assert capacity(rset, prefix, base) == len(expected)
        assert all(usable(r, v) and set_usable(rset, r.family, v) for v in expected)
        total += len(expected)
        base += span
        if total > 4096:
            return  # large IPv6 blocks: the first ones are enough
    assert capacity(rset, prefix) == total


@settings(max_examples=200, deadline=None)
@given(range_sets(), st.data())
def test_free_block_is_lowest_untaken_usable_block(case, data):
    rset, prefix = case
    r = rset.ranges[0]
    span = block_span(r.family, prefix)
    first = block_base(r.family, prefix, r.start)
    count = min((r.end - first) // span + 1, 64)
    if count <= 0:  # rangeStart past the default rangeEnd: an empty range
        assert free_block(rset, prefix, []) is None
        return
    blocks = [first + i * span for i in range(count)]
    taken_idx = data.draw(st.sets(st.integers(0, count - 1)))
    taken = [(blocks[i], blocks[i] + span - 1) for i in taken_idx]
    got = free_block(rset, prefix, taken)
    expected = next(
        (b for i, b in enumerate(blocks) if i not in taken_idx and capacity(rset, prefix, b)),
        None,
    )
    if expected is None and count == 64 and r.end >= first + 64 * span:
        return  # more blocks beyond what this test enumerates
    assert got == expected
    if got is not None:
        assert got % span == 0
        assert not any(lo <= got + span - 1 and got <= hi for lo, hi in taken)


def test_free_block_jumps_past_larger_taken_blocks():
    net = IPNet.parse("198.18.0.0/24")
    rset = RangeSet([Range.canonical(net)])
    # a /25 claimed under an older blockSize covers the first two /26s
    taken = [(BASE4, BASE4 + 127)]
    assert free_block(rset, 26, taken) == BASE4 + 128
    assert free_block(rset, 26, [*taken, (BASE4 + 128, BASE4 + 191)]) == BASE4 + 192
    assert free_block(rset, 26, [(BASE4, BASE4 + 255)]) is None


def test_huge_ipv6_subnet_costs_nothing():
    rset = RangeSet([Range.canonical(IPNet.parse("fd00::/8"))])
    taken = [(BASE6 + i * 64, BASE6 + i * 64 + 63) for i in range(100)]
    assert free_block(rset, 122, taken) == BASE6 + 100 * 64
    assert capacity(rset, 122, BASE6) == 62  # network address and gateway ::1
    assert capacity(rset, 0) == (1 << 120) - 2


def test_ipv4_block_never_yields_gateway_network_or_broadcast():
    rset = RangeSet([Range.canonical(IPNet.parse("198.18.0.0/30"))])
    assert list(addresses(rset, 30, BASE4)) == [BASE4 + 2]
    assert capacity(rset, 32, BASE4 + 3) == 0
