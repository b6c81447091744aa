"""`pycni ipam`: the cluster-wide view of the sql IPAM plugin's database.

    pycni ipam init|pools|show|release-node|check [--database PATH|DSN | --conf NETWORK]

Everything goes through the sql package's engine interface (open, read and
write transactions, schema version, integrity) and its admin queries, so
another engine serves the same commands. Only `init` creates or migrates a
database; the others refuse one that is missing, has no schema, an older
one (run init) or a newer one (the plugin's own error).
"""

from __future__ import annotations

import os

from pycni.cli.main import Failure, UsageError, out, parse_args, printable

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.sql.conf import DatabaseConfig
    from pycni.plugins.ipam.sql.engine import Engine

SUBCOMMANDS = ("init", "pools", "show", "release-node", "check")

HELP = """\
SUBCOMMAND is one of the five below; each reads the database of the sql IPAM
plugin, shared by every node of its networks: --database PATH names an
SQLite file (default /var/lib/cni/sql-ipam/ipam.db, the plugin's default),
--database DSN a PostgreSQL database (a libpq conninfo string with "=", e.g.
"host=/run/postgresql dbname=cni user=cni", or a postgresql:// URI; needs
pycni[postgres]); --conf NETWORK takes the database of that network's sql IPAM config, found
in $NETCONFPATH (default /etc/cni/net.d).

  init                  create the database or bring its schema up to date;
                        prints the schema version
  pools                 per pool: network, ranges, blocks claimed / total,
                        leases, free addresses
  show [--network N] [--node N]
                        claimed blocks per node, then leases (ip, node,
                        network, container id, ifname, since, in UTC)
  release-node NODE [--yes]
                        free every lease and block of NODE, in one
                        transaction; without --yes, print what would be
                        freed and exit 1
  check                 integrity: the engine's own checks, leases outside
                        their block or pool, overlapping blocks of a pool,
                        overlapping pools of a network, duplicate addresses;
                        exit 1 with the findings

release-node is for a node the operator knows is gone for good (deleted,
reinstalled, its containers dead). pycni never reclaims the addresses of a
node that merely stopped answering: a partitioned or overloaded node still
runs its containers, and handing their addresses to new containers elsewhere
would put two containers on one address once it comes back. The cost of that
choice: a dead node's addresses stay leased until someone runs release-node.
Blocks of NODE that other nodes' (borrowed) leases still use are handed to
the node with most leases in them instead of being freed.

Free addresses assume each range's default gateway (the subnet's first
address); a custom gateway inside the range shifts the count by one."""


def main(args: list[str]) -> int:
    _, positional, given = parse_args(
        args, ("--yes",), values=("--database", "--conf", "--network", "--node")
    )
    if not positional:
        raise UsageError("expected a subcommand: " + ", ".join(SUBCOMMANDS))
    sub, rest = positional[0], positional[1:]
    if sub not in SUBCOMMANDS:
        raise UsageError(f"unknown subcommand {sub!r}: expected one of " + ", ".join(SUBCOMMANDS))
    allowed = {"release-node": {"--yes"}, "show": {"--network", "--node"}}.get(sub, set())
    for flag in given:
        if flag not in allowed | {"--database", "--conf"}:
            raise UsageError(f"{sub} takes no {flag}")
    for flag, vals in given.items():
        if len(vals) > 1:
            raise UsageError(f"{flag} given more than once")
    if sub == "release-node":
        if len(rest) != 1:
            raise UsageError("release-node takes exactly one NODE")
    elif rest:
        raise UsageError(f"{sub} takes no arguments, got {rest[0]!r}")
    db = _database(given)
    if sub == "init":
        return _init(db)
    engine = _open(db)
    try:
        if sub == "pools":
            return _pools(engine)
        if sub == "show":
            return _show(engine, _one(given, "--network"), _one(given, "--node"))
        if sub == "release-node":
            return _release(engine, db.label, rest[0], "--yes" in given)
        return _check(engine, db.label)
    finally:
        engine.close()


def _one(given: dict[str, list[str]], flag: str) -> str | None:
    vals = given.get(flag)
    return vals[0] if vals else None


