"""Shared helpers of the sql IPAM tests: configs and a view of the tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

PLUGIN = "pycni.plugins.ipam.sql"
NET = "pysqnet"


def make_conf(
    db: Path | str,
    ranges: list | None = None,
    *,
    node: str = "pysq-n1",
    version: str = "1.1.0",
    name: str = NET,
    **ipam,
) -> dict:
    """An sql network config; ranges default to one /24 of 198.18.0.0/15."""
    body: dict = {"type": "sql", "database": {"engine": "sqlite", "path": str(db)}, "node": node}
    if ranges is None and "subnet" not in ipam:
        ranges = [[{"subnet": "198.18.0.0/24"}]]
    if ranges is not None:
        body["ranges"] = ranges
    body.update(ipam)
    return {"cniVersion": version, "name": name, "type": "sql", "ipam": body}


def table(db: Path | str, name: str) -> list[tuple]:
    """Every row of one table (through the sqlite3 package, not our code)."""
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(f"SELECT * FROM {name} ORDER BY id").fetchall()
    finally:
        conn.close()


def leases(db: Path | str) -> list[tuple[str, str, str, str]]:
    """(ip, node, container_id, ifname) of every lease."""
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(
            "SELECT ip, node, container_id, ifname FROM leases ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def blocks(db: Path | str) -> list[tuple[str, str]]:
    """(cidr, node) of every claimed block."""
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("SELECT cidr, node FROM blocks ORDER BY id").fetchall()
    finally:
        conn.close()
