"""`pycni ipam` on databases filled by real sql plugin ADDs.

Two nodes share two networks: pyscnet (198.19.220.0/23; node 1 holds c1
and c2, node 2 holds c3 and, by request, c5 inside node 1's block) and the
dual-stack pyscnet6 (198.19.222.0/24 + fd00:5c::/64; node 2's c4).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pycni.cli import main as cli_main
from pycni.plugins.ipam.sql.schema import LATEST
from pycni.skel.testing import PluginRunner

from support.outcomes import ok_quiet
from support.sql_ipam import PLUGIN, blocks, leases, make_conf

NET = "pyscnet"
NET6 = "pyscnet6"
N1, N2 = "pysc-n1", "pysc-n2"
V4 = [[{"subnet": "198.19.220.0/23"}]]
DUAL = [[{"subnet": "198.19.222.0/24"}], [{"subnet": "fd00:5c::/64"}]]


def run(*args: str) -> int:
    return cli_main.main(list(args))


@pytest.fixture(scope="module")
def sc_netns(session_netns_factory) -> str:
    """A netns for CNI_NETNS (sql never enters it; skel wants another one)."""
    return session_netns_factory("pysc").path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ipam.db"


def add(netns: str, db: Path, node: str, cid: str, ranges=V4, name=NET, args: str = "") -> dict:
    runner = PluginRunner(PLUGIN, netns=netns, container_id=cid, ifname="eth0")
    result = ok_quiet(runner.add(make_conf(db, ranges, node=node, name=name), args=args))
    assert result is not None
    return result


@pytest.fixture
def filled(sc_netns, db) -> Path:
    add(sc_netns, db, N1, "pysc-c1")
    add(sc_netns, db, N1, "pysc-c2")
    add(sc_netns, db, N2, "pysc-c3")
    add(sc_netns, db, N2, "pysc-c4", DUAL, NET6)
    add(sc_netns, db, N2, "pysc-c5", args="IP=198.19.220.10")  # in node 1's block
    return db


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_init_creates_then_reports_up_to_date(db, capsys):
    assert run("ipam", "init", "--database", str(db)) == 0
    assert capsys.readouterr().out == f"{db}: schema version {LATEST} (created)\n"
    assert run("ipam", "init", "--database", str(db)) == 0
    assert capsys.readouterr().out == f"{db}: schema version {LATEST} (up to date)\n"
    assert run("ipam", "pools", "--database", str(db)) == 0
    assert capsys.readouterr().out.startswith("no pools yet")


def test_init_migrates_an_old_schema(db, capsys):
    from pycni.plugins.ipam.sql.schema import MIGRATIONS
    from pycni.plugins.ipam.sql.sqlite import SqliteEngine, migrate

    db.parent.mkdir()
    engine = SqliteEngine(sqlite3.connect(str(db), isolation_level=None), str(db))
    migrate(engine, MIGRATIONS[:1])
    engine.close()
    assert run("ipam", "pools", "--database", str(db)) == 1
    assert f"has schema version 1, older than {LATEST}" in capsys.readouterr().err
    assert run("ipam", "init", "--database", str(db)) == 0
    assert capsys.readouterr().out == f"{db}: schema version {LATEST} (migrated from version 1)\n"


def test_pools(filled, capsys):
    assert run("ipam", "pools", "--database", str(filled)) == 0
    out = capsys.readouterr().out
    assert lines(out) == [
        ["NETWORK", "RANGES", "BLOCKS", "LEASES", "FREE"],
        # a /23: 510 usable minus the gateway; 8 blocks of /26
        [NET, "198.19.220.0/23", "198.19.220.1-198.19.221.254", "2/8", "4", "505"],
        [NET6, "198.19.222.0/24", "198.19.222.1-198.19.222.254", "1/4", "1", "252"],
        # 2^64 - 3 free: the network address, the gateway and the lease
        [NET6, "fd00:5c::/64", "fd00:5c::1-fd00:5c::ffff:ffff:ffff:ffff", "1/2^58", "1", "~2^64"],
    ]
    header = out.splitlines()[0]
    # aligned: every row's BLOCKS column starts where its header does
    col = header.index("BLOCKS")
    assert all(line[col - 2 : col] == "  " for line in out.splitlines())


def test_show_all_and_filtered(filled, capsys):
    assert run("ipam", "show", "--database", str(filled)) == 0
    blocks_part, leases_part = capsys.readouterr().out.split("\n\n")
    rows = lines(blocks_part)
    assert rows[0] == ["NODE", "NETWORK", "BLOCK", "LEASES", "CLAIMED"]
    assert [r[:4] for r in rows[1:]] == [
        [N1, NET, "198.19.220.0/26", "3/62"],  # .0 network, .1 gateway: 62 usable
        [N2, NET, "198.19.220.64/26", "1/64"],
        [N2, NET6, "198.19.222.0/26", "1/62"],
        [N2, NET6, "fd00:5c::/122", "1/62"],
    ]
    rows = lines(leases_part)
    assert rows[0] == ["IP", "NODE", "NETWORK", "CONTAINER", "ID", "IFNAME", "SINCE"]
    assert [r[:5] for r in rows[1:]] == [
        ["198.19.220.2", N1, NET, "pysc-c1", "eth0"],
        ["198.19.220.3", N1, NET, "pysc-c2", "eth0"],
        ["198.19.220.10", N2, NET, "pysc-c5", "eth0"],
        ["198.19.220.64", N2, NET, "pysc-c3", "eth0"],
        ["198.19.222.2", N2, NET6, "pysc-c4", "eth0"],
        ["fd00:5c::2", N2, NET6, "pysc-c4", "eth0"],
    ]
    assert all(len(r) == 7 and r[5].count("-") == 2 for r in rows[1:])  # since: date time
    assert run("ipam", "show", "--database", str(filled), "--node", N2, "--network", NET6) == 0
    blocks_part, leases_part = capsys.readouterr().out.split("\n\n")
    assert [r[2] for r in lines(blocks_part)[1:]] == ["198.19.222.0/26", "fd00:5c::/122"]
    assert [r[0] for r in lines(leases_part)[1:]] == ["198.19.222.2", "fd00:5c::2"]
    assert run("ipam", "show", "--database", str(filled), "--node", "pysc-none") == 0
    assert capsys.readouterr().out == "no blocks claimed\n\nno leases\n"


def test_release_node_without_yes_changes_nothing(filled, capsys):
    before = (leases(filled), blocks(filled))
    assert run("ipam", "release-node", N1, "--database", str(filled)) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (
        f"node '{N1}': would free 2 lease(s) and 0 block(s), hand 1 block(s) to other nodes"
    )
    assert "198.19.220.0/26  hand to pysc-n2 (its leases use it)" in out
    assert err.startswith("pycni: ipam failed: nothing released: pass --yes")
    assert "gone for good" in err and err.count("\n") == 1
    assert (leases(filled), blocks(filled)) == before


def test_release_node_frees_exactly_its_leases_and_blocks(filled, capsys):
    before_leases, before_blocks = leases(filled), blocks(filled)
    assert run("ipam", "release-node", N2, "--database", str(filled), "--yes") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"node '{N2}': freed 4 lease(s) and 3 block(s)"
    assert leases(filled) == [r for r in before_leases if r[1] != N2]
    assert blocks(filled) == [r for r in before_blocks if r[1] != N2]
    assert leases(filled) == [
        ("198.19.220.2", N1, "pysc-c1", "eth0"),
        ("198.19.220.3", N1, "pysc-c2", "eth0"),
    ]
    # again: nothing left, exit 0, the nodes there named
    assert run("ipam", "release-node", N2, "--database", str(filled), "--yes") == 0
    assert capsys.readouterr().out == (
        f"node '{N2}' holds no lease or block in {filled} (nodes: {N1})\n"
    )
    assert run("ipam", "check", "--database", str(filled)) == 0
    capsys.readouterr()


def test_release_node_hands_over_a_block_others_still_use(filled, sc_netns, capsys):
    assert run("ipam", "release-node", N1, "--database", str(filled), "--yes") == 0
    out = capsys.readouterr().out
    assert "198.19.220.0/26  handed to pysc-n2 (its leases use it)" in out
    assert [r for r in leases(filled) if r[1] == N1] == []
    assert ("198.19.220.10", N2, "pysc-c5", "eth0") in leases(filled)
    assert blocks(filled) == [
        ("198.19.220.0/26", N2),
        ("198.19.220.64/26", N2),
        ("198.19.222.0/26", N2),
        ("fd00:5c::/122", N2),
    ]
    assert run("ipam", "check", "--database", str(filled)) == 0
    capsys.readouterr()
    # node 2's next address comes from the block it now owns, from the bottom
    assert add(sc_netns, filled, N2, "pysc-c6")["ips"][0]["address"] == "198.19.220.2/23"


def test_check_ok(filled, capsys):
    assert run("ipam", "check", "--database", str(filled)) == 0
    assert capsys.readouterr().out == f"{filled}: ok (3 pool(s), 4 block(s), 6 lease(s))\n"


def _sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def _findings(db: Path, capsys) -> list[str]:
    assert run("ipam", "check", "--database", str(db)) == 1
    out, err = capsys.readouterr()
    found = out.splitlines()
    assert err == f"pycni: ipam failed: {len(found)} problem(s) in {db}\n"
    return found


def test_check_finds_leases_outside_their_block_and_pool(filled, capsys):
    _sql(
        filled,
        # in the pool's ranges but not in block 1 (198.19.220.0/26)
        "INSERT INTO leases (pool, block, ip, node, network, container_id, ifname, set_index) "
        f"VALUES (1, 1, '198.19.221.7', '{N1}', '{NET}', 'pysc-x1', 'eth0', 0)",
        # outside the pool's ranges and its block
        "INSERT INTO leases (pool, block, ip, node, network, container_id, ifname, set_index) "
        f"VALUES (1, 1, '198.19.223.9', '{N1}', '{NET}', 'pysc-x2', 'eth0', 0)",
    )
    found = _findings(filled, capsys)
    assert found == [
        f"lease 198.19.221.7 of pysc-x1/eth0 on node '{N1}' (network '{NET}'): outside its "
        "block 198.19.220.0/26",
        f"lease 198.19.223.9 of pysc-x2/eth0 on node '{N1}' (network '{NET}'): outside the "
        "ranges of its pool (198.19.220.1-198.19.221.254)",
        f"lease 198.19.223.9 of pysc-x2/eth0 on node '{N1}' (network '{NET}'): outside its "
        "block 198.19.220.0/26",
    ]


def test_check_finds_overlapping_blocks_and_pools(filled, capsys):
    _sql(
        filled,
        # a /25 over node 1's and node 2's /26 of pool 1
        f"INSERT INTO blocks (pool, cidr, node) VALUES (1, '198.19.220.0/25', '{N2}')",
        # a second pool of pyscnet over the first, holding a block
        "INSERT INTO pools (id, network, range_set, family) VALUES "
        f"(9, '{NET}', '198.19.221.0/24 198.19.221.1-198.19.221.254', 4)",
        f"INSERT INTO blocks (pool, cidr, node) VALUES (9, '198.19.221.0/26', '{N1}')",
    )
    found = _findings(filled, capsys)
    assert found == [
        f"blocks 198.19.220.0/26 (node '{N1}') and 198.19.220.0/25 (node '{N2}') of pool 1 overlap",
        f"blocks 198.19.220.0/25 (node '{N2}') and 198.19.220.64/26 (node '{N2}') of pool 1 "
        "overlap",
        f"pools 1 and 9 of network '{NET}' overlap and both hold blocks: "
        "198.19.220.1-198.19.221.254 and 198.19.221.1-198.19.221.254 (its ranges changed? the "
        "old pool drains as its leases go)",
    ]


def test_check_finds_duplicates_across_pools_and_dangling_rows(filled, capsys):
    # the schema forbids a second lease of an address per network: rebuild
    # the leases table without that constraint, as a broken engine might
    _sql(
        filled,
        "PRAGMA foreign_keys = OFF",
        "CREATE TABLE leases_copy AS SELECT * FROM leases",
        "DROP TABLE leases",
        "ALTER TABLE leases_copy RENAME TO leases",
        "INSERT INTO pools (id, network, range_set, family) VALUES "
        f"(9, '{NET}', '198.19.220.0/24 198.19.220.1-198.19.220.254', 4)",
        f"INSERT INTO blocks (id, pool, cidr, node) VALUES (9, 9, '198.19.220.0/27', '{N2}')",
        "INSERT INTO leases (id, pool, block, ip, node, network, container_id, ifname, "
        f"set_index) VALUES (90, 9, 9, '198.19.220.2', '{N2}', '{NET}', 'pysc-x3', 'eth0', 0)",
        # a block whose pool does not exist (the foreign key is off here)
        f"INSERT INTO blocks (id, pool, cidr, node) VALUES (91, 77, '198.19.223.0/26', '{N2}')",
    )
    found = _findings(filled, capsys)
    assert "sqlite foreign_key_check: blocks row 91 refers to a missing pools row" in found
    assert (
        f"address 198.19.220.2 of network '{NET}' is leased 2 times: pool 1 (pysc-c1/eth0 on "
        f"{N1}), pool 9 (pysc-x3/eth0 on {N2})" in found
    )
    assert any(f.startswith("pools 1 and 9 of network") for f in found)


def test_missing_database(tmp_path, capsys):
    path = tmp_path / "nothing.db"
    for sub in ("pools", "show", "check"):
        assert run("ipam", sub, "--database", str(path)) == 1
        assert capsys.readouterr().err == (
            f"pycni: ipam failed: no database at {path}: `pycni ipam init --database {path}` "
            "creates one (or check --database / the network's ipam.database.path)\n"
        )
    assert run("ipam", "release-node", N1, "--database", str(path), "--yes") == 1
    assert "no database at" in capsys.readouterr().err
    assert not path.exists()


def test_not_an_ipam_database(tmp_path, capsys):
    empty = tmp_path / "empty.db"
    sqlite3.connect(str(empty)).close()
    assert run("ipam", "pools", "--database", str(empty)) == 1
    assert "holds no sql IPAM schema" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, certainly not one of ours" * 100)
    assert run("ipam", "check", "--database", str(junk)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pycni: ipam failed: sql: database {junk}: file is not a database")
    assert err.count("\n") == 1


def test_newer_schema_is_the_plugins_error(filled, sc_netns, capsys):
    _sql(filled, f"UPDATE schema_version SET version = {LATEST + 1}")
    want = (
        f"sql: database {filled} has schema version {LATEST + 1}, newer than version "
        f"{LATEST} this pycni knows: upgrade pycni on this node"
    )
    for argv in (("init",), ("pools",), ("show",), ("check",), ("release-node", N1, "--yes")):
        assert run("ipam", *argv, "--database", str(filled)) == 1
        assert capsys.readouterr().err == f"pycni: ipam failed: {want} (CNI error 7)\n"
    runner = PluginRunner(PLUGIN, netns=sc_netns, container_id="pysc-c9")
    outcome = runner.add(make_conf(filled, V4, node=N1, name=NET))
    assert json.loads(outcome.stdout)["msg"] == want


def test_conf_takes_the_networks_database(filled, tmp_path, monkeypatch, capsys):
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    conf = make_conf(filled, V4, node=N1, name=NET)
    doc = {
        "cniVersion": "1.0.0",
        "name": NET,
        "plugins": [{"type": "bridge", "ipam": conf["ipam"]}],
    }
    (conf_dir / "10-pysc.conflist").write_text(json.dumps(doc))
    (conf_dir / "20-other.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "pysc-hl", "plugins": [{"type": "bridge"}]})
    )
    monkeypatch.setenv("NETCONFPATH", str(conf_dir))
    assert run("ipam", "check", "--conf", NET) == 0
    assert capsys.readouterr().out.startswith(f"{filled}: ok")
    assert run("ipam", "check", "--conf", "pysc-hl") == 1
    assert "network 'pysc-hl' of" in capsys.readouterr().err
    assert run("ipam", "check", "--conf", "pysc-nope") == 1
    assert "pysc-nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "expected a subcommand: init, pools, show, release-node, check"),
        (("frob",), "unknown subcommand 'frob'"),
        (("pools", "--yes"), "pools takes no --yes"),
        (("init", "--node", "x"), "init takes no --node"),
        (("release-node",), "release-node takes exactly one NODE"),
        (("show", "extra"), "show takes no arguments, got 'extra'"),
        (("check", "--database", "a", "--conf", "b"), "give --database or --conf, not both"),
        (("check", "--database"), "flag needs an argument: --database"),
        (("check", "--bogus"), "unknown flag: --bogus"),
    ],
)
def test_usage_errors(argv, message, capsys):
    assert run("ipam", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.endswith("(see 'pycni ipam --help')\n")


def test_help(capsys):
    for argv in (("ipam", "--help"), ("ipam", "release-node", "--help"), ("help", "ipam")):
        assert run(*argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: pycni ipam SUBCOMMAND [--database PATH]\n")
        for sub in ("init", "pools", "show", "release-node NODE [--yes]", "check"):
            assert f"\n  {sub}" in out
        # the trade-off of never reclaiming a node that stopped answering
        assert "merely stopped answering" in out and "still\nruns its containers" in out
        assert max(len(line) for line in out.splitlines()) <= 90
    assert run("--help") == 0
    assert "ipam SUBCOMMAND [--database PATH]" in capsys.readouterr().out
