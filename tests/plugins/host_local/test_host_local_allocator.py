"""host-local allocation: iteration order, the store, allocator properties."""

from __future__ import annotations

import os
import tempfile
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.ipam.host_local.allocator import (
    Allocator,
    Range,
    RangeSet,
    free_count,
    iterate,
)
from pycni.plugins.ipam.host_local.store import Store, owner_bytes, parse_owner
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, ip_text, parse_addr


def rng(
    subnet: str, start: str | None = None, end: str | None = None, gateway: str | None = None
) -> Range:
    return Range.canonical(
        IPNet.parse(subnet),
        start and parse_addr(start),
        end and parse_addr(end),
        gateway and parse_addr(gateway),
    )


def order(rset: RangeSet, last: str | None = None, n: int | None = None) -> list[str]:
    it = iterate(rset, parse_addr(last) if last else None)
    return [ip_text(r.family, v) for r, v in islice(it, n)]


def hosts(prefix: str, *nums: int) -> list[str]:
    return [f"{prefix}{n}" for n in nums]


# -- iteration order ------------------------------------------------------------------------


SMALL = RangeSet([rng("198.18.0.0/29")])  # .1 (gateway) .. .6, .7 is the broadcast


def test_starts_at_range_start_skipping_gateway_and_broadcast():
    assert order(SMALL) == hosts("198.18.0.", 2, 3, 4, 5, 6)


def test_resumes_after_last_reserved_and_tries_it_last():
    assert order(SMALL, "198.18.0.3") == hosts("198.18.0.", 4, 5, 6, 2, 3)


def test_last_reserved_at_the_end_wraps_around():
    assert order(SMALL, "198.18.0.6") == hosts("198.18.0.", 2, 3, 4, 5, 6)


def test_last_reserved_outside_the_set_starts_at_range_start():
    assert order(SMALL, "198.18.1.3") == hosts("198.18.0.", 2, 3, 4, 5, 6)
    assert order(SMALL, "fd00::3") == hosts("198.18.0.", 2, 3, 4, 5, 6)
    # Inside the subnet but outside [rangeStart, rangeEnd] is outside too.
    narrow = RangeSet([rng("198.18.0.0/24", "198.18.0.10", "198.18.0.12")])
    assert order(narrow, "198.18.0.200") == hosts("198.18.0.", 10, 11, 12)


def test_gateway_in_the_middle_of_a_range_is_skipped():
    rset = RangeSet([rng("198.18.0.0/29", gateway="198.18.0.4")])
    assert order(rset) == hosts("198.18.0.", 1, 2, 3, 5, 6)
    assert order(rset, "198.18.0.3") == hosts("198.18.0.", 5, 6, 1, 2, 3)


def test_last_reserved_equal_to_gateway_still_resumes_after_it():
    assert order(SMALL, "198.18.0.1") == hosts("198.18.0.", 2, 3, 4, 5, 6)


def test_multi_range_set_advances_and_wraps():
    rset = RangeSet(
        [
            rng("198.18.0.0/24", "198.18.0.10", "198.18.0.12"),
            rng("198.18.5.0/24", "198.18.5.20", "198.18.5.21"),
            rng("198.18.9.0/30"),
        ]
    )
    everything = [
        "198.18.0.10",
        "198.18.0.11",
        "198.18.0.12",
        "198.18.5.20",
        "198.18.5.21",
        "198.18.9.2",
    ]
    assert order(rset) == everything
    assert order(rset, "198.18.0.12") == everything[3:] + everything[:3]
    assert order(rset, "198.18.5.20") == everything[4:] + everything[:4]
    assert order(rset, "198.18.9.2") == everything


def test_ipv6_range_includes_last_address():
    rset = RangeSet([rng("fd00::/125")])
    assert order(rset) == [f"fd00::{n}" for n in range(2, 8)]


def test_single_address_range_that_is_the_gateway_yields_nothing():
    rset = RangeSet([rng("198.18.0.0/24", "198.18.0.1", "198.18.0.1")])
    assert order(rset) == []
    assert order(rset, "198.18.0.1") == []


def test_huge_ipv6_range_is_lazy():
    rset = RangeSet([rng("fd00::/8")])
    assert order(rset, "fd00::ffff", n=2) == ["fd00::1:0", "fd00::1:1"]


# -- the store and the allocator ------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path), "net")
    s.lock(create=True)
    yield s
    s.unlock()


