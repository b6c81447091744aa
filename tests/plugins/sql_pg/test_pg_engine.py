"""The PostgreSQL engine on its own: configuration, SQL and DDL translation,
migrations (fresh, upgrade, newer refused, several daemons at once),
integrity findings and `pycni ipam` on a PostgreSQL database."""

from __future__ import annotations

import threading

import pytest

from pycni.cli.main import main as cli_main
from pycni.plugins.ipam.sql import postgres
from pycni.plugins.ipam.sql.conf import DatabaseConfig, load_store, mask_dsn
from pycni.plugins.ipam.sql.schema import LATEST, MIGRATIONS
from pycni.spec.errors import CNIError

from support.sql_pg import call, conf_for, outcome, pg_blocks, pg_leases, query


def db_of(dsn: str) -> DatabaseConfig:
    return DatabaseConfig("postgres", "", dsn)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "database, words",
    [
        ({"engine": "postgres"}, ["missing ipam.database.dsn"]),
        ({"engine": "postgres", "dsn": 5}, ["ipam.database.dsn", "number"]),
        ({"engine": "postgres", "dsn": "host=/x\0"}, ["ipam.database.dsn", "NUL"]),
        ({"engine": "postgres", "dsn": "dbname=x", "path": "/a"}, ["ipam.database.path"]),
    ],
)
def test_bad_postgres_database_keys_are_code_7(database, words):
    conf = conf_for("/unused/db")
    conf["ipam"]["database"] = database
    with pytest.raises(CNIError) as info:
        load_store(conf)
    assert info.value.code == 7
    assert all(w in info.value.msg for w in words), info.value.msg


def test_postgres_config_keeps_the_dsn():
    cfg = load_store(conf_for("host=/run/postgresql dbname=cni user=cni"))
    assert (cfg.database.engine, cfg.database.dsn) == (
        "postgres",
        "host=/run/postgresql dbname=cni user=cni",
    )
    assert cfg.database.label == "host=/run/postgresql dbname=cni user=cni"


@pytest.mark.parametrize(
    "dsn, masked",
    [
        ("host=/x user=u password=s3cret", "host=/x user=u password=***"),
        ("password = 'a b\\' c' dbname=x", "password=*** dbname=x"),
        ("dbname=x password=a\\ b", "dbname=x password=***"),
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u:s3cret@h/db?password=zz&sslmode=disable",
         "postgres://u:***@h/db?password=***&sslmode=disable"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("host=/x dbname=cni", "host=/x dbname=cni"),
    ],
)  # fmt: skip
def test_mask_dsn(dsn, masked):
    assert mask_dsn(dsn) == masked
    assert "s3cret" not in mask_dsn(dsn)


def test_invalid_dsn_is_code_7_without_the_password():
    code, msg = outcome("ADD", conf_for("host=/x bogus=1"))
    assert code == 7 and 'invalid connection option "bogus"' in msg, msg
    # an unquoted password with a space: libpq would quote "cret" back
    code, msg = outcome("ADD", conf_for("host=/x password=s3 cret"))
    assert code == 7 and "password=***" in msg and "cret" not in msg, msg


# -- translation ------------------------------------------------------------------------------


def test_placeholders_and_percent():
    assert postgres.translate("SELECT ? WHERE a LIKE '5%' AND b = ?") == (
        "SELECT %s WHERE a LIKE '5%%' AND b = %s"
    )


def test_every_migration_statement_is_translated():
    for statements in MIGRATIONS:
        for sql in statements:
            out = postgres.ddl(sql)
            assert "INTEGER PRIMARY KEY" not in out
            assert "TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP" not in out
            assert "?" not in out


# -- migrations -------------------------------------------------------------------------------


def test_fresh_database_gets_the_latest_schema(pg_dsn):
    assert postgres.open_engine(db_of(pg_dsn), create=False) is None  # DEL/GC/CHECK: nothing
    engine = postgres.open_engine(db_of(pg_dsn), create=True)
    assert engine is not None
    try:
        assert engine.schema_version() == LATEST
        assert engine.integrity() == []
    finally:
        engine.close()
    types = dict(
        query(
            pg_dsn,
            "SELECT table_name || '.' || column_name, data_type || ':' || is_identity "
            "FROM information_schema.columns WHERE table_schema = 'public'",
        )
    )
    assert types["leases.id"] == "bigint:YES"
    assert types["leases.block"] == "bigint:NO"
    assert types["blocks.claimed"] == "timestamp with time zone:NO"
    assert query(pg_dsn, "SELECT version FROM schema_version") == [(LATEST,)]


def test_upgrade_from_version_1(pg_dsn):
    engine = postgres.open_engine(db_of(pg_dsn), create=True, migrate=False)
    assert engine is not None
    try:
        assert postgres.migrate(engine, MIGRATIONS[:1]) == 1
        assert engine.schema_version() == 1
    finally:
        engine.close()
    assert query(pg_dsn, "SELECT count(*) FROM pg_indexes WHERE indexname = 'leases_block'") == [
        (0,)
    ]
    assert call("ADD", conf_for(pg_dsn))["ips"][0]["address"] == "198.18.0.2/24"
    assert query(pg_dsn, "SELECT version FROM schema_version") == [(LATEST,)]
    assert query(pg_dsn, "SELECT count(*) FROM pg_indexes WHERE indexname = 'leases_block'") == [
        (1,)
    ]


