"""host-local's verbs: ADD, DEL, CHECK, GC and STATUS over the store."""

from __future__ import annotations

from pycni.plugins.ipam.host_local.config import load, load_store, requests_per_set
from pycni.plugins.ipam.host_local.store import Store, parse_owner
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, ERR_IO_FAILURE, ERR_PLUGIN_NOT_AVAILABLE, CNIError
from pycni.spec.ipnet import ip_text
from pycni.spec.result import DNS, Result


def cmd_add(args: CmdArgs) -> Result:
    from pycni.plugins.ipam.host_local.allocator import Allocator

    cfg = load(args.conf, args.args, args.cni_version)
    dns = DNS()
    if cfg.resolv_conf:
        from pycni.plugins.ipam.host_local.dns import parse_resolv_conf

        dns = parse_resolv_conf(cfg.resolv_conf)

    wanted, remaining = requests_per_set(cfg.range_sets, cfg.requested)

    cid, ifname = args.container_id, args.ifname
    ips = []
    store = Store(cfg.data_dir, cfg.name)
    store.lock(create=True)
    done = False
    try:
        # The reference's duplicate check: an address this attachment already
        # holds in a set that allocates freely. Only those files are read.
        free_sets = [s for s, want in zip(cfg.range_sets, wanted) if want is None]
        owned = []
        if free_sets:
            owned = [
                addr
                for _, addr, _ in store.owned(
                    cid, ifname, lambda a: any(s.contains(*a) for s in free_sets)
                )
            ]
        for idx, (rset, want) in enumerate(zip(cfg.range_sets, wanted)):
            try:
                rng, value = Allocator(rset, store, idx).get(cid, ifname, want, owned)
            except CNIError as err:
                raise CNIError(
                    err.code, f"failed to allocate for range {idx}: {err.msg}", err.details
                )
            ips.append(rng.ip_config(value))
        if remaining:
            raise CNIError(
                ERR_INTERNAL,
                "failed to allocate all requested IPs: " + " ".join(ip_text(*a) for a in remaining),
            )
        done = True
    finally:
        if not done:  # all or nothing: release what this ADD reserved
            _rollback(store)
        store.unlock()
    return Result(ips=ips, routes=cfg.routes, dns=dns)


def _rollback(store) -> None:
    """Release what this ADD reserved (the store is still locked)."""

    for name in store.reserved:
        try:
            store.remove(name)
        except CNIError:
            pass
    store.reserved.clear()


def cmd_del(args: CmdArgs) -> None:
    """Release the attachment's addresses; unknown attachments are no error.

    Only the network name and dataDir are needed, so a DEL still cleans up
    after the ranges of a configuration changed or went bad.
    """

    cfg = load_store(args.conf)
    store = Store(cfg.data_dir, cfg.name)
    if not store.lock():
        return
    try:
        owned = store.owned(args.container_id, args.ifname)
        # Files of this (id, ifname); only if there are none, legacy id-only files.
        current = [name for name, _, legacy in owned if not legacy]
        _release(store, current or [name for name, _, legacy in owned if legacy])
    finally:
        store.unlock()


def _release(store, names: list[str]) -> None:
    errors = []
    for name in names:
        try:
            store.remove(name)
        except CNIError as err:
            errors.append(err.msg)
    if errors:
        raise CNIError(ERR_IO_FAILURE, ";".join(errors))


def cmd_check(args: CmdArgs) -> None:
    """Every range set holds an address of the attachment, and so does
    every prevResult address that lies in a range set."""

    cfg = load(args.conf, args.args, args.cni_version)
    cid = args.container_id
    store = Store(cfg.data_dir, cfg.name)
    owned = []
    if store.lock():
        try:
            owned = [addr for _, addr, _ in store.owned(cid, args.ifname)]
        finally:
            store.unlock()
    from pycni.plugins.ipam.host_local.allocator import check_owned

    check_owned("host-local", cid, owned, cfg.range_sets, args.prev_result, "reserved", "for")


def cmd_gc(args: CmdArgs) -> None:
    """Release every reservation that no valid attachment owns.

    A legacy id-only file is owned when its container ID is that of any
    valid attachment. Without `cni.dev/valid-attachments` nothing happens.
    """
    valid = args.valid_attachments
    if valid is None:
        return

    cfg = load_store(args.conf)
    store = Store(cfg.data_dir, cfg.name)
    if not store.lock():
        return
    keep = set(valid)
    keep_ids = {cid for cid, _ in valid}
    try:
        stale = []
        for name, _ in store.addresses():
            content = store.read(name)
            if content is None:
                continue  # unreadable: leave it rather than guess
            cid, ifname = parse_owner(content)
            owned = cid in keep_ids if ifname is None else (cid, ifname) in keep
            if not owned:
                stale.append(name)
        _release(store, stale)
    finally:
        store.unlock()


def cmd_status(args: CmdArgs) -> None:
    """Fail with code 50 when some range set has no free address left."""
    from pycni.plugins.ipam.host_local.allocator import free_count

    cfg = load(args.conf, "", args.cni_version)
    reserved = [addr for _, addr in Store(cfg.data_dir, cfg.name).addresses()]
    for rset in cfg.range_sets:
        if free_count(rset, reserved) <= 0:
            raise CNIError(
                ERR_PLUGIN_NOT_AVAILABLE, f"no IP addresses available in range set: {rset}"
            )