def files(store: Store) -> dict[str, bytes]:
    return {n: open(os.path.join(store.dir, n), "rb").read() for n in sorted(store.names())}


def test_reserve_writes_go_format(store):
    rset = RangeSet([rng("198.18.0.0/24")])
    r, value = Allocator(rset, store, 3).get("ctr1", "eth0")
    assert ip_text(4, value) == "198.18.0.2" and r is rset.ranges[0]
    assert files(store) == {
        "198.18.0.2": b"ctr1\r\neth0",
        "last_reserved_ip.3": b"198.18.0.2",
        "lock": b"",
    }
    assert os.stat(os.path.join(store.dir, "198.18.0.2")).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(store.dir, "198.18.0.2")).st_nlink == 1
    assert os.stat(store.dir).st_mode & 0o777 == 0o755


def test_allocator_round_robin_and_exhaustion(store):
    rset = RangeSet([rng("198.18.0.0/29")])
    alloc = Allocator(rset, store, 0)
    got = [ip_text(4, alloc.get(f"c{i}", "eth0")[1]) for i in range(5)]
    assert got == hosts("198.18.0.", 2, 3, 4, 5, 6)
    with pytest.raises(CNIError) as info:
        alloc.get("c9", "eth0")
    assert info.value.msg == "no IP addresses available in range set: 198.18.0.1-198.18.0.6"
    store.remove("198.18.0.3")
    assert ip_text(4, alloc.get("c10", "eth0")[1]) == "198.18.0.3"


def test_round_robin_does_not_reuse_a_just_released_address(store):
    rset = RangeSet([rng("198.18.0.0/29")])
    alloc = Allocator(rset, store, 0)
    assert ip_text(4, alloc.get("a", "eth0")[1]) == "198.18.0.2"
    store.remove("198.18.0.2")
    assert ip_text(4, alloc.get("b", "eth0")[1]) == "198.18.0.3"


def test_requested_address(store):
    rset = RangeSet([rng("198.18.0.0/24")])
    alloc = Allocator(rset, store, 0)
    assert alloc.get("a", "eth0", parse_addr("198.18.0.77"))[1] == parse_addr("198.18.0.77")[1]
    assert files(store)["last_reserved_ip.0"] == b"198.18.0.77"
    with pytest.raises(CNIError) as info:
        alloc.get("b", "eth0", parse_addr("198.18.0.77"))
    assert info.value.msg == (
        "requested IP address 198.18.0.77 is not available in range set 198.18.0.1-198.18.0.254"
    )
    with pytest.raises(CNIError) as info:
        alloc.get("b", "eth0", parse_addr("198.18.0.1"))
    assert info.value.msg == "requested ip 198.18.0.1 is subnet's gateway"


def test_duplicate_allocation(store):
    rset = RangeSet([rng("198.18.0.0/24")])
    alloc = Allocator(rset, store, 0)
    alloc.get("a", "eth0")
    owned = [addr for _, addr, _ in store.owned("a", "eth0")]
    with pytest.raises(CNIError) as info:
        alloc.get("a", "eth0", owned=owned)
    assert info.value.msg == (
        "198.18.0.2 has been allocated to a, duplicate allocation is not allowed"
    )


def test_owned_matches_trimmed_content_and_legacy_files(store):
    for name, content in {
        "198.18.0.5": b"a\r\neth0\n",
        "198.18.0.6": b"  a  ",
        "198.18.0.7": b"a\r\neth1",
        "198.18.0.8": b"b\r\neth0",
        "last_reserved_ip.0": b"a",
        "junk": b"a\r\neth0",
    }.items():
        with open(os.path.join(store.dir, name), "wb") as f:
            f.write(content)
    assert sorted((n, legacy) for n, _, legacy in store.owned("a", "eth0")) == [
        ("198.18.0.5", False),
        ("198.18.0.6", True),
    ]


def test_last_reserved_is_read_exactly(store):
    with open(os.path.join(store.dir, "last_reserved_ip.0"), "w") as f:
        f.write("198.18.0.4\n")
    assert store.last_reserved(0) is None
    with open(os.path.join(store.dir, "last_reserved_ip.0"), "w") as f:
        f.write("198.18.0.4")
    assert store.last_reserved(0) == parse_addr("198.18.0.4")


