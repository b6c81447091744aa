"""The project's tables and their forward migrations.

`MIGRATIONS[i]` takes a database from version i to i + 1; the version is
the single row of `schema_version`. An engine applies the missing ones in
one transaction when it opens the database, and refuses a database whose
version is newer than `LATEST` (written by a newer pycni).

Tables: `pools` (one per network and range set), `blocks` (a node's claim
on an aligned block of a pool), `leases` (one address of one attachment).
The database, not the code, keeps addresses unique: UNIQUE(pool, ip) and
UNIQUE(network, ip) for addresses, UNIQUE(network, container_id, ifname,
set_index) for "one address per attachment and range set",
UNIQUE(pool, cidr) for blocks. Addresses and blocks are stored as Go's
canonical text, so they read well in any SQL shell.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError

MIGRATIONS: list[list[str]] = [
    # 1: the tables
    [
        """CREATE TABLE pools (
            id INTEGER PRIMARY KEY,
            network TEXT NOT NULL,
            range_set TEXT NOT NULL,
            family INTEGER NOT NULL,
            created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            UNIQUE (network, range_set)
        )""",
        """CREATE TABLE blocks (
            id INTEGER PRIMARY KEY,
            pool INTEGER NOT NULL REFERENCES pools (id),
            cidr TEXT NOT NULL,
            node TEXT NOT NULL,
            claimed TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            UNIQUE (pool, cidr)
        )""",
        """CREATE TABLE leases (
            id INTEGER PRIMARY KEY,
            pool INTEGER NOT NULL REFERENCES pools (id),
            block INTEGER NOT NULL REFERENCES blocks (id),
            ip TEXT NOT NULL,
            node TEXT NOT NULL,
            network TEXT NOT NULL,
            container_id TEXT NOT NULL,
            ifname TEXT NOT NULL,
            set_index INTEGER NOT NULL,
            created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            UNIQUE (pool, ip),
            UNIQUE (network, ip),
            UNIQUE (network, container_id, ifname, set_index)
        )""",
    ],
    # 2: what GC, DEL and block release look up
    [
        "CREATE INDEX leases_block ON leases (block)",
        "CREATE INDEX leases_node ON leases (network, node)",
        "CREATE INDEX blocks_node ON blocks (pool, node)",
    ],
]

LATEST = len(MIGRATIONS)


def newer_error(path: str, current: int, latest: int = LATEST) -> CNIError:
    """A database written by a newer pycni: neither the plugin nor `pycni
    ipam` reads or changes it."""
    return CNIError(
        ERR_INVALID_NETWORK_CONFIG,
        f"sql: database {path} has schema version {current}, newer than version "
        f"{latest} this pycni knows: upgrade pycni on this node",
    )
