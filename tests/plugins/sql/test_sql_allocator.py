"""The allocator in-process on a real SQLite file: random ADD/DEL/GC runs
of three nodes against the invariants the database must keep."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.ipam.host_local.allocator import Range, RangeSet
from pycni.plugins.ipam.sql.allocator import Attachment, allocate, gc, release
from pycni.plugins.ipam.sql.blocks import block_span, set_usable
from pycni.plugins.ipam.sql.conf import DatabaseConfig
from pycni.plugins.ipam.sql.sqlite import open_engine
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, parse_addr

RSET = RangeSet([Range.canonical(IPNet.parse("198.18.0.0/27"), gateway=parse_addr("198.18.0.9"))])
NODES = ["pysq-a", "pysq-b", "pysq-c"]

ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "add", "del", "gc"]),
        st.sampled_from(NODES),
        st.integers(0, 40),
    ),
    max_size=60,
)


def check_invariants(engine, live: dict[str, tuple[str, int]]) -> None:
    tx = engine.read()
    try:
        leases = tx.rows("SELECT ip, node, container_id, block FROM leases")
        blocks = {
            bid: (cidr, node) for bid, cidr, node in tx.rows("SELECT id, cidr, node FROM blocks")
        }
    finally:
        tx.rollback()
    assert len({ip for ip, *_ in leases}) == len(leases)
    assert {cid: (node, parse_addr(ip)[1]) for ip, node, cid, _ in leases} == live
    for ip, _, _, bid in leases:
        assert set_usable(RSET, *parse_addr(ip))
        cidr, _ = blocks[bid]
        base, _, plen = cidr.partition("/")
        lo = parse_addr(base)[1]
        assert lo <= parse_addr(ip)[1] < lo + block_span(4, int(plen))
    assert {bid for *_, bid in leases} == set(blocks)  # no empty block is kept
    cidrs = [cidr for cidr, _ in blocks.values()]
    assert len(set(cidrs)) == len(cidrs)


@settings(max_examples=60, deadline=None)
@given(ops, st.sampled_from([28, 29, 30]))
def test_random_runs_keep_the_invariants(steps, prefix):
    with tempfile.TemporaryDirectory(prefix="pysq-") as tmp:
        engine = open_engine(DatabaseConfig("sqlite", str(Path(tmp) / "ipam.db")), create=True)
        assert engine is not None
        live: dict[str, tuple[str, int]] = {}
        try:
            for op, node, n in steps:
                cid = f"pysq-{n}"
                tx = engine.write()
                try:
                    if op == "add":
                        try:
                            value = allocate(
                                tx, Attachment("pysqnet", node, cid, "eth0"), 0, RSET, prefix, None
                            )
                        except CNIError as err:
                            full = len(live) == 28  # /27 minus network, gateway, broadcast
                            assert cid in live or full, err.msg
                            continue
                        assert cid not in live
                        live[cid] = (node, value)
                    elif op == "del":
                        release(tx, "pysqnet", cid, "eth0")
                        live.pop(cid, None)
                    else:
                        keep = {(c, "eth0") for c, (nd, _) in live.items() if nd != node}
                        keep |= {(c, "eth0") for c in list(live)[::2]}
                        gc(tx, "pysqnet", node, keep)
                        live = {
                            c: v for c, v in live.items() if v[0] != node or (c, "eth0") in keep
                        }
                    tx.commit()
                finally:
                    tx.rollback()
                check_invariants(engine, live)
        finally:
            engine.close()
