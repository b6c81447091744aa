"""Faults around the daemon: killed mid-ADD (faultpoints), and over a
fault-injecting engine in this process: the pool across outages, idle
connections that died, an ADD whose COMMIT outcome is unknown."""

from __future__ import annotations

import json
import signal
import sys

import pytest

from pycni.plugins.ipam.sql import engine as engines
from pycni.plugins.ipam.sql.conf import ENGINES

from support.sql_daemon import FAKE, SqlDaemon, env_of, run_verb
from support.sql_ipam import leases, make_conf


def _code(outcome: tuple[int, str]) -> int:
    code, out = outcome
    return 0 if code == 0 else json.loads(out)["code"]


@pytest.mark.parametrize("fault", ["sql.add.begin", "sql.add.commit"])
def test_daemon_killed_mid_add_leaves_no_lease_and_a_new_one_carries_on(workdir, sd_netns, fault):
    path = workdir / "run" / "sql.sock"
    db = workdir / "state" / "ipam.db"
    conf = make_conf(db)
    d = SqlDaemon(path, env={"PYCNI_FAULT_STEP": fault})
    code, out = run_verb(env_of("ADD", sd_netns), conf, str(path))
    assert code == 1
    answer = json.loads(out)
    assert answer["code"] == 11
    assert "closed the connection before answering" in answer["msg"]
    assert d.proc.wait(30) == -signal.SIGKILL
    assert not db.exists() or leases(db) == []
    again = SqlDaemon(path)  # on the dead one's stale socket
    try:
        assert _code(run_verb(env_of("ADD", sd_netns), conf, str(path))) == 0
        assert leases(db) == [("198.18.0.2", "pysq-n1", "pysd-c1", "eth0")]
        assert _code(run_verb(env_of("DEL", sd_netns), conf, str(path))) == 0
        assert leases(db) == []
    finally:
        assert again.stop() == 0


def test_daemon_killed_after_commit_the_runtimes_del_frees_the_lease(workdir, sd_netns):
    """Killed between COMMIT and the answer: the plugin says 11, the lease
    exists, and the DEL a runtime sends after a failed ADD frees it."""
    path = workdir / "run" / "sql.sock"
    db = workdir / "state" / "ipam.db"
    conf = make_conf(db)
    d = SqlDaemon(path, env={"PYCNI_FAULT_STEP": "sql.daemon.reply"})
    assert _code(run_verb(env_of("ADD", sd_netns), conf, str(path))) == 11
    assert d.proc.wait(30) == -signal.SIGKILL
    assert len(leases(db)) == 1
    again = SqlDaemon(path)
    try:
        assert _code(run_verb(env_of("DEL", sd_netns), conf, str(path))) == 0
        assert leases(db) == []
    finally:
        assert again.stop() == 0


# --- the pool, over the fault-injecting engine ---------------------------------------------


@pytest.fixture
def fake(served, monkeypatch, workdir):
    """The in-process daemon with its pool installed, and a config on the
    fault-injecting engine: (socket path, service, conf, db)."""
    path, _server, service = served
    monkeypatch.setitem(ENGINES, "pysdfake", "support.sql_daemon")
    monkeypatch.setattr(engines, "PROVIDER", service.pool.open)
    FAKE.reset()
    db = workdir / "state" / "ipam.db"
    conf = make_conf(db)
    conf["ipam"]["database"]["engine"] = "pysdfake"
    try:
        yield path, service, conf, db
    finally:
        FAKE.reset()


def test_engines_are_kept_between_requests(fake, sd_netns):
    path, service, conf, db = fake
    for cid in ("pysd-a", "pysd-b", "pysd-c"):
        assert _code(run_verb(env_of("ADD", sd_netns, cid), conf, path)) == 0
    assert _code(run_verb(env_of("DEL", sd_netns, "pysd-b"), conf, path)) == 0
    assert FAKE.opened == 1 and service.pool.idle() == 1
    assert [lease[2] for lease in leases(db)] == ["pysd-a", "pysd-c"]


