"""The verbs in-process (as the node daemon runs them) on both engines:
every test runs on SQLite and on PostgreSQL and expects the same results,
leases and blocks."""

from __future__ import annotations

import pytest

from support import sql_ipam
from support.sql_pg import call, conf_for, outcome, pg_blocks, pg_leases

TWO_SETS = [[{"subnet": "198.18.0.0/24"}], [{"subnet": "fd00::/64"}]]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> str:
    """A database reference conf_for understands: a path or a dsn."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "ipam.db")
    return request.getfixturevalue("pg_dsn")


def view(db: str) -> tuple[list[tuple], list[tuple]]:
    """(leases, blocks) as (ip, node, container, ifname) and (cidr, node)."""
    try:
        if "=" in db:
            return pg_leases(db), pg_blocks(db)
        return sql_ipam.leases(db), sql_ipam.blocks(db)
    except Exception:  # no database file / no tables yet
        return [], []


def test_add_check_del_dual_stack(db):
    conf = conf_for(
        db, TWO_SETS, routes=[{"dst": "0.0.0.0/0"}], dns={"nameservers": ["198.18.0.53"]}
    )
    result = call("ADD", conf)
    assert result == {
        "cniVersion": "1.1.0",
        "ips": [
            {"address": "198.18.0.2/24", "gateway": "198.18.0.1"},
            {"address": "fd00::2/64", "gateway": "fd00::1"},
        ],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["198.18.0.53"]},
    }
    assert call("ADD", conf, cid="pypg-c2")["ips"][0]["address"] == "198.18.0.3/24"
    code, msg = outcome("ADD", conf)
    assert code == 999 and "duplicate allocation is not allowed" in msg
    assert view(db) == (
        [
            ("198.18.0.2", "pypg-n1", "pypg-c1", "eth0"),
            ("fd00::2", "pypg-n1", "pypg-c1", "eth0"),
            ("198.18.0.3", "pypg-n1", "pypg-c2", "eth0"),
            ("fd00::3", "pypg-n1", "pypg-c2", "eth0"),
        ],
        [("198.18.0.0/26", "pypg-n1"), ("fd00::/122", "pypg-n1")],
    )
    assert call("CHECK", {**conf, "prevResult": result}) is None
    assert call("DEL", conf) is None
    assert call("DEL", conf) is None
    code, _ = outcome("CHECK", conf)
    assert code == 999
    call("DEL", conf, cid="pypg-c2")
    assert view(db) == ([], [])


def test_del_gc_check_status_before_any_add(db):
    conf = conf_for(db)
    assert call("DEL", conf) is None
    assert call("GC", {**conf, "cni.dev/valid-attachments": []}) is None
    assert call("STATUS", conf) is None
    assert outcome("CHECK", conf)[0] == 999
    assert view(db) == ([], [])


def test_requested_addresses(db):
    conf = conf_for(db)
    r = call("ADD", conf, args="IP=198.18.0.77")
    assert r["ips"][0]["address"] == "198.18.0.77/24"
    code, msg = outcome("ADD", conf, cid="pypg-c2", args="IP=198.18.0.77")
    assert code == 999 and "198.18.0.77 is not available" in msg, msg
    code, msg = outcome("ADD", conf, cid="pypg-c3", args="IP=198.18.0.1")
    assert code == 999 and "gateway" in msg
    code, msg = outcome("ADD", conf, cid="pypg-c4", args="IP=198.18.5.1")
    assert code == 999 and "failed to allocate all requested IPs: 198.18.5.1" in msg
    rc = {**conf, "runtimeConfig": {"ips": ["198.18.0.130/24"]}}
    assert call("ADD", rc, cid="pypg-c5")["ips"][0]["address"] == "198.18.0.130/24"
    assert call("ADD", conf, cid="pypg-c6")["ips"][0]["address"] == "198.18.0.64/24"
    assert view(db) == (
        [
            ("198.18.0.77", "pypg-n1", "pypg-c1", "eth0"),
            ("198.18.0.130", "pypg-n1", "pypg-c5", "eth0"),
            ("198.18.0.64", "pypg-n1", "pypg-c6", "eth0"),
        ],
        [("198.18.0.64/26", "pypg-n1"), ("198.18.0.128/26", "pypg-n1")],
    )


def test_nodes_get_their_own_blocks_then_borrow_then_exhaust(db):
    """A /28 in /30 blocks, two nodes: each claims blocks, then borrows
    once every block is claimed, then the pool is full (named)."""
    ranges = [[{"subnet": "198.18.0.0/28"}]]
    n1 = conf_for(db, ranges, node="pypg-n1", blockSize=30)
    n2 = conf_for(db, ranges, node="pypg-n2", blockSize=30)
    got = []
    for i in range(6):
        got.append(call("ADD", n1, cid=f"pypg-a{i}")["ips"][0]["address"])
    got.append(call("ADD", n2, cid="pypg-b0")["ips"][0]["address"])
    assert got == [
        "198.18.0.2/28",
        "198.18.0.3/28",
        "198.18.0.4/28",
        "198.18.0.5/28",
        "198.18.0.6/28",
        "198.18.0.7/28",
        "198.18.0.8/28",
    ]
    assert call("STATUS", n1) is None
    for i in range(6):  # .12-.14 in a new block, then .9-.11 borrowed from n2's
        call("ADD", n1, cid=f"pypg-a{i + 6}")
    code, msg = outcome("ADD", n2, cid="pypg-b1")
    assert code == 999 and "no IP addresses available in range set" in msg, msg
    code, msg = outcome("STATUS", n2)
    assert code == 50 and "no IP addresses available in range set 0" in msg
    leases, blocks = view(db)
    assert len(leases) == 13 and len({ip for ip, *_ in leases}) == 13
    assert sorted(blocks) == sorted(
        [
            ("198.18.0.0/30", "pypg-n1"),
            ("198.18.0.4/30", "pypg-n1"),
            ("198.18.0.8/30", "pypg-n2"),
            ("198.18.0.12/30", "pypg-n1"),
        ]
    )
    call("DEL", n2, cid="pypg-b0")  # its block keeps n1's borrowed leases
    assert ("198.18.0.8/30", "pypg-n2") in view(db)[1]
    for i in range(12):
        call("DEL", n1, cid=f"pypg-a{i}")
    assert view(db) == ([], [])


def test_gc_releases_this_nodes_stale_leases(db):
    n1 = conf_for(db, node="pypg-n1")
    n2 = conf_for(db, node="pypg-n2")
    for cid in ("pypg-c1", "pypg-c2", "pypg-c3"):
        call("ADD", n1, cid=cid)
    call("ADD", n2, cid="pypg-c9")
    valid = [{"containerID": "pypg-c2", "ifname": "eth0"}]
    assert call("GC", {**n1, "cni.dev/valid-attachments": valid}) is None
    assert view(db) == (
        [
            ("198.18.0.3", "pypg-n1", "pypg-c2", "eth0"),
            ("198.18.0.64", "pypg-n2", "pypg-c9", "eth0"),
        ],
        [("198.18.0.0/26", "pypg-n1"), ("198.18.0.64/26", "pypg-n2")],
    )
    assert call("GC", {**n1, "cni.dev/valid-attachments": []}) is None
    assert view(db) == (
        [("198.18.0.64", "pypg-n2", "pypg-c9", "eth0")],
        [("198.18.0.64/26", "pypg-n2")],
    )