def _database(given: dict[str, list[str]]) -> DatabaseConfig:
    from pycni.plugins.ipam.sql.conf import DEFAULT_PATH, DatabaseConfig

    path, network = _one(given, "--database"), _one(given, "--conf")
    if path is not None and network is not None:
        raise UsageError("give --database or --conf, not both")
    if network is not None:
        return _database_of_network(network)
    if path == "":
        raise UsageError("--database needs a path")
    if path is not None and (path.startswith(("postgresql://", "postgres://")) or "=" in path):
        return DatabaseConfig("postgres", "", path)
    return DatabaseConfig("sqlite", os.path.abspath(path or DEFAULT_PATH))


def _database_of_network(name: str) -> DatabaseConfig:
    """The database of network `name`'s sql IPAM, as the plugin reads it."""
    from pycni.plugins.ipam.sql.conf import load_store
    from pycni.runtime.loader import DEFAULT_CONF_DIR, load_network_conf
    from pycni.spec.jsonutil import ci_get

    conf_dir = os.environ.get("NETCONFPATH") or DEFAULT_CONF_DIR
    net = load_network_conf(conf_dir, name)
    for plugin in net.plugins:
        ipam = ci_get(plugin.raw, "ipam")
        if isinstance(ipam, dict) and ci_get(ipam, "type") == "sql":
            return load_store({"name": net.name, "ipam": ipam}).database
    raise Failure(f"network {name!r} of {conf_dir} has no sql IPAM: use --database PATH")


def _missing(db: DatabaseConfig) -> Failure:
    if db.engine != "sqlite":
        return Failure(
            f"{db.label} holds no sql IPAM schema: `pycni ipam init --database DSN` creates it"
        )
    return Failure(
        f"no database at {db.path}: `pycni ipam init --database {db.path}` creates one "
        "(or check --database / the network's ipam.database.path)"
    )


def _init(db: DatabaseConfig) -> int:
    from pycni.plugins.ipam.sql.engine import open_engine

    existed = os.path.exists(db.path) if db.engine == "sqlite" else None
    engine = open_engine(db, create=True, migrate=False)
    assert engine is not None
    try:
        before = engine.schema_version()
        after = engine.migrate()
    finally:
        engine.close()
    if existed is None:  # a server's database: created when it had no schema
        existed = before > 0
    if not existed:
        what = "created"
    elif before == after:
        what = "up to date"
    else:
        what = f"migrated from version {before}"
    out(printable(f"{db.label}: schema version {after} ({what})") + "\n")
    return 0


def _open(db: DatabaseConfig) -> Engine:
    """The existing database at its current schema version, or a Failure."""
    from pycni.plugins.ipam.sql.engine import open_engine
    from pycni.plugins.ipam.sql.schema import LATEST, newer_error

    if db.engine == "sqlite" and not os.path.exists(db.path):
        raise _missing(db)
    engine = open_engine(db, create=False, migrate=False)
    if engine is None:
        raise _missing(db)
    try:
        version = engine.schema_version()
        name = db.label
        again = db.path if db.engine == "sqlite" else "DSN"
        if version > LATEST:
            raise newer_error(name, version)
        if version == 0:
            raise Failure(
                f"{name} holds no sql IPAM schema: `pycni ipam init --database {again}` creates it"
            )
        if version < LATEST:
            raise Failure(
                f"{name} has schema version {version}, older than {LATEST}: `pycni ipam "
                f"init --database {again}` upgrades it (so does the plugin's next ADD)"
            )
    except BaseException:
        engine.close()
        raise
    return engine


def table(rows: list[tuple], header: tuple[str, ...]) -> None:
    """Aligned columns, two spaces apart, the last one unpadded."""
    cells = [header, *(tuple(printable(str(c)) for c in row) for row in rows)]
    widths = [max(len(r[c]) for r in cells) for c in range(len(header) - 1)]
    for r in cells:
        line = "  ".join(r[c].ljust(widths[c]) for c in range(len(header) - 1))
        out((line + "  " + r[-1]).rstrip() + "\n")


