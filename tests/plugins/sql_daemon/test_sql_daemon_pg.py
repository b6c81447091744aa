"""The plugin executable, the daemon and a PostgreSQL server: ADD/DEL
through the daemon, a server restart while the daemon runs, a daemon
killed mid-ADD, and a small concurrent storm."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from pycni.skel.testing import PluginRunner

from support.outcomes import err, ok, ok_quiet
from support.postgres import PgServer, available
from support.sql_daemon import SqlDaemon
from support.sql_ipam import PLUGIN, make_conf

_names = itertools.count(1)
ROLE, PASSWORD = "pysd_cni", "pysd-secret"


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    reason = available()
    if reason:
        pytest.skip(reason)
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("the PostgreSQL driver is not installed: pip install 'pycni[postgres]'")
    server = PgServer.create()
    try:
        server.create_role(ROLE, PASSWORD)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def dbname(pg: PgServer) -> Iterator[str]:
    name = f"pysd_{next(_names)}"
    pg.create_database(name, owner=ROLE)
    try:
        yield name
    finally:
        if not pg.running:
            pg.start()
        pg.drop_database(name)


@pytest.fixture
def setup(pg, dbname, workdir, sd_netns):
    """(daemon, runner, conf, leases()) for one fresh database."""
    path = workdir / "run" / "sql.sock"
    d = SqlDaemon(path)
    conf = make_conf(
        "/unused",
        database={"engine": "postgres", "dsn": pg.dsn(ROLE, dbname, PASSWORD)},
        daemonSocketPath=str(path),
    )
    runner = PluginRunner(PLUGIN, netns=sd_netns, container_id="pysd-c1", ifname="eth0")

    def leases() -> list[tuple[str, ...]]:
        out = pg.psql("SELECT ip, node, container_id, ifname FROM leases ORDER BY id", dbname)
        return [tuple(line.split("|")) for line in out.splitlines() if line]

    try:
        yield d, runner, conf, leases
    finally:
        d.stop()


def test_add_check_del_through_the_daemon(setup, workdir):
    d, runner, conf, leases = setup
    result = ok_quiet(runner.add(conf))
    assert result == {
        "cniVersion": "1.1.0",
        "ips": [{"address": "198.18.0.2/24", "gateway": "198.18.0.1"}],
    }
    # the same result the SQLite path prints in-process
    sqlite_conf = make_conf(workdir / "state" / "ipam.db")
    assert ok_quiet(runner.add(sqlite_conf)) == result
    assert leases() == [("198.18.0.2", "pysq-n1", "pysd-c1", "eth0")]
    ok_quiet(runner.check({**conf, "prevResult": result}))
    ok_quiet(runner.delete(conf))
    ok_quiet(runner.delete(conf))
    assert leases() == []
    assert d.alive() and "Traceback" not in d.log()


def test_postgres_restart_while_the_daemon_runs(setup, pg):
    d, runner, conf, leases = setup
    ok(runner.add(conf))
    pg.restart()  # the daemon's pooled connection dies while idle
    ok(runner.add(conf, container_id="pysd-c2"))  # no failure: a fresh connection
    pg.stop()
    for outcome in (
        runner.add(conf, container_id="pysd-c3"),
        runner.delete(conf),
        runner.check(conf),
    ):
        code, msg = err(outcome)
        assert code == 11, msg
    pg.start()
    ok(runner.add(conf, container_id="pysd-c3"))
    assert sorted(lease[2] for lease in leases()) == ["pysd-c1", "pysd-c2", "pysd-c3"]
    assert len({lease[0] for lease in leases()}) == 3
    for cid in ("pysd-c1", "pysd-c2", "pysd-c3"):
        ok(runner.delete(conf, container_id=cid))
    assert leases() == []
    assert d.alive()  # the same daemon throughout


def test_daemon_killed_mid_add_leaves_no_lease_and_a_restarted_one_carries_on(
    pg, dbname, workdir, sd_netns
):
    path = workdir / "run" / "sql.sock"
    conf = make_conf(
        "/unused",
        database={"engine": "postgres", "dsn": pg.dsn(ROLE, dbname, PASSWORD)},
        daemonSocketPath=str(path),
    )
    runner = PluginRunner(PLUGIN, netns=sd_netns, container_id="pysd-c1")
    killed = SqlDaemon(path, env={"PYCNI_FAULT_STEP": "sql.add.commit"})
    code, msg = err(runner.add(conf))
    assert code == 11 and "closed the connection before answering" in msg
    assert killed.proc.wait(30) == -signal.SIGKILL
    count = pg.psql("SELECT count(*) FROM leases", dbname).strip()
    assert count == "0"
    again = SqlDaemon(path)
    try:
        assert ok(runner.add(conf))["ips"][0]["address"] == "198.18.0.2/24"
        ok(runner.delete(conf))
        assert pg.psql("SELECT count(*) FROM leases", dbname).strip() == "0"
    finally:
        assert again.stop() == 0


def test_concurrent_adds_through_one_daemon(setup):
    d, runner, conf, leases = setup
    cids = [f"pysd-s{i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: ok(runner.add(conf, container_id=c)), cids))
    addresses = [r["ips"][0]["address"] for r in results]
    assert len(set(addresses)) == len(cids)
    assert sorted(lease[2] for lease in leases()) == sorted(cids)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: ok(runner.delete(conf, container_id=c)), cids))
    assert leases() == []
    assert d.alive()
