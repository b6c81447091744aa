"""sql through its executable: every verb, results, tables, errors."""

from __future__ import annotations

import os
import stat

import pytest

from support.outcomes import err, ok_quiet
from support.sql_ipam import blocks, leases, make_conf

TWO_SETS = [[{"subnet": "198.18.0.0/24"}], [{"subnet": "fd00::/64"}]]


def test_add_check_del_dual_stack(runner, db):
    conf = make_conf(
        db,
        TWO_SETS,
        routes=[{"dst": "0.0.0.0/0"}],
        dns={"nameservers": ["198.18.0.53"]},
    )
    result = ok_quiet(runner.add(conf))
    assert result == {
        "cniVersion": "1.1.0",
        "ips": [
            {"address": "198.18.0.2/24", "gateway": "198.18.0.1"},
            {"address": "fd00::2/64", "gateway": "fd00::1"},
        ],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["198.18.0.53"]},
    }
    assert leases(db) == [
        ("198.18.0.2", "pysq-n1", "pysq-c1", "eth0"),
        ("fd00::2", "pysq-n1", "pysq-c1", "eth0"),
    ]
    assert blocks(db) == [("198.18.0.0/26", "pysq-n1"), ("fd00::/122", "pysq-n1")]
    ok_quiet(runner.check({**conf, "prevResult": result}))
    ok_quiet(runner.delete(conf))
    assert leases(db) == [] and blocks(db) == []
    assert err(runner.check(conf))[0] == 999


def test_files_and_schema(runner, db):
    ok_quiet(runner.add(make_conf(db)))
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
    import sqlite3

    conn = sqlite3.connect(str(db))
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # not a WAL file
    finally:
        conn.close()
    # the rollback journal stays in place (a DEL needs no new file on a full disk)
    journal = db.with_name(db.name + "-journal")
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name, journal.name]


def test_del_is_idempotent(runner, db):
    conf = make_conf(db)
    ok_quiet(runner.delete(conf))  # no database yet: nothing to free
    assert not db.exists()
    ok_quiet(runner.add(conf))
    ok_quiet(runner.delete(conf))
    ok_quiet(runner.delete(conf))
    ok_quiet(runner.delete(conf, container_id="pysq-unknown"))
    # a config whose ranges went bad still frees the lease
    ok_quiet(runner.add(conf))
    bad = make_conf(db, [[{"subnet": "nonsense"}]])
    ok_quiet(runner.delete(bad))
    assert leases(db) == []


def test_second_add_of_an_attachment_is_refused_like_host_local(runner, db):
    conf = make_conf(db)
    ok_quiet(runner.add(conf))
    code, msg = err(runner.add(conf))
    assert (code, msg) == (
        999,
        "failed to allocate for range 0: 198.18.0.2 has been allocated to pysq-c1, "
        "duplicate allocation is not allowed",
    )
    assert leases(db) == [("198.18.0.2", "pysq-n1", "pysq-c1", "eth0")]
    ok_quiet(runner.add(conf, ifname="eth1"))
    assert [lease[0] for lease in leases(db)] == ["198.18.0.2", "198.18.0.3"]


def test_exhaustion_names_the_pool_and_holds_nothing(runner, db):
    ranges = [
        [{"subnet": "198.18.1.0/24"}],
        [{"subnet": "198.18.0.0/29", "rangeStart": "198.18.0.2", "rangeEnd": "198.18.0.4"}],
    ]
    conf = make_conf(db, ranges)
    for i in range(3):
        ok_quiet(runner.add(conf, container_id=f"pysq-x{i}"))
    code, msg = err(runner.add(conf, container_id="pysq-x3"))
    assert code == 999
    assert msg.startswith(
        "failed to allocate for range 1: no IP addresses available in range set: "
        "198.18.0.2-198.18.0.4 (pool '198.18.0.0/29 198.18.0.2-198.18.0.4' of network 'pysqnet')"
    ), msg
    # all or nothing: set 0 gave pysq-x3 nothing either
    assert sorted({lease[2] for lease in leases(db)}) == ["pysq-x0", "pysq-x1", "pysq-x2"]
    code, msg = err(runner.status(conf))
    assert code == 50 and "range set 1" in msg
    ok_quiet(runner.delete(conf, container_id="pysq-x1"))
    ok_quiet(runner.status(conf))
    assert ok_quiet(runner.add(conf, container_id="pysq-x3"))["ips"][1]["address"] == (
        "198.18.0.3/29"
    )


def test_status_without_database_is_ready(runner, db):
    ok_quiet(runner.status(make_conf(db)))
    assert not db.exists()


