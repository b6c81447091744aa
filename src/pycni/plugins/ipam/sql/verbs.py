"""sql's verbs: ADD, DEL, CHECK, GC and STATUS, one transaction each.

ADD and DEL open the database with the write lock for their whole
transaction; a failure anywhere rolls the transaction back, so an ADD that
fails (or is killed) holds no lease and no block. DEL, GC, CHECK and
STATUS never create the database: no file means nothing is leased.
"""

from __future__ import annotations

from pycni.plugins.ipam.sql.conf import load, load_store
from pycni.plugins.ipam.sql.engine import open_engine
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, ERR_IO_FAILURE, ERR_PLUGIN_NOT_AVAILABLE, CNIError
from pycni.spec.ipnet import ip_text
from pycni.spec.result import DNS, Result


def cmd_add(args: CmdArgs) -> Result:
    from pycni.faultpoint import step
    from pycni.plugins.ipam.host_local.config import requests_per_set
    from pycni.plugins.ipam.sql.allocator import Attachment, allocate

    cfg = load(args.conf, args.args, args.cni_version)
    dns = cfg.dns or DNS()
    if cfg.dns is None and cfg.resolv_conf:
        from pycni.plugins.ipam.host_local.dns import parse_resolv_conf

        dns = parse_resolv_conf(cfg.resolv_conf)
    wanted, remaining = requests_per_set(cfg.range_sets, cfg.requested)
    if remaining:
        raise CNIError(
            ERR_INTERNAL,
            "failed to allocate all requested IPs: " + " ".join(ip_text(*a) for a in remaining),
        )
    who = Attachment(cfg.name, cfg.node, args.container_id, args.ifname)

    def work(tx) -> list:
        ips = []
        for idx, (rset, prefix, want) in enumerate(zip(cfg.range_sets, cfg.block_sizes, wanted)):
            try:
                value = allocate(tx, who, idx, rset, prefix, want)
            except CNIError as err:
                raise CNIError(
                    err.code, f"failed to allocate for range {idx}: {err.msg}", err.details
                )
            rng = rset.range_for(rset.family, value)
            assert rng is not None
            ips.append(rng.ip_config(value))
        return ips

    engine = open_engine(cfg.database, create=True)
    assert engine is not None
    try:
        step("sql.add.begin")
        ips = engine.transaction(work, "sql.add.commit")
    finally:
        engine.close()
    return Result(ips=ips, routes=cfg.routes, dns=dns)


def _commit(cfg, commit_step: str, work) -> None:
    """Run `work(tx)` in one write transaction of an existing database
    (none: nothing is leased, nothing to do), then commit it."""
    engine = open_engine(cfg.database, create=False)
    if engine is None:
        return
    try:
        engine.transaction(work, commit_step)
    finally:
        engine.close()


def _read(cfg, work, default):
    """`work(tx)` in one read transaction of an existing database; `default`
    when there is none (nothing is leased)."""
    engine = open_engine(cfg.database, create=False)
    if engine is None:
        return default
    try:
        tx = engine.read()
        try:
            return work(tx)
        finally:
            tx.rollback()
    finally:
        engine.close()


def cmd_del(args: CmdArgs) -> None:
    """Release the attachment's leases; an unknown one is no error.

    Only the network name and the database are read from the config, so a
    DEL still cleans up after its ranges changed or went bad. A SQLite file
    that is no database (garbage, a directory) is no reason to fail a DEL,
    which a runtime would retry forever: the leases stay, with a note on
    stderr, for GC once the file is repaired. (A database that is busy or
    unreachable is code 11: the runtime's retry will succeed.)
    """
    from pycni.plugins.ipam.sql.allocator import release

    cfg = load_store(args.conf)
    try:
        _commit(
            cfg, "sql.del.commit", lambda tx: release(tx, cfg.name, args.container_id, args.ifname)
        )
    except CNIError as err:
        if err.code != ERR_IO_FAILURE or cfg.database.engine != "sqlite":
            raise
        from pycni.plugins.pkg.errors import warn

        warn(
            f"{err.msg}: leases of {args.container_id}/{args.ifname} not released "
            "(`pycni ipam check` to inspect; GC releases them once the database is readable)"
        )


def cmd_check(args: CmdArgs) -> None:
    """Every range set holds a lease of the attachment, and so does every
    prevResult address that lies in a range set."""
    from pycni.plugins.ipam.host_local.allocator import check_owned
    from pycni.plugins.ipam.sql.allocator import leases_of

    cfg = load(args.conf, args.args, args.cni_version)
    cid = args.container_id
    owned = _read(cfg, lambda tx: leases_of(tx, cfg.name, cid, args.ifname), [])
    check_owned("sql", cid, owned, cfg.range_sets, args.prev_result, "leased", "to")


def cmd_gc(args: CmdArgs) -> None:
    """Release this node's leases of the network that no valid attachment
    owns; without `cni.dev/valid-attachments` nothing happens."""
    from pycni.plugins.ipam.sql.allocator import gc

    valid = args.valid_attachments
    if valid is None:
        return
    cfg = load_store(args.conf)
    _commit(cfg, "sql.gc.commit", lambda tx: gc(tx, cfg.name, cfg.node, set(valid)))


def cmd_status(args: CmdArgs) -> None:
    """Fail with code 50 when some pool has no free address left (or the
    database cannot be used)."""
    from pycni.plugins.ipam.sql.allocator import used
    from pycni.plugins.ipam.sql.blocks import capacity

    cfg = load(args.conf, "", args.cni_version)
    try:
        counts = _read(
            cfg,
            lambda tx: [used(tx, cfg.name, rset) for rset in cfg.range_sets],
            [0] * len(cfg.range_sets),
        )
    except CNIError as err:  # a database ADD cannot use: not available
        raise CNIError(ERR_PLUGIN_NOT_AVAILABLE, err.msg, err.details)
    for idx, (rset, count) in enumerate(zip(cfg.range_sets, counts)):
        if capacity(rset, 0) - count <= 0:
            raise CNIError(
                ERR_PLUGIN_NOT_AVAILABLE,
                f"no IP addresses available in range set {idx}: {rset} "
                f"(pool of network {cfg.name!r})",
            )
