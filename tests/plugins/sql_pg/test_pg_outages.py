"""A database that is down, restarting, refusing credentials, or that
breaks the connection during COMMIT; a restart in the middle of a storm."""

from __future__ import annotations

import threading
import time

import pytest

from pycni.plugins.ipam.sql import postgres
from pycni.plugins.ipam.sql.conf import DatabaseConfig
from pycni.plugins.ipam.sql.engine import OutcomeUnknown
from pycni.spec.errors import CNIError

from support.postgres import PgServer
from support.sql_pg import call, conf_for, outcome, pg_blocks, pg_leases, query

SECRET = "pypg-secret"


def dsn_of(server: PgServer, **kw) -> str:
    args = {"user": "pypg_cni", "dbname": "pypg", "password": SECRET, **kw}
    return server.dsn(**args)


def test_server_down_is_try_again_later_then_works(pg_private):
    dsn = dsn_of(pg_private)
    conf = conf_for(dsn)
    call("ADD", conf)
    pg_private.stop()
    for verb, code in (("ADD", 11), ("DEL", 11), ("CHECK", 11), ("STATUS", 50)):
        got, msg = outcome(verb, conf, cid="pypg-c2")
        assert got == code, (verb, msg)
        assert "unreachable" in msg and "password=***" in msg and SECRET not in msg, msg
    pg_private.start()
    assert call("ADD", conf, cid="pypg-c2")["ips"][0]["address"] == "198.18.0.3/24"


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"password": "wrong"}, ['password authentication failed for user "pypg_cni"']),
        ({"dbname": "pypg_nodb"}, ['database "pypg_nodb" does not exist']),
        ({"user": "pypg_nobody"}, ['"pypg_nobody"']),
    ],
)
def test_wrong_credentials_or_database_are_code_7(pg_private, kw, words):
    code, msg = outcome("ADD", conf_for(dsn_of(pg_private, **kw)))
    assert code == 7, msg
    assert all(w in msg for w in words), msg
    assert "cannot use database" in msg and "wrong" not in msg.replace("password=***", "")


def test_a_role_without_rights_is_code_7(pg_private):
    pg_private.create_role("pypg_ro", "pw")
    code, msg = outcome("ADD", conf_for(dsn_of(pg_private, user="pypg_ro", password="pw")))
    assert code == 7 and "permission denied" in msg, msg


def test_engine_broken_by_a_restart_says_so(pg_private):
    dsn = dsn_of(pg_private)
    call("ADD", conf_for(dsn))
    engine = postgres.open_engine(DatabaseConfig("postgres", "", dsn), create=False)
    assert engine is not None
    try:
        assert not engine.broken
        pg_private.restart()
        with pytest.raises(CNIError) as info:
            engine.schema_version()
        assert info.value.code == 11 and engine.broken
        with pytest.raises(CNIError) as info:  # and stays so: open a new one
            engine.schema_version()
        assert info.value.code == 11
    finally:
        engine.close()


def test_connection_lost_during_commit_is_outcome_unknown(pg_private, monkeypatch):
    """The backend is terminated just before COMMIT: the client cannot tell
    whether it committed (here: not), so it reports OutcomeUnknown."""
    dsn = dsn_of(pg_private)
    call("ADD", conf_for(dsn))

    def kill_backends(name: str) -> None:
        if name == "sql.add.commit":
            pg_private.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'pypg' AND pid <> pg_backend_pid()"
            )
            time.sleep(0.2)

    monkeypatch.setattr(postgres, "step", kill_backends)
    with pytest.raises(OutcomeUnknown) as info:
        call("ADD", conf_for(dsn), cid="pypg-c2")
    assert info.value.code == 11
    assert "lost during COMMIT" in info.value.msg and SECRET not in info.value.msg
    monkeypatch.undo()
    # what the daemon does with it: release the attachment's leases
    call("DEL", conf_for(dsn), cid="pypg-c2")
    assert pg_leases(dsn) == [("198.18.0.2", "pypg-n1", "pypg-c1", "eth0")]


def test_restart_during_a_storm(pg_private):
    """3 nodes x 15 threads ADD 3 containers each while the server restarts
    twice: failures are code 11 only, an address is never leased twice,
    every successful ADD's lease is there; after retries (DEL, then ADD
    again, as a runtime does) and the DELs, which also see a restart,
    nothing is left."""
    dsn = dsn_of(pg_private)
    ranges = [[{"subnet": "198.18.0.0/22"}]]
    call("ADD", conf_for(dsn, ranges), cid="pypg-warm")
    call("DEL", conf_for(dsn, ranges), cid="pypg-warm")
    failures: list[tuple[int, str]] = []
    held: dict[str, str] = {}
    clashes: list[str] = []
    lock = threading.Lock()
    unknown: set[str] = set()

    def until_ok(verb: str, conf: dict, cid: str):
        deadline = time.monotonic() + 120
        while True:
            try:
                return call(verb, conf, cid=cid)
            except CNIError as e:
                with lock:
                    failures.append((e.code, e.msg))
                    if isinstance(e, OutcomeUnknown):
                        unknown.add(cid)
                if time.monotonic() > deadline:
                    raise
                if verb == "ADD":  # the runtime cleans up a failed ADD
                    until_ok("DEL", conf, cid)
                time.sleep(0.05)

    def node_thread(node: str, t: int) -> None:
        conf = conf_for(dsn, ranges, node=node, blockSize=28)
        for i in range(3):
            cid = f"pypg-{node}-{t}-{i}"
            ip = until_ok("ADD", conf, cid)["ips"][0]["address"]
            with lock:
                if ip in held:
                    clashes.append(f"{ip}: {held[ip]} and {cid}")
                held[ip] = cid
            time.sleep(0.02)

    def restarts(n: int) -> None:
        for _ in range(n):
            time.sleep(0.3)
            pg_private.restart()

    nodes = ["pypg-n1", "pypg-n2", "pypg-n3"]
    workers = [threading.Thread(target=node_thread, args=(n, t)) for n in nodes for t in range(15)]
    chaos = threading.Thread(target=restarts, args=(2,))
    for w in workers:
        w.start()
    chaos.start()
    for w in [*workers, chaos]:
        w.join(300)
    assert not any(w.is_alive() for w in workers)
    assert clashes == []
    assert len(held) == 135
    assert {code for code, _ in failures} <= {11}, failures[:5]
    assert failures, "no restart hit an operation: the test proved nothing"
    leased = {(ip, cid) for ip, _, cid, _ in pg_leases(dsn)}
    assert leased == {(ip.split("/")[0], cid) for ip, cid in held.items()}

    # DEL everything while the server restarts once more
    def deleter(node: str, t: int) -> None:
        conf = conf_for(dsn, ranges, node=node, blockSize=28)
        for i in range(3):
            until_ok("DEL", conf, f"pypg-{node}-{t}-{i}")

    failures.clear()
    workers = [threading.Thread(target=deleter, args=(n, t)) for n in nodes for t in range(15)]
    chaos = threading.Thread(target=restarts, args=(1,))
    for w in [*workers, chaos]:
        w.start()
    for w in [*workers, chaos]:
        w.join(300)
    assert {code for code, _ in failures} <= {11}, failures[:5]
    assert pg_leases(dsn) == [] and pg_blocks(dsn) == []
    assert query(dsn, "SELECT count(*) FROM pools") == [(1,)]