def test_stale_temp_file_is_removed_and_never_truncates_a_reservation(tmp_path):
    s = Store(str(tmp_path), "net")
    s.lock(create=True)
    rset = RangeSet([rng("198.18.0.0/29")])
    Allocator(rset, s, 0).get("a", "eth0")
    s.unlock()
    # A process killed between link() and unlink() leaves a second name.
    os.link(os.path.join(s.dir, "198.18.0.2"), os.path.join(s.dir, ".pycni-reserve.tmp"))
    s.lock()
    Allocator(rset, s, 0).get("b", "eth0")
    s.unlock()
    assert files(s) == {
        "198.18.0.2": b"a\r\neth0",
        "198.18.0.3": b"b\r\neth0",
        "last_reserved_ip.0": b"198.18.0.3",
        "lock": b"",
    }


def test_owner_format_round_trip():
    assert owner_bytes(" ctr ", "eth0") == b"ctr\r\neth0"
    assert parse_owner(b"ctr\r\neth0\n") == ("ctr", "eth0")
    assert parse_owner(b"ctr\n") == ("ctr", None)
    assert parse_owner(b"") == ("", None)


def test_free_count():
    rset = RangeSet([rng("198.18.0.0/29"), rng("198.18.1.0/30", gateway="198.18.1.9")])
    assert rset.size() == 5 + 2
    taken = [
        parse_addr(a) for a in ("198.18.0.1", "198.18.0.2", "198.18.1.1", "198.18.9.9", "fd00::2")
    ]
    assert free_count(rset, taken) == 5


def test_ip_text_matches_go_formatting():
    assert ip_text(6, parse_addr("::1:2")[1]) == "::1:2"  # glibc: ::0.1.0.2
    assert ip_text(6, parse_addr("fd00:0:0:0:0:0:0:1")[1]) == "fd00::1"
    assert ip_text(4, parse_addr("::ffff:198.18.0.1")[1]) == "198.18.0.1"


# -- properties -----------------------------------------------------------------------------


@st.composite
def range_sets(draw) -> RangeSet:
    """1-3 non-overlapping small ranges of one family, gateways anywhere."""
    family = draw(st.sampled_from([4, 6]))
    base = "198.18.{}.0/{}" if family == 4 else "fd00:0:0:{:x}::/{}"
    ranges = []
    for block in draw(st.lists(st.integers(0, 20), min_size=1, max_size=3, unique=True)):
        plen = draw(st.integers(28, 30) if family == 4 else st.integers(124, 126))
        net = IPNet.parse(base.format(block, plen))
        lo, hi = net.network, net.last
        start = draw(st.integers(lo, hi))
        end = draw(st.integers(start, hi))
        gateway = draw(st.integers(lo, hi))
        ranges.append(Range.canonical(net, (family, start), (family, end), (family, gateway)))
    return RangeSet(ranges)


@settings(max_examples=60, deadline=None)
@given(
    rset=range_sets(),
    releases=st.lists(st.integers(0, 1000), max_size=8),
    last_offset=st.none() | st.integers(-3, 40),
)
def test_allocator_properties(rset, releases, last_offset):
    """Never the gateway, always inside a range, never an address twice while
    it is reserved, and every address is used before exhaustion."""
    family = rset.family
    allocatable = {v for r in rset.ranges for v in range(r.start, r.end + 1) if v != r.gateway}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp, "net")
        store.lock(create=True)
        try:
            if last_offset is not None:
                first = rset.ranges[0].start
                store.write_last_reserved(0, ip_text(family, first + last_offset))
            alloc = Allocator(rset, store, 0)
            held: dict[int, str] = {}

            def take(n: int) -> None:
                for _ in range(n):
                    r, value = alloc.get(f"c{len(held)}-{value_count[0]}", "eth0")
                    value_count[0] += 1
                    assert value != r.gateway
                    assert r.contains(family, value) and r in rset.ranges
                    assert value not in held
                    held[value] = ip_text(family, value)

            value_count = [0]
            take(len(allocatable) // 2)
            for i in releases:
                if held:
                    value = sorted(held)[i % len(held)]
                    store.remove(held.pop(value))
            take(len(allocatable) - len(held))
            assert set(held) == allocatable
            assert free_count(rset, [(family, v) for v in held]) == 0
            with pytest.raises(CNIError) as info:
                alloc.get("late", "eth0")
            assert info.value.msg == f"no IP addresses available in range set: {rset}"
        finally:
            store.unlock()
