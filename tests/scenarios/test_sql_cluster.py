"""Issue 11's cluster: three simulated nodes, each a sandbox host netns with
its own `sql daemon` and bridge network, leasing from one PostgreSQL pool.

Storms of 100 concurrent bridge ADDs per node (300 plugin processes at
once), then as many DELs: no address twice, every result configured in its
container, every lease and block gone at the end. Then the same with the
database restarted and one node's daemon killed and restarted during the
storms: the only failures allowed are code 11 ("try again later"), which a
runtime answers with a DEL and a new ADD, as this test does; in the end
nothing is duplicated and nothing leaks. And an operator removing a node
with `pycni ipam release-node` frees exactly that node's leases and blocks.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from support.postgres import PgServer, available
from support.sql_cluster import (
    DATABASE,
    PASSWORD,
    ROLE,
    SUBNET,
    Node,
    blocks,
    configured,
    leases,
    outcome,
)

pytestmark = pytest.mark.kernel

PER_NODE = 100
ERR_TRY_AGAIN_LATER = 11


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "pycl"}


@pytest.fixture
def server() -> Iterator[PgServer]:
    reason = available()
    if reason:
        pytest.skip(reason)
    try:
        import psycopg  # noqa: F401 - the daemons' driver
    except ImportError:
        pytest.skip("the PostgreSQL driver is not installed: pip install 'pycni[postgres]'")
    pg = PgServer.create()
    try:
        pg.create_role(ROLE, PASSWORD)
        pg.create_database(DATABASE, owner=ROLE)
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def nodes(server, netns_factory, launcher_dir, tmp_path) -> Iterator[list[Node]]:
    dsn = server.dsn(user=ROLE, dbname=DATABASE, password=PASSWORD)
    made = [
        Node(f"pycl-node{i}", netns_factory(f"n{i}"), launcher_dir, tmp_path, dsn)
        for i in range(1, 4)
    ]
    try:
        for node in made:
            node.start_daemon()
        yield made
    finally:
        for node in made:
            node.stop_daemon()


def storm(nodes, command: str, cts: dict, ids: list[str]) -> dict:
    """One call per container id, all started at once; {id: outcome}."""
    procs = {cid: cts[cid][0].spawn(command, cid, cts[cid][1].path) for cid in ids}
    return {cid: outcome(proc) for cid, proc in procs.items()}


def containers(nodes, netns_factory) -> dict:
    """{container id: (node, netns)}, PER_NODE per node."""
    return {
        f"pycl-{node.name[-1]}-{i}": (node, netns_factory("ct"))
        for node in nodes
        for i in range(PER_NODE)
    }


def address(result: dict) -> str:
    (ip,) = result["ips"]
    return ip["address"]


def check_added(server, cts: dict, results: dict) -> None:
    """Unique addresses in the pool, each configured in its container, and
    the database holding exactly these leases, each in its node's name."""
    addrs = {cid: address(r) for cid, r in results.items()}
    twice = [a for a, n in Counter(addrs.values()).items() if n > 1]
    assert not twice, f"addresses handed out twice: {twice}"
    pool = ipaddress.ip_network(SUBNET)
    assert all(ipaddress.ip_interface(a).ip in pool for a in addrs.values())
    for cid, cidr in addrs.items():
        assert configured(cts[cid][1].path) == {cidr}, cid
    held = {(ip, node, cid) for ip, node, cid in leases(server)}
    want = {(addrs[cid].split("/")[0], cts[cid][0].name, cid) for cid in addrs}
    assert held == want, f"leaked {held - want}, missing {want - held}"
    # blocks never overlap, and every node claimed blocks of its own
    claimed = [ipaddress.ip_network(cidr) for cidr, _ in blocks(server)]
    assert len(claimed) == len(set(claimed))
    assert {node for _, node in blocks(server)} == {n.name for n, _ in cts.values()}