def test_blocks_claimed_and_released(runner, db):
    """A /30 block of a /28 holds 4 addresses (fewer at the edges): the
    node claims a new block when its blocks are full and gives each back
    when its last lease goes."""
    conf = make_conf(db, [[{"subnet": "198.18.0.0/28"}]], blockSize=30)
    got = [
        ok_quiet(runner.add(conf, container_id=f"pysq-b{i}"))["ips"][0]["address"] for i in range(4)
    ]
    # .0 network, .1 gateway: block .0/30 has only .2 and .3
    assert got == ["198.18.0.2/28", "198.18.0.3/28", "198.18.0.4/28", "198.18.0.5/28"]
    assert blocks(db) == [("198.18.0.0/30", "pysq-n1"), ("198.18.0.4/30", "pysq-n1")]
    ok_quiet(runner.delete(conf, container_id="pysq-b0"))
    assert len(blocks(db)) == 2
    ok_quiet(runner.delete(conf, container_id="pysq-b1"))
    assert blocks(db) == [("198.18.0.4/30", "pysq-n1")]
    for i in (2, 3):
        ok_quiet(runner.delete(conf, container_id=f"pysq-b{i}"))
    assert blocks(db) == [] and leases(db) == []


def test_two_nodes_get_their_own_blocks_then_borrow(runner, db):
    n1 = make_conf(db, [[{"subnet": "198.18.0.0/29"}]], blockSize=30, node="pysq-n1")
    n2 = make_conf(db, [[{"subnet": "198.18.0.0/29"}]], blockSize=30, node="pysq-n2")
    a = ok_quiet(runner.add(n1, container_id="pysq-a"))["ips"][0]["address"]
    b = ok_quiet(runner.add(n2, container_id="pysq-b"))["ips"][0]["address"]
    assert (a, b) == ("198.18.0.2/29", "198.18.0.4/29")
    assert blocks(db) == [("198.18.0.0/30", "pysq-n1"), ("198.18.0.4/30", "pysq-n2")]
    # .7 is the broadcast address: n2's block holds .4-.6
    got = [ok_quiet(runner.add(n2, container_id=f"pysq-{c}"))["ips"][0]["address"] for c in "cd"]
    assert got == ["198.18.0.5/29", "198.18.0.6/29"]
    # n2's block is full and no block is left: it borrows n1's free address
    e = ok_quiet(runner.add(n2, container_id="pysq-e2"))["ips"][0]["address"]
    assert e == "198.18.0.3/29"
    assert ("198.18.0.3", "pysq-n2", "pysq-e2", "eth0") in leases(db)
    assert len(blocks(db)) == 2
    assert err(runner.add(n1, container_id="pysq-e"))[0] == 999
    # GC on n1 drops only n1's leases that are no longer valid
    gc = {**n1, "cni.dev/valid-attachments": []}
    ok_quiet(runner.gc(gc))
    assert sorted(lease[2] for lease in leases(db)) == ["pysq-b", "pysq-c", "pysq-d", "pysq-e2"]
    # the block of n1 stays while n2's borrowed lease is in it
    assert ("198.18.0.0/30", "pysq-n1") in blocks(db)
    ok_quiet(runner.delete(n2, container_id="pysq-e2"))
    assert blocks(db) == [("198.18.0.4/30", "pysq-n2")]


def test_gc_keeps_valid_attachments(runner, db):
    conf = make_conf(db, TWO_SETS)
    for cid in ("pysq-g1", "pysq-g2", "pysq-g3"):
        ok_quiet(runner.add(conf, container_id=cid))
    ok_quiet(runner.gc(conf))  # no valid-attachments list: nothing happens
    assert len(leases(db)) == 6
    valid = [{"containerID": "pysq-g2", "ifname": "eth0"}]
    ok_quiet(runner.gc({**conf, "cni.dev/valid-attachments": valid}))
    assert {lease[2] for lease in leases(db)} == {"pysq-g2"}
    assert len(blocks(db)) == 2
    ok_quiet(runner.gc({**conf, "cni.dev/valid-attachments": []}))
    assert leases(db) == [] and blocks(db) == []


