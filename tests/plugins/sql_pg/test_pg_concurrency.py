"""Many nodes and threads on one PostgreSQL pool: no duplicate address,
every lease released, each node in its own blocks; the races between a
DEL freeing a block and an ADD leasing into it; a process killed
mid-transaction."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from pycni.plugins.ipam.sql import postgres
from pycni.plugins.ipam.sql.allocator import Attachment, allocate, release
from pycni.plugins.ipam.sql.conf import DatabaseConfig, load
from pycni.spec.errors import CNIError

from support.sql_pg import NET, call, conf_for, pg_blocks, pg_leases, query

POOL = [[{"subnet": "198.18.0.0/22"}]]
TESTS = str(Path(__file__).resolve().parents[2])


def run_threads(fn, jobs: list[tuple]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def body(*job):
        try:
            barrier.wait()
            fn(*job)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=body, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker hangs"
    return errors


def lease_blocks(dsn: str) -> list[tuple]:
    """(ip, lease's node, its block's cidr, block's node) of every lease."""
    return query(
        dsn,
        "SELECT l.ip, l.node, b.cidr, b.node FROM leases l JOIN blocks b ON b.id = l.block",
    )


def integrity(dsn: str) -> list[str]:
    engine = postgres.open_engine(DatabaseConfig("postgres", "", dsn), create=False)
    assert engine is not None
    try:
        return engine.integrity()
    finally:
        engine.close()


def test_three_nodes_times_forty_threads(pg_dsn):
    """120 concurrent ADDs from 3 nodes, then 120 concurrent DELs."""
    nodes = ["pypg-n1", "pypg-n2", "pypg-n3"]
    results: dict[str, tuple[str, str]] = {}

    def add(node: str, i: int) -> None:
        cid = f"pypg-{node}-{i}"
        r = call("ADD", conf_for(pg_dsn, POOL, node=node, blockSize=28), cid=cid)
        results[cid] = (node, r["ips"][0]["address"].split("/")[0])

    errors = run_threads(add, [(n, i) for n in nodes for i in range(40)])
    assert errors == []
    ips = [ip for _, ip in results.values()]
    assert len(ips) == 120 and len(set(ips)) == 120
    held = {(ip, node, cid) for cid, (node, ip) in results.items()}
    assert {(ip, node, cid) for ip, node, cid, _ in pg_leases(pg_dsn)} == held
    # each node leased inside its own blocks; no two blocks overlap
    assert all(lnode == bnode for _, lnode, _, bnode in lease_blocks(pg_dsn))
    assert integrity(pg_dsn) == []
    per_node = {}
    for cidr, node in pg_blocks(pg_dsn):
        per_node.setdefault(node, []).append(cidr)
    assert sorted(per_node) == nodes
    assert all(len(b) == 3 for b in per_node.values()), per_node  # 40 leases / 14 per /28

    def delete(node: str, i: int) -> None:
        call("DEL", conf_for(pg_dsn, POOL, node=node, blockSize=28), cid=f"pypg-{node}-{i}")

    assert run_threads(delete, [(n, i) for n in nodes for i in range(40)]) == []
    assert pg_leases(pg_dsn) == [] and pg_blocks(pg_dsn) == []


def test_add_del_churn_never_hands_out_a_held_address(pg_dsn):
    """3 nodes x 8 threads, each ADDing and DELing its containers in turn
    on a small pool (blocks are claimed, freed and borrowed all the time):
    an address an ADD returns is never one another container holds."""
    ranges = [[{"subnet": "198.18.0.0/26"}]]
    held: dict[str, str] = {}
    lock = threading.Lock()
    clashes: list[str] = []

    def churn(node: str, t: int) -> None:
        conf = conf_for(pg_dsn, ranges, node=node, blockSize=29)
        for i in range(6):
            cid = f"pypg-{node}-{t}-{i}"
            ip = call("ADD", conf, cid=cid)["ips"][0]["address"]
            with lock:
                if ip in held:
                    clashes.append(f"{ip}: {held[ip]} and {cid}")
                held[ip] = cid
            with lock:  # before DEL: once DEL commits another may get it
                del held[ip]
            call("DEL", conf, cid=cid)

    nodes = ["pypg-n1", "pypg-n2", "pypg-n3"]
    assert run_threads(churn, [(n, t) for n in nodes for t in range(8)]) == []
    assert clashes == []
    assert pg_leases(pg_dsn) == [] and pg_blocks(pg_dsn) == []


def _setup_block(dsn: str):
    """n1 holds one lease (198.18.0.2) in block 198.18.0.0/26; the range
    set and block size of the config."""
    conf = conf_for(dsn, node="pypg-n1")
    call("ADD", conf)
    cfg = load(conf)
    return conf, cfg.range_sets[0], cfg.block_sizes[0]


def _engine(dsn: str) -> postgres.PgEngine:
    engine = postgres.open_engine(DatabaseConfig("postgres", "", dsn), create=False)
    assert engine is not None
    return engine


def test_del_succeeds_while_an_add_leases_into_the_block_it_empties(pg_dsn):
    """An ADD (node n2, requested 198.18.0.10) has leased into n1's block
    but not committed; n1's DEL of the block's last lease waits for it,
    then finds the block used: the block stays, DEL succeeds."""
    conf, rset, prefix = _setup_block(pg_dsn)
    inserted, go = threading.Event(), threading.Event()
    engine = _engine(pg_dsn)

    def add_work(tx):
        who = Attachment(NET, "pypg-n2", "pypg-c2", "eth0")
        value = allocate(tx, who, 0, rset, prefix, (4, 0xC612000A))
        inserted.set()
        assert go.wait(30)
        return value

    adder = threading.Thread(target=engine.transaction, args=(add_work,))
    adder.start()
    try:
        assert inserted.wait(30)
        errors: list[BaseException] = []

        def delete():
            try:
                call("DEL", conf)
            except BaseException as e:
                errors.append(e)

        deleter = threading.Thread(target=delete)
        deleter.start()
        time.sleep(0.5)
        assert deleter.is_alive()  # waiting for the ADD's lock on the block
        go.set()
        adder.join(30)
        deleter.join(30)
        assert errors == []
    finally:
        go.set()
        adder.join(30)
        engine.close()
    assert pg_leases(pg_dsn) == [("198.18.0.10", "pypg-n2", "pypg-c2", "eth0")]
    assert pg_blocks(pg_dsn) == [("198.18.0.0/26", "pypg-n1")]


def test_add_into_a_block_a_del_is_freeing_is_run_again(pg_dsn):
    """n1's DEL has deleted block 198.18.0.0/26 but not committed; n2's ADD
    of 198.18.0.10 (found the block, leases into it) waits, fails on the
    foreign key once DEL commits, and is run again: it claims the block."""
    _setup_block(pg_dsn)
    deleted, go = threading.Event(), threading.Event()
    engine = _engine(pg_dsn)

    def del_work(tx):
        release(tx, NET, "pypg-c1", "eth0")
        deleted.set()
        assert go.wait(30)

    deleter = threading.Thread(target=engine.transaction, args=(del_work,))
    deleter.start()
    try:
        assert deleted.wait(30)
        results: list = []

        def add():
            try:
                conf = conf_for(pg_dsn, node="pypg-n2")
                results.append(call("ADD", conf, cid="pypg-c2", args="IP=198.18.0.10"))
            except BaseException as e:
                results.append(e)

        adder = threading.Thread(target=add)
        adder.start()
        time.sleep(0.5)
        assert adder.is_alive(), results  # its lease waits for the DEL's lock on the block
        go.set()
        deleter.join(30)
        adder.join(30)
        assert [r["ips"][0]["address"] for r in results] == ["198.18.0.10/24"], results
    finally:
        go.set()
        deleter.join(30)
        engine.close()
    assert pg_leases(pg_dsn) == [("198.18.0.10", "pypg-n2", "pypg-c2", "eth0")]
    assert pg_blocks(pg_dsn) == [("198.18.0.0/26", "pypg-n2")]


def _killed(dsn: str, verb: str, fault: str) -> int:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from support.sql_pg import call, conf_for;"
        "call(sys.argv[3], conf_for(sys.argv[2]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, TESTS, dsn, verb],
        env={**os.environ, "PYCNI_FAULT_STEP": fault},
        capture_output=True,
        timeout=120,
    )
    return proc.returncode