def settle(nodes, command: str, cts: dict, first: dict) -> tuple[dict, Counter]:
    """Carry failed calls through as a runtime would: a failed ADD is
    followed by a DEL (retried until it succeeds) and a new ADD; a failed
    DEL is retried. Only code 11 may fail. Returns the final outcomes and
    how many failures of each code were seen."""
    seen: Counter = Counter()
    done = dict(first)
    for _ in range(30):
        failed = [cid for cid, (status, _) in done.items() if status != "ok"]
        if not failed:
            return done, seen
        for cid in failed:
            code = done[cid][1].get("code")
            seen[code] += 1
            assert code == ERR_TRY_AGAIN_LATER, f"{command} {cid}: {done[cid][1]}"
        if command == "ADD":
            undone = storm(nodes, "DEL", cts, failed)
            failed = [cid for cid in failed if undone[cid][0] == "ok"]
            for cid, (status, err) in undone.items():
                if status != "ok":
                    seen[err.get("code")] += 1
                    assert err.get("code") == ERR_TRY_AGAIN_LATER, f"DEL {cid}: {err}"
        done.update(storm(nodes, command, cts, failed))
        time.sleep(0.2)
    raise AssertionError(f"{command}: still failing after 30 rounds: {seen}")


def test_three_nodes_storm_one_pool(server, nodes, netns_factory):
    cts = containers(nodes, netns_factory)
    ids = list(cts)
    added = storm(nodes, "ADD", cts, ids)
    failed = {cid: o for cid, o in added.items() if o[0] != "ok"}
    assert not failed, list(failed.items())[:3]
    check_added(server, cts, {cid: r for cid, (_, r) in added.items()})
    deleted = storm(nodes, "DEL", cts, ids)
    failed = {cid: o for cid, o in deleted.items() if o[0] != "ok"}
    assert not failed, list(failed.items())[:3]
    assert leases(server) == [] and blocks(server) == []


def _disturb(server, node: Node, after: float, log: list) -> threading.Thread:
    """After `after` s: restart the database, and kill (SIGKILL) and
    restart `node`'s daemon, while the storm runs."""

    def run() -> None:
        time.sleep(after)
        server.stop()
        log.append("database stopped")
        node.stop_daemon(signal.SIGKILL)
        log.append(f"{node.name}'s daemon killed")
        time.sleep(0.5)
        server.start()
        log.append("database started")
        node.start_daemon()
        log.append(f"{node.name}'s daemon restarted")

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_storm_through_a_database_restart_and_a_killed_daemon(server, nodes, netns_factory):
    cts = containers(nodes, netns_factory)
    ids = list(cts)
    events: list[str] = []
    disturbing = _disturb(server, nodes[1], 1.0, events)
    first = storm(nodes, "ADD", cts, ids)
    disturbing.join()
    added, add_failures = settle(nodes, "ADD", cts, first)
    check_added(server, cts, {cid: r for cid, (_, r) in added.items()})

    disturbing = _disturb(server, nodes[2], 0.5, events)
    first = storm(nodes, "DEL", cts, ids)
    disturbing.join()
    _, del_failures = settle(nodes, "DEL", cts, first)
    assert leases(server) == [] and blocks(server) == []
    print(f"events: {events}; ADD failures {dict(add_failures)}, DEL {dict(del_failures)}")


def test_release_node_frees_exactly_its_leases_and_blocks(server, nodes, netns_factory):
    """An operator declares node 3 gone: `pycni ipam release-node` frees its
    leases and blocks, and nothing of nodes 1 and 2."""
    from pycni.cli.main import main as pycni

    cts = {
        f"pycl-r{node.name[-1]}-{i}": (node, netns_factory("ct"))
        for node in nodes
        for i in range(10)
    }
    added = storm(nodes, "ADD", cts, list(cts))
    assert all(status == "ok" for status, _ in added.values())
    before = leases(server)
    gone = nodes[2].name
    nodes[2].stop_daemon(signal.SIGKILL)  # the node vanished with its leases held
    dsn = server.dsn(user=ROLE, dbname=DATABASE, password=PASSWORD)
    assert pycni(["ipam", "release-node", gone, "--yes", "--database", dsn]) == 0
    after = leases(server)
    assert sorted(after) == sorted(row for row in before if row[1] != gone)
    assert len(before) - len(after) == 10
    assert gone not in {node for _, node in blocks(server)}
    # the freed addresses are usable again, by the nodes that remain
    deleted = storm(nodes[:2], "DEL", cts, [c for c in cts if cts[c][0] is not nodes[2]])
    assert all(status == "ok" for status, _ in deleted.values())
    assert leases(server) == [] and blocks(server) == []
