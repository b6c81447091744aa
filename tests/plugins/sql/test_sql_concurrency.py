"""Many plugin processes on one SQLite file, locks held by others, and
processes killed mid-transaction."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from pycni.plugins.ipam.sql import sqlite as engine_mod
from pycni.plugins.ipam.sql.conf import DatabaseConfig
from pycni.skel.testing import plugin_argv
from pycni.spec.errors import CNIError

from support.outcomes import err, ok_quiet
from support.sql_ipam import PLUGIN, blocks, leases, make_conf

TWO_SETS = [[{"subnet": "198.18.0.0/22"}], [{"subnet": "fd00::/64"}]]


def spawn(conf: dict, command: str, cid: str, netns: str, extra: dict | None = None):
    env = {
        **os.environ,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nonexistent",
        **(extra or {}),
    }
    proc = subprocess.Popen(
        plugin_argv(PLUGIN),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    return proc


def finish(proc) -> tuple[int, bytes, bytes]:
    out, errout = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=120)
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, out, errout


def integrity(db) -> None:
    conn = sqlite3.connect(str(db))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        if not tables:
            return  # killed before the first migration committed: an empty file
        # every lease sits in a claimed block that holds its address's pool
        orphans = conn.execute(
            "SELECT l.ip FROM leases l LEFT JOIN blocks b ON l.block = b.id "
            "WHERE b.id IS NULL OR b.pool != l.pool"
        ).fetchall()
        assert orphans == []
    finally:
        conn.close()


def test_storm_100_adds_then_100_dels_on_two_nodes(db, sq_netns):
    nodes = ["pysq-n1", "pysq-n2"]
    confs = [make_conf(db, TWO_SETS, node=n) for n in nodes]
    procs = [spawn(confs[i % 2], "ADD", f"pysq-s{i}", sq_netns) for i in range(100)]
    outcomes = [finish(p) for p in procs]
    assert all(rc == 0 for rc, _, _ in outcomes), [o for o in outcomes if o[0]][:3]
    results = [json.loads(out) for _, out, _ in outcomes]
    v4 = [r["ips"][0]["address"] for r in results]
    v6 = [r["ips"][1]["address"] for r in results]
    assert len(set(v4)) == len(set(v6)) == 100
    held = leases(db)
    assert len(held) == 200 and len({ip for ip, *_ in held}) == 200
    # each node's leases lie in its own blocks: no block is shared
    conn = sqlite3.connect(str(db))
    mixed = conn.execute(
        "SELECT l.ip FROM leases l JOIN blocks b ON l.block = b.id WHERE l.node != b.node"
    ).fetchall()
    conn.close()
    assert mixed == []
    claimed = blocks(db)
    assert len({cidr for cidr, _ in claimed}) == len(claimed)
    assert {node for _, node in claimed} == set(nodes)
    integrity(db)

    procs = [spawn(confs[i % 2], "DEL", f"pysq-s{i}", sq_netns) for i in range(100)]
    outcomes = [finish(p) for p in procs]
    assert all(rc == 0 and not out for rc, out, _ in outcomes), outcomes[:3]
    assert leases(db) == [] and blocks(db) == []
    integrity(db)


STEPS = ["sql.add.begin", "sql.add.pool", "sql.add.claim", "sql.add.lease", "sql.add.commit"]


def trace_of(conf: dict, db, netns: str, tmp_path) -> list[str]:
    trace = tmp_path / "trace"
    rc, _, errout = finish(spawn(conf, "ADD", "pysq-t", netns, {"PYCNI_FAULT_TRACE": str(trace)}))
    assert rc == 0, errout
    steps = trace.read_text().split()
    rc, _, _ = finish(spawn(conf, "DEL", "pysq-t", netns))
    assert rc == 0
    return steps


def test_add_passes_the_named_steps(db, sq_netns, tmp_path):
    conf = make_conf(db, TWO_SETS)
    steps = trace_of(conf, db, sq_netns, tmp_path)
    assert steps[0] == "sql.migrate.commit"
    assert set(STEPS) <= set(steps)
    assert steps[-1] == "sql.add.commit"


FRESH = [
    "sql.migrate.commit",
    "sql.add.begin",
    "sql.add.pool",
    "sql.add.pool#2",
    "sql.add.claim",
    "sql.add.claim#2",
    "sql.add.lease",
    "sql.add.lease#2",
    "sql.add.commit",
]
# with a lease already held: pools and blocks exist, the ADD only leases
HELD = ["sql.add.begin", "sql.add.lease", "sql.add.lease#2", "sql.add.commit"]


@pytest.mark.parametrize(
    "step, held", [(step, False) for step in FRESH] + [(step, True) for step in HELD]
)
def test_killed_add_holds_nothing(db, sq_netns, step, held):
    conf = make_conf(db, TWO_SETS)
    if held:
        assert finish(spawn(conf, "ADD", "pysq-k0", sq_netns))[0] == 0
    rc, out, _ = finish(spawn(conf, "ADD", "pysq-k1", sq_netns, {"PYCNI_FAULT_STEP": step}))
    assert rc == -9, (step, out)
    integrity(db)
    if step != "sql.migrate.commit":
        assert (
            leases(db)
            == [
                ("198.18.0.2", "pysq-n1", "pysq-k0", "eth0"),
                ("fd00::2", "pysq-n1", "pysq-k0", "eth0"),
            ][: 2 if held else 0]
        )
        assert len(blocks(db)) == (2 if held else 0)
    # the next ADD of the same attachment works and gets the next address
    rc, out, errout = finish(spawn(conf, "ADD", "pysq-k1", sq_netns))
    assert rc == 0, errout
    first = "198.18.0.3/22" if held else "198.18.0.2/22"
    assert json.loads(out)["ips"][0]["address"] == first
    integrity(db)


@pytest.mark.parametrize("step", ["sql.del.release", "sql.del.commit"])
def test_killed_del_keeps_the_lease_for_the_next_del(db, sq_netns, step):
    conf = make_conf(db, TWO_SETS)
    assert finish(spawn(conf, "ADD", "pysq-d1", sq_netns))[0] == 0
    rc, _, _ = finish(spawn(conf, "DEL", "pysq-d1", sq_netns, {"PYCNI_FAULT_STEP": step}))
    assert rc == -9
    integrity(db)
    assert len(leases(db)) == 2
    assert finish(spawn(conf, "DEL", "pysq-d1", sq_netns))[0] == 0
    assert leases(db) == [] and blocks(db) == []


def test_a_writer_is_waited_for(runner, db):
    """Another process holds the write lock for 0.5 s: ADD waits, then works."""
    ok_quiet(runner.add(make_conf(db), container_id="pysq-w0"))
    conn = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.5, lambda: conn.execute("COMMIT"))
    timer.start()
    started = time.monotonic()
    try:
        ok_quiet(runner.add(make_conf(db)))
    finally:
        timer.join()
        conn.close()
    assert time.monotonic() - started >= 0.4


def test_a_lock_held_too_long_is_try_again_later(db, monkeypatch):
    engine = engine_mod.open_engine(DatabaseConfig("sqlite", str(db)), create=True)
    assert engine is not None
    monkeypatch.setattr(engine_mod, "BUSY_TIMEOUT", 0.2)
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        engine.conn.execute("PRAGMA busy_timeout = 200")
        with pytest.raises(CNIError) as info:
            engine.write()
        assert info.value.code == 11
        assert info.value.msg.startswith(f"sql: database {db} is busy: database is locked")
    finally:
        conn.execute("ROLLBACK")
        conn.close()
        engine.close()


def test_unusable_database_file_is_an_io_error(runner, db):
    db.parent.mkdir()
    db.write_bytes(b"this is not a database" * 100)
    code, msg = err(runner.add(make_conf(db)))
    assert code == 5 and f"sql: database {db}" in msg
