"""The sql IPAM verbs called in-process (as the node daemon runs them) on
either engine, and a view of a PostgreSQL database's tables through
psycopg directly (not through our engine)."""

from __future__ import annotations

import json

from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError

from support.sql_ipam import make_conf

NET = "pypgnet"


def conf_for(db: str, ranges: list | None = None, *, node: str = "pypg-n1", **ipam) -> dict:
    """An sql config on `db`: a dsn (postgres) or a file path (sqlite)."""
    conf = make_conf("/unused", ranges, node=node, name=NET, **ipam)
    if "=" in db or db.startswith("postgresql://"):
        conf["ipam"]["database"] = {"engine": "postgres", "dsn": db}
    else:
        conf["ipam"]["database"] = {"engine": "sqlite", "path": db}
    return conf


def call(
    command: str, conf: dict, cid: str = "pypg-c1", ifname: str = "eth0", args: str = ""
) -> dict | None:
    """verbs.cmd_<command> in this process; ADD's result as a dict (of the
    config's version). Raises CNIError as the verb does."""
    from pycni.plugins.ipam.sql import verbs

    cmd = CmdArgs(
        command,
        container_id=cid,
        netns="/var/run/netns/pypg-unused",
        ifname=ifname,
        args=args,
        stdin_data=json.dumps(conf).encode(),
    )
    fn = getattr(verbs, "cmd_" + command.lower())
    out = fn(cmd)
    if out is None:
        return None
    return out.to_dict(conf.get("cniVersion"))


def outcome(command: str, conf: dict, **kw) -> tuple[int, object]:
    """(0, result) or (code, msg): a verb's outcome as data."""
    try:
        return 0, call(command, conf, **kw)
    except CNIError as e:
        return e.code, e.msg


def query(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description is not None else []


def pg_leases(dsn: str) -> list[tuple]:
    """(ip, node, container_id, ifname) of every lease."""
    return query(dsn, "SELECT ip, node, container_id, ifname FROM leases ORDER BY id")


def pg_blocks(dsn: str) -> list[tuple]:
    """(cidr, node) of every claimed block."""
    return query(dsn, "SELECT cidr, node FROM blocks ORDER BY id")
