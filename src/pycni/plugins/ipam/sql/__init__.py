"""sql IPAM: addresses leased from a database shared by the nodes of a network.

The host-local configuration surface (range sets, gateway, routes, dns,
requested addresses) over a transactional store instead of one file per
address. Each node claims blocks of a pool (`blockSize`, default /26 and
/122) and hands out addresses inside its own blocks; uniqueness is the
database's (UNIQUE constraints, one transaction per verb), never timing.

Modules: verbs.py (the verbs), conf.py (configuration), blocks.py (block
and address arithmetic, no I/O), allocator.py (allocation over any engine's
transaction), schema.py (tables and forward migrations), engine.py (the
engine interface and the `database.engine` table), sqlite.py (the SQLite
engine, `_sqlite3` only). skel imports remote.py only when a verb runs, so
VERSION loads no database module; remote.py runs verbs.py here (SQLite) or
forwards the verb to the node daemon, `sql daemon` (daemon.py), for an
engine whose driver a plugin process must not load (PostgreSQL).
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="pycni sql IPAM plugin", verbs="pycni.plugins.ipam.sql.remote")


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "daemon":
        from pycni.plugins.ipam.sql.daemon import main as daemon_main

        sys.exit(daemon_main(sys.argv[2:]))
    plugin_main(PLUGIN)