def test_an_outage_is_try_again_later_then_works_without_a_restart(fake, sd_netns):
    path, service, conf, db = fake
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)) == 0
    FAKE.down = True
    for command in ("ADD", "DEL", "CHECK"):
        code, out = run_verb(env_of(command, sd_netns, "pysd-b"), conf, path)
        assert code == 1 and json.loads(out)["code"] == 11, out
        assert json.loads(out)["msg"] == "pysdfake: database unreachable"
    assert service.pool.idle() == 0  # the broken engines were dropped
    FAKE.down = False
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-b"), conf, path)) == 0
    assert _code(run_verb(env_of("DEL", sd_netns, "pysd-a"), conf, path)) == 0
    assert [lease[2] for lease in leases(db)] == ["pysd-b"]
    assert FAKE.opened >= 2


def test_idle_connections_that_died_are_replaced_without_a_failure(fake, sd_netns):
    """A database restart while the daemon was idle: the first request
    finds its pooled connection dead and runs again on a fresh one."""
    path, service, conf, db = fake
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)) == 0
    assert service.pool.idle() == 1
    for engine in FAKE.engines:
        engine.dead = True
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-b"), conf, path)) == 0
    assert FAKE.opened == 2 and len(leases(db)) == 2


def test_unknown_commit_of_an_add_is_released_at_once_when_the_database_answers(fake, sd_netns):
    path, service, conf, db = fake
    FAKE.unknown_next = True
    code, out = run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)
    assert code == 1
    assert json.loads(out) == {
        "cniVersion": "1.1.0",
        "code": 11,
        "msg": "pysdfake: connection lost during COMMIT",
        "details": "try again later",
    }
    assert leases(db) == [] and service.pending == {}
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)) == 0
    assert len(leases(db)) == 1


def test_unknown_commit_during_an_outage_is_released_before_the_next_request(fake, sd_netns):
    path, service, conf, db = fake
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-other"), conf, path)) == 0
    FAKE.unknown_next = FAKE.down_after_unknown = True
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)) == 11
    assert [lease[2] for lease in leases(db)] == ["pysd-other", "pysd-a"]  # committed after all
    assert len(service.pending) == 1
    code, out = run_verb(env_of("CHECK", sd_netns, "pysd-a"), conf, path)
    assert code == 1 and json.loads(out)["code"] == 11
    assert "an earlier ADD of this attachment ended with an unknown commit" in out
    FAKE.down = False
    # the next request of that attachment releases first, then runs
    result = run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)
    assert _code(result) == 0 and service.pending == {}
    assert [lease[2] for lease in leases(db)] == ["pysd-other", "pysd-a"]
    assert _code(run_verb(env_of("DEL", sd_netns, "pysd-a"), conf, path)) == 0
    assert [lease[2] for lease in leases(db)] == ["pysd-other"]


def test_pending_releases_are_retried_in_the_background(fake, sd_netns):
    path, service, conf, db = fake
    FAKE.unknown_next = FAKE.down_after_unknown = True
    assert _code(run_verb(env_of("ADD", sd_netns, "pysd-a"), conf, path)) == 11
    assert len(leases(db)) == 1
    service.retry_pending()  # still down: kept
    assert len(service.pending) == 1
    FAKE.down = False
    service.retry_pending()
    assert service.pending == {} and leases(db) == []


def test_a_missing_driver_is_a_clear_error(fake, sd_netns, monkeypatch):
    path, _service, conf, _db = fake
    monkeypatch.setitem(ENGINES, "pysdfake", "pysd_no_such_driver")
    code, out = run_verb(env_of("ADD", sd_netns), conf, path)
    assert code == 1
    assert json.loads(out)["msg"] == (
        "sql: the pysdfake engine cannot load its driver (No module named "
        f"'pysd_no_such_driver') in {sys.executable}: install it for that interpreter "
        "(Debian: apt install python3-psycopg; pip: pip install 'pycni[postgres]')"
    )