def _no_open_transactions(dsn: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = query(
            dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()",
        )
        if busy == [(0,)]:
            return
        time.sleep(0.05)
    raise AssertionError("the killed process's session is still open")


def test_add_killed_mid_transaction_leaves_no_lease(pg_dsn):
    """Killed at each step of the first ADD of a pool: no pool, block or
    lease remains (the server rolls back a dead client's transaction)."""
    counts = "SELECT (SELECT count(*) FROM pools), (SELECT count(*) FROM blocks), " + (
        "(SELECT count(*) FROM leases)"
    )
    for fault in ("sql.add.pool", "sql.add.claim", "sql.add.lease", "sql.add.commit"):
        assert _killed(pg_dsn, "ADD", fault) == -9, fault
        _no_open_transactions(pg_dsn)
        assert query(pg_dsn, counts) == [(0, 0, 0)], fault
    assert call("ADD", conf_for(pg_dsn))["ips"][0]["address"] == "198.18.0.2/24"


def test_del_killed_mid_transaction_keeps_the_lease_until_del_again(pg_dsn):
    call("ADD", conf_for(pg_dsn))
    assert _killed(pg_dsn, "DEL", "sql.del.commit") == -9
    _no_open_transactions(pg_dsn)
    assert pg_leases(pg_dsn) == [("198.18.0.2", "pypg-n1", "pypg-c1", "eth0")]
    call("DEL", conf_for(pg_dsn))
    assert pg_leases(pg_dsn) == [] and pg_blocks(pg_dsn) == []


def test_a_verb_killed_before_the_first_migration_committed(pg_dsn):
    assert _killed(pg_dsn, "ADD", "sql.migrate.commit") == -9
    _no_open_transactions(pg_dsn)
    assert query(pg_dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    assert call("ADD", conf_for(pg_dsn))["ips"][0]["address"] == "198.18.0.2/24"


def test_a_race_outside_transaction_is_try_again_later(pg_dsn):
    """Outside Engine.transaction (no one to run it again, e.g. `pycni
    ipam release-node`), a serialization failure is code 11."""
    call("ADD", conf_for(pg_dsn))
    engine = _engine(pg_dsn)
    try:
        tx = engine.write()
        try:
            tx.run("DO $$ BEGIN RAISE SQLSTATE '40001'; END $$")
        except CNIError as e:
            assert e.code == 11 and "conflicted with a concurrent transaction" in e.msg
        else:
            raise AssertionError("no error")
        finally:
            tx.rollback()
    finally:
        engine.close()