def test_requested_addresses(runner, db, tmp_path):
    conf = make_conf(db, TWO_SETS)
    res = ok_quiet(runner.add(conf, args="IP=198.18.0.77"))
    assert res["ips"][0]["address"] == "198.18.0.77/24"
    assert ("198.18.0.64/26", "pysq-n1") in blocks(db)
    code, msg = err(runner.add(conf, container_id="pysq-r2", args="IP=198.18.0.77"))
    assert code == 999 and "198.18.0.77 is not available" in msg
    caps = {
        **conf,
        "args": {"cni": {"ips": ["fd00::99"]}},
        "runtimeConfig": {"ips": ["198.18.0.9/24"]},
    }
    res = ok_quiet(runner.add(caps, container_id="pysq-r3"))
    assert [ip["address"] for ip in res["ips"]] == ["198.18.0.9/24", "fd00::99/64"]
    code, msg = err(runner.add(conf, container_id="pysq-r4", args="IP=198.18.0.1"))
    assert "is subnet's gateway" in msg
    whole = make_conf(
        db, [[{"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.0", "rangeEnd": "198.18.0.255"}]]
    )
    for edge in ("198.18.0.0", "198.18.0.255"):
        code, msg = err(runner.add(whole, container_id="pysq-r4", args=f"IP={edge}"))
        assert msg == (
            f"failed to allocate for range 0: requested ip {edge} is the network or "
            "broadcast address of 198.18.0.0/24"
        )
    code, msg = err(runner.add(conf, container_id="pysq-r4", args="IP=198.18.9.9"))
    assert msg == "failed to allocate all requested IPs: 198.18.9.9"
    assert err(runner.add(conf, container_id="pysq-r4", args="IP=nonsense"))[0] == 4
    assert {lease[2] for lease in leases(db)} == {"pysq-c1", "pysq-r3"}


def test_check_finds_missing_and_foreign_addresses(runner, db):
    conf = make_conf(db, TWO_SETS)
    result = ok_quiet(runner.add(conf))
    foreign = {**result, "ips": [*result["ips"], {"address": "198.18.0.200/24"}]}
    code, msg = err(runner.check({**conf, "prevResult": foreign}))
    assert code == 999 and "198.18.0.200 of prevResult is not leased" in msg
    wider = make_conf(db, [*TWO_SETS, [{"subnet": "198.18.1.0/24"}]])
    code, msg = err(runner.check({**wider, "prevResult": result}))
    assert "range set 2" in msg


def test_newer_schema_is_refused(runner, db):
    ok_quiet(runner.add(make_conf(db)))
    import sqlite3

    conn = sqlite3.connect(str(db))
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    code, msg = err(runner.add(make_conf(db), container_id="pysq-new"))
    assert code == 7
    assert f"database {db} has schema version 99, newer than version 2" in msg
    assert err(runner.delete(make_conf(db)))[0] == 7
    code, msg = err(runner.status(make_conf(db)))
    assert code == 50 and "schema version 99" in msg


@pytest.mark.parametrize("kind", ["garbage", "directory"])
def test_a_database_that_is_no_database(runner, db, kind):
    """ADD fails with code 5 naming the file; DEL succeeds with a note on
    stderr (a runtime would retry a failing DEL forever), and once the file
    is a database again, DEL and GC work as usual."""
    db.parent.mkdir(parents=True, exist_ok=True)
    if kind == "garbage":
        db.write_bytes(b"\xff\x00{not a database at all" * 64)
    else:
        db.mkdir()
    conf = make_conf(db)
    code, msg = err(runner.add(conf))
    assert code == 5 and str(db) in msg
    deleted = runner.delete(conf)
    assert deleted.exit_code == 0 and deleted.stdout == ""
    assert str(db) in deleted.stderr and "not released" in deleted.stderr
    if kind == "garbage":
        db.unlink()
    else:
        db.rmdir()
    ok_quiet(runner.add(conf))
    ok_quiet(runner.delete(conf))
    assert leases(db) == []


def test_overlapping_pools_of_one_network_never_share_an_address(runner, db):
    """A network whose range changed (a /24 grown to a /23) has two pools
    that overlap: the new pool's leases skip the old pool's addresses,
    and its range set overlapping itself is refused as host-local does."""
    old = make_conf(db, [[{"subnet": "198.18.4.0/24"}]])
    new = make_conf(db, [[{"subnet": "198.18.4.0/23"}]])
    first = ok_quiet(runner.add(old, container_id="pysq-old"))
    second = ok_quiet(runner.add(new, container_id="pysq-new"))
    assert first["ips"][0]["address"] == "198.18.4.2/24"
    assert second["ips"][0]["address"] == "198.18.4.3/23"
    both = make_conf(db, [[{"subnet": "198.18.4.0/24"}, {"subnet": "198.18.4.0/23"}]])
    code, msg = err(runner.add(both, container_id="pysq-both"))
    assert code == 7 and "overlap" in msg
    ok_quiet(runner.delete(old, container_id="pysq-old"))
    ok_quiet(runner.delete(new, container_id="pysq-new"))
    assert leases(db) == []