def count(n: int) -> str:
    """A count as digits, or as a power of two when it has more than 7
    (an IPv6 /64 holds 2^64 addresses, 2^58 blocks of /122)."""
    if n < 10_000_000:
        return str(n)
    bits = n.bit_length() - 1
    return f"2^{bits}" if n == 1 << bits else f"~2^{(n - 1).bit_length()}"


def _pools(engine: Engine) -> int:
    from pycni.plugins.ipam.sql import admin

    tx = engine.read()
    try:
        found = admin.pools(tx)
    finally:
        tx.rollback()
    if not found:
        out("no pools yet (a pool appears at the first ADD of its network)\n")
        return 0
    rows = []
    for p in found:
        ranges = p.key.replace(",", ", ") if p.rset is not None else f"{p.key} (unreadable)"
        rows.append((p.network, ranges, f"{p.blocks}/{count(p.total)}", p.leases, count(p.free)))
    table(rows, ("NETWORK", "RANGES", "BLOCKS", "LEASES", "FREE"))
    return 0


def _show(engine: Engine, network: str | None, node: str | None) -> int:
    from pycni.plugins.ipam.sql import admin

    tx = engine.read()
    try:
        blocks = admin.blocks(tx, network, node)
        leases = admin.leases(tx, network, node)
    finally:
        tx.rollback()
    if blocks:
        rows = [(n, net, cidr, f"{used}/{cap}", since) for n, net, cidr, used, cap, since in blocks]
        table(rows, ("NODE", "NETWORK", "BLOCK", "LEASES", "CLAIMED"))
    else:
        out("no blocks claimed\n")
    out("\n")
    if leases:
        table(leases, ("IP", "NODE", "NETWORK", "CONTAINER ID", "IFNAME", "SINCE"))
    else:
        out("no leases\n")
    return 0


def _release(engine: Engine, path: str, node: str, yes: bool) -> int:
    from pycni.plugins.ipam.sql import admin

    tx = engine.write() if yes else engine.read()
    try:
        plan = admin.release_node(tx, node) if yes else admin.plan_release(tx, node)
        others = [] if plan else admin.nodes(tx)
        if yes:
            tx.commit()
    finally:
        tx.rollback()
    if not plan:
        known = ", ".join(others) or "none"
        out(printable(f"node {node!r} holds no lease or block in {path} (nodes: {known})") + "\n")
        return 0
    verb = "freed" if yes else "would free"
    text = f"node {node!r}: {verb} {len(plan.leases)} lease(s) and {len(plan.blocks)} block(s)"
    if plan.handed:
        text += f", {'handed' if yes else 'hand'} {len(plan.handed)} block(s) to other nodes"
    out(printable(text) + "\n")
    if plan.leases:
        out("\n")
        table(
            [(ip, net, cid, ifname) for _, ip, net, cid, ifname in plan.leases],
            ("IP", "NETWORK", "CONTAINER ID", "IFNAME"),
        )
    if plan.blocks or plan.handed:
        out("\n")
        rows = [(net, cidr, "freed" if yes else "free") for _, net, cidr in plan.blocks]
        for _, net, cidr, heir in plan.handed:
            action = "handed to" if yes else "hand to"
            rows.append((net, cidr, f"{action} {heir} (its leases use it)"))
        table(rows, ("NETWORK", "BLOCK", "ACTION"))
    if not yes:
        raise Failure(
            f"nothing released: pass --yes to free what node {node!r} holds, asserting "
            "that the node is gone for good (its containers dead); a node that merely "
            "stopped answering may still run them"
        )
    return 0


def _check(engine: Engine, path: str) -> int:
    from pycni.plugins.ipam.sql import admin

    findings = engine.integrity()
    tx = engine.read()
    try:
        findings += admin.check(tx)
        counts = [
            int(tx.rows(f"SELECT COUNT(*) FROM {name}")[0][0])
            for name in ("pools", "blocks", "leases")
        ]
    finally:
        tx.rollback()
    if findings:
        for line in findings:
            out(printable(line) + "\n")
        raise Failure(f"{len(findings)} problem(s) in {path}")
    out(
        printable(f"{path}: ok ({counts[0]} pool(s), {counts[1]} block(s), {counts[2]} lease(s))")
        + "\n"
    )
    return 0
