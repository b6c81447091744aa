"""sql's configuration: the extra keys, errors naming key and value."""

from __future__ import annotations

import os

import pytest

from pycni.plugins.ipam.sql.conf import DEFAULT_PATH, load, load_store
from pycni.spec.errors import CNIError

from support.outcomes import err
from support.sql_ipam import make_conf


def error_of(conf: dict) -> tuple[int, str]:
    with pytest.raises(CNIError) as info:
        load(conf)
    return info.value.code, info.value.msg


def test_defaults():
    conf = make_conf("/x/db", node="")
    del conf["ipam"]["database"]
    cfg = load(conf)
    assert cfg.database.engine == "sqlite"
    assert cfg.database.path == DEFAULT_PATH
    assert cfg.node == os.uname().nodename
    assert cfg.block_sizes == [26]


def test_block_size_defaults_per_family_and_shrink_to_small_subnets():
    ranges = [[{"subnet": "198.18.0.0/28"}], [{"subnet": "fd00::/64"}]]
    assert load(make_conf("/x/db", ranges)).block_sizes == [28, 122]
    conf = make_conf("/x/db", ranges, blockSize={"ipv4": 30, "ipv6": 120})
    assert load(conf).block_sizes == [30, 120]
    assert load(make_conf("/x/db", ranges[:1], blockSize=31)).block_sizes == [31]
    # a number is every set's size: a /31 of an IPv6 /64 cannot be
    assert error_of(make_conf("/x/db", ranges, blockSize=31)) == (
        7,
        "invalid ipam.blockSize 31: range set 1 needs a prefix length between 64 "
        "(its subnet) and 128",
    )


@pytest.mark.parametrize(
    "ipam, key, value",
    [
        ({"database": "sqlite"}, "ipam.database", "string 'sqlite'"),
        ({"database": {"engine": "postgres"}}, "ipam.database.dsn", "missing"),
        ({"database": {"engine": 5}}, "ipam.database.engine", "number 5"),
        ({"database": {"path": "rel/ipam.db"}}, "ipam.database.path", "'rel/ipam.db'"),
        ({"database": {"path": 7}}, "ipam.database.path", "number 7"),
        ({"database": {"path": "/a\0b"}}, "ipam.database.path", "NUL"),
        ({"node": 3}, "ipam.node", "number 3"),
        ({"node": "a\0b"}, "ipam.node", "'a\\x00b'"),
        ({"blockSize": 20}, "ipam.blockSize", "20"),
        ({"blockSize": 33}, "ipam.blockSize", "33"),
        ({"blockSize": "26"}, "ipam.blockSize", "string '26'"),
        ({"blockSize": True}, "ipam.blockSize", "True"),
        ({"blockSize": {"ipv4": 8}}, "ipam.blockSize.ipv4", "8"),
    ],
)
def test_bad_keys_are_code_7_naming_key_and_value(tmp_path, ipam, key, value):
    conf = make_conf(tmp_path / "db")
    conf["ipam"].update(ipam)
    code, msg = error_of(conf)
    assert code == 7
    assert key in msg and value in msg, msg


def test_unknown_engine_lists_the_engines():
    conf = make_conf("/x/db")
    conf["ipam"]["database"] = {"engine": "postgresql"}
    assert error_of(conf) == (
        7,
        "invalid ipam.database.engine 'postgresql': this version supports postgres, sqlite",
    )


def test_del_needs_only_name_and_database():
    conf = make_conf("/x/db", ranges=[[{"subnet": "nonsense"}]])
    cfg = load_store(conf)
    assert (cfg.name, cfg.database.path, cfg.node) == ("pysqnet", "/x/db", "pysq-n1")
    assert error_of(conf)[0] == 7


def test_ranges_are_host_locals(tmp_path):
    """The same range errors as host-local: its decoder is shared."""
    from pycni.plugins.ipam.host_local.config import load as hl_load

    bad = [[{"subnet": "198.18.0.0/24", "rangeStart": "198.18.1.5"}]]
    conf = make_conf(tmp_path / "db", bad)
    with pytest.raises(CNIError) as hl:
        hl_load({**conf, "ipam": {**conf["ipam"], "type": "host-local"}})
    assert error_of(conf) == (hl.value.code, hl.value.msg)


def test_bad_config_through_the_plugin(runner, db):
    conf = make_conf(db, blockSize=12)
    code, msg = err(runner.add(conf))
    assert code == 7 and "ipam.blockSize 12" in msg
    assert not db.exists()
    conf = make_conf(db)
    conf["ipam"]["database"]["engine"] = "oracle"
    assert err(runner.add(conf))[0] == 7