def test_newer_schema_is_refused(pg_dsn):
    call("ADD", conf_for(pg_dsn))
    query(pg_dsn, "UPDATE schema_version SET version = 99")
    for verb in ("ADD", "DEL"):
        code, msg = outcome(verb, conf_for(pg_dsn))
        assert code == 7 and "schema version 99" in msg and "upgrade pycni" in msg, msg
        assert "pypg-secret" not in msg


def test_daemons_starting_together_migrate_once(pg_dsn):
    """Eight connections open a fresh database at once: one applies the
    migrations (under the advisory lock), the others find them applied."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def opener():
        try:
            barrier.wait()
            engine = postgres.open_engine(db_of(pg_dsn), create=True)
            assert engine is not None
            engine.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert query(pg_dsn, "SELECT version FROM schema_version") == [(LATEST,)]


def test_timestamps_read_as_sqlite_text(pg_dsn):
    call("ADD", conf_for(pg_dsn))
    engine = postgres.open_engine(db_of(pg_dsn), create=False)
    assert engine is not None
    try:
        tx = engine.read()
        try:
            (claimed,) = tx.rows("SELECT claimed FROM blocks")[0]
        finally:
            tx.rollback()
    finally:
        engine.close()
    assert isinstance(claimed, str) and len(claimed) == 19 and claimed[10] == " ", claimed


# -- integrity --------------------------------------------------------------------------------


def test_integrity_finds_what_constraints_cannot(pg_dsn):
    conf = conf_for(pg_dsn, [[{"subnet": "198.18.0.0/24"}]], blockSize=28)
    call("ADD", conf)
    call("ADD", conf, cid="pypg-c2")
    (pool,) = query(pg_dsn, "SELECT id FROM pools")[0]
    (block,) = query(pg_dsn, "SELECT id FROM blocks")[0]
    query(pg_dsn, "UPDATE leases SET ip = '198.18.0.200' WHERE container_id = 'pypg-c2'")
    query(
        pg_dsn,
        "INSERT INTO blocks (pool, cidr, node) VALUES (%s, '198.18.0.0/27', 'x'), "
        "(%s, 'nonsense', 'y')",
        (pool, pool),
    )
    query(
        pg_dsn,
        "INSERT INTO leases (pool, block, ip, node, network, container_id, ifname, set_index) "
        "VALUES (%s, %s, '198.18.0.9', 'z', 'othernet', 'pypg-c3', 'eth0', 0)",
        (pool, block),
    )
    engine = postgres.open_engine(db_of(pg_dsn), create=False)
    assert engine is not None
    try:
        found = engine.integrity()
    finally:
        engine.close()
    text = "\n".join(found)
    assert "malformed block: block" in text and "'nonsense'" in text
    assert "lease 198.18.0.200 (pypg-c2/eth0) is not in its block 198.18.0.0/28" in text
    assert "overlapping blocks: blocks 198.18.0.0/28 (pypg-n1) and 198.18.0.0/27 (x)" in text
    assert "lease of another network: lease 198.18.0.9 is of network 'othernet'" in text
    assert len(found) == 4, found


# -- pycni ipam -------------------------------------------------------------------------------


def test_cli_on_postgres(pg_dsn, capsys):
    assert cli_main(["ipam", "pools", "--database", pg_dsn]) == 1
    assert "holds no sql IPAM schema" in capsys.readouterr().err
    assert cli_main(["ipam", "init", "--database", pg_dsn]) == 0
    out = capsys.readouterr().out
    assert f"schema version {LATEST} (created)" in out and "pypg-secret" not in out
    assert cli_main(["ipam", "init", "--database", pg_dsn]) == 0
    assert "(up to date)" in capsys.readouterr().out
    for node in ("pypg-n1", "pypg-n2"):
        call("ADD", conf_for(pg_dsn, node=node), cid=f"pypg-{node}")
    assert cli_main(["ipam", "pools", "--database", pg_dsn]) == 0
    out = capsys.readouterr().out
    assert "pypgnet" in out and "198.18.0.0/24" in out
    assert cli_main(["ipam", "show", "--database", pg_dsn, "--node", "pypg-n2"]) == 0
    out = capsys.readouterr().out
    assert "198.18.0.64/26" in out and "pypg-pypg-n2" in out and "pypg-n1" not in out
    assert cli_main(["ipam", "check", "--database", pg_dsn]) == 0
    assert "ok (1 pool(s), 2 block(s), 2 lease(s))" in capsys.readouterr().out
    assert cli_main(["ipam", "release-node", "pypg-n2", "--database", pg_dsn, "--yes"]) == 0
    assert "freed 1 lease(s) and 1 block(s)" in capsys.readouterr().out
    assert pg_leases(pg_dsn) == [("198.18.0.2", "pypg-n1", "pypg-pypg-n1", "eth0")]
    assert pg_blocks(pg_dsn) == [("198.18.0.0/26", "pypg-n1")]
