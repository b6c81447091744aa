"""Schema versions: a fresh file, an old version upgraded, a newer refused."""

from __future__ import annotations

import sqlite3

import pytest

from pycni.plugins.ipam.sql.conf import DatabaseConfig
from pycni.plugins.ipam.sql.schema import LATEST, MIGRATIONS
from pycni.plugins.ipam.sql.sqlite import SqliteEngine, migrate, open_engine
from pycni.spec.errors import CNIError

from support.outcomes import ok_quiet
from support.sql_ipam import leases, make_conf


def indexes(db) -> set[str]:
    conn = sqlite3.connect(str(db))
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    finally:
        conn.close()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def version(db) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    finally:
        conn.close()


def test_fresh_file_gets_every_migration(db):
    assert open_engine(DatabaseConfig("sqlite", str(db)), create=False) is None
    assert not db.exists()
    engine = open_engine(DatabaseConfig("sqlite", str(db)), create=True)
    assert engine is not None
    engine.close()
    assert version(db) == LATEST == 2
    assert indexes(db) == {"leases_block", "leases_node", "blocks_node"}


def test_old_version_is_upgraded_keeping_its_leases(runner, db):
    db.parent.mkdir(mode=0o700)
    conn = sqlite3.connect(str(db), isolation_level=None)
    engine = SqliteEngine(conn, str(db))
    assert migrate(engine, MIGRATIONS[:1]) == 1
    conn.execute("INSERT INTO pools (id, network, range_set, family) VALUES (1, 'pysqnet', 'x', 4)")
    conn.execute("INSERT INTO blocks (id, pool, cidr, node) VALUES (1, 1, '198.18.9.0/26', 'old')")
    conn.execute(
        "INSERT INTO leases (pool, block, ip, node, network, container_id, ifname, set_index) "
        "VALUES (1, 1, '198.18.9.5', 'old', 'pysqnet', 'pysq-old', 'eth0', 0)"
    )
    engine.close()
    assert version(db) == 1 and indexes(db) == set()
    ok_quiet(runner.add(make_conf(db)))
    assert version(db) == 2
    assert indexes(db) == {"leases_block", "leases_node", "blocks_node"}
    assert leases(db) == [
        ("198.18.9.5", "old", "pysq-old", "eth0"),
        ("198.18.0.2", "pysq-n1", "pysq-c1", "eth0"),
    ]


def test_newer_version_is_refused_naming_both(db):
    engine = open_engine(DatabaseConfig("sqlite", str(db)), create=True)
    assert engine is not None
    engine.close()
    with pytest.raises(CNIError) as info:
        migrate(SqliteEngine(sqlite3.connect(str(db), isolation_level=None), str(db)), [[]])
    assert info.value.code == 7
    assert info.value.msg == (
        f"sql: database {db} has schema version 2, newer than version 1 this pycni knows: "
        "upgrade pycni on this node"
    )


def test_a_migration_that_fails_leaves_the_old_version(db):
    engine = open_engine(DatabaseConfig("sqlite", str(db)), create=True)
    assert engine is not None
    with pytest.raises(CNIError) as info:
        migrate(engine, [*MIGRATIONS, ["CREATE TABLE pysq_x (a)", "CREATE TABLE pysq_x (a)"]])
    assert info.value.code == 5 and "pysq_x already exists" in info.value.msg
    engine.close()
    assert version(db) == 2
    conn = sqlite3.connect(str(db))
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'pysq_x'").fetchall() == []
    conn.close()
