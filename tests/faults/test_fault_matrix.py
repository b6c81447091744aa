"""The fault matrix: SIGKILL at every step, a full disk, corrupt store and
cache files; after the DEL a runtime sends, nothing of the attachment is left.

The steps are not listed here: a clean ADD and DEL run first with
PYCNI_FAULT_TRACE, which records every `pycni.faultpoint.step()` they pass
(kernel mutations, store and cache writes, in the runtime and the plugins);
then the operation is repeated once per step with PYCNI_FAULT_STEP set, so
the process reaching that step is SIGKILLed there (the runtime, or the
plugin: bridge runs host-local in-process, so a host-local step kills
bridge too). The clean ADD + DEL also set the baseline: what a DEL
legitimately keeps (the bridge with its gateway addresses, forwarding on,
the nftables masquerade table, host-local's lock and last_reserved_ip
files, the runtime's gc.lock; with the "chain" attachment, podman's
six-plugin chain, also the shared portmap and firewall tables).

After every fault a runtime DEL (CNIConfig.del_network_list, with the cached
result when there is one) must succeed and bring links, addresses, routes,
rules, nat and nftables rules, host-local reservations, the result cache and
the lock directory back to the baseline. A DEL killed mid-way is also
followed by a plain DEL: the plugin alone without prevResult (a runtime that
lost its cache); it must clean the kernel and the store, then the runtime
DEL cleans its cache. (An ADD killed mid-way never has a cached result, so
its runtime DEL is already one without prevResult.)

Lock files: `ctr-<id>.lock` is what a successful DEL removes, so after every
DEL the lock directory holds exactly the baseline's gc.lock; a failed ADD
leaves the container lock for that DEL (pruning stale ones is GC's job).
"""

from __future__ import annotations

import shutil

import pytest

from support.faults import Attachment, diff, occurrences, private_tmpfs, read_trace

BRIDGE = "pycflt"  # + 4 hex: bridge names stay short


def bridge_conflist(name: str, bridge: str, data_dir, masq: str | None, v6: bool) -> dict:
    """A gateway bridge on host-local (IPv4, and IPv6 with `v6`), with
    masquerading on the `masq` backend; with the iptables backend also
    macspoofchk and default routes in the container, with nftables a
    promiscuous bridge."""
    ranges = [[{"subnet": "198.18.70.0/24"}]]
    if v6:
        ranges.append([{"subnet": "fd00:198:18:70::/64"}])
    plugin: dict = {"type": "bridge", "bridge": bridge, "isGateway": True}
    if masq is not None:
        plugin.update(ipMasq=True, ipMasqBackend=masq)
        if masq == "iptables":
            plugin.update(macspoofchk=True, isDefaultGateway=True)
        else:
            plugin.update(promiscMode=True)
    plugin["ipam"] = {"type": "host-local", "dataDir": str(data_dir), "ranges": ranges}
    return {"cniVersion": "1.1.0", "name": name, "plugins": [plugin]}


def chain_conflist(name: str, bridge: str, data_dir) -> dict:
    """podman's chain: bridge (ipMasq) + host-local, portmap, bandwidth,
    firewall, tuning (an MTU change, so it keeps a backup in data_dir)."""
    ranges = [[{"subnet": "198.18.71.0/24"}], [{"subnet": "fd00:198:18:71::/64"}]]
    return {
        "cniVersion": "1.1.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": True,
                "ipam": {"type": "host-local", "dataDir": str(data_dir), "ranges": ranges},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
            {"type": "firewall"},
            {"type": "tuning", "mtu": 1400, "dataDir": str(data_dir / "tuning")},
        ],
    }


CHAIN_CAPS = {
    "portMappings": [
        {"hostPort": 18081, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 18082, "containerPort": 53, "protocol": "udp"},
    ],
    "bandwidth": {
        "ingressRate": 8_000_000,
        "ingressBurst": 800_000,
        "egressRate": 8_000_000,
        "egressBurst": 800_000,
    },
}


def loopback_conflist(name: str) -> dict:
    return {"cniVersion": "1.1.0", "name": name, "plugins": [{"type": "loopback"}]}


def sql_rows(db) -> dict[str, set]:
    """The sql IPAM's leases and blocks (file names do not show them)."""
    import sqlite3

    if not db.exists():
        return {"sql": set()}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'leases'").fetchall():
            return {"sql": set()}
        rows = {
            f"lease {ip} {cid} {ifname}"
            for ip, cid, ifname in conn.execute("SELECT ip, container_id, ifname FROM leases")
        }
        rows |= {
            f"block {cidr} {node}" for cidr, node in conn.execute("SELECT cidr, node FROM blocks")
        }
        return {"sql": rows}
    finally:
        conn.close()


# The attachments of the matrix: (masquerade backend, IPv6 too, host-local exec'd).
BRIDGES = {
    "bridge-iptables": ("iptables", True, False),  # + macspoofchk, default routes
    "bridge-nftables": ("nftables", False, False),  # + promiscMode
    "bridge-ipam-exec": (None, True, True),  # host-local its own process, killed alone
    "bridge": (None, True, False),
}


def make_attachment(kind: str, ct, bin_dir, tmp_path, disk=None) -> Attachment:
    import secrets

    root = disk.path if disk is not None else tmp_path
    cache_dir, data_dir = root / "cache", root / "data"
    if kind == "loopback":
        conflist = loopback_conflist("pycflt-lo")
        return Attachment(conflist, ct, bin_dir, cache_dir, None, tmp_path, disk)
    from pycni.plugins.launcher import in_process_module

    bridge = BRIDGE + secrets.token_hex(2)
    extra: dict = {}
    if kind == "chain":
        conflist = chain_conflist("pycflt-ch", bridge, data_dir)
        extra["capability_args"] = CHAIN_CAPS
    elif kind == "bridge-sql":  # sql IPAM on SQLite, in-process in bridge like host-local
        conflist = bridge_conflist("pycflt-sq", bridge, data_dir, None, True)
        db = data_dir / "sql" / "ipam.db"
        ipam = conflist["plugins"][0]["ipam"]
        ipam.update(type="sql", node="pycflt-node", database={"path": str(db)})
        del ipam["dataDir"]
        extra["extra_state"] = lambda: sql_rows(db)
    else:
        masq, v6, ipam_exec = BRIDGES[kind]
        launcher = bin_dir / "host-local"
        if ipam_exec:  # a launcher that in_process_module does not take for ours
            launcher.write_text(launcher.read_text().replace(" -IS\n", " -SI\n", 1))
        assert (in_process_module(str(launcher)) is None) == ipam_exec
        conflist = bridge_conflist("pycflt-br", bridge, data_dir, masq, v6)
    return Attachment(
        conflist, ct, bin_dir, cache_dir, data_dir, tmp_path, disk, bridge=bridge, **extra
    )


def kill_matrix(
    att: Attachment, op: str, cleanups: tuple[str, ...], only: str = ""
) -> tuple[list, list]:
    """Kill `op` at each step it passes (those named `only`...), clean up
    each way; the steps and the failures.

    Each ADD starts without the bridge, so it passes every step (creating
    the bridge and putting the gateway addresses on it too)."""
    att.remove_bridge()
    add_steps, del_steps = att.warm_up(trace=True)
    steps = add_steps if op == "ADD" else del_steps
    baseline = att.state()
    failures: list[str] = []
    for n, (fault, index) in enumerate(occurrences(steps)):
        if not fault.startswith(only):
            continue
        for cleanup in cleanups:
            if op == "DEL":
                prep = att.add()
                assert prep.ok, f"ADD before the DEL killed at {fault}: {prep}"
            else:
                att.remove_bridge()
            trace = att.tmp / f"fault-{op}-{n}-{cleanup}"
            out = att.run(op, fault=fault, trace=trace)
            where = f"{op} killed at {fault}, then {cleanup} DEL"
            fired = out.status == "killed" or (
                out.status == "cni-error" and "signal: killed" in out.message
            )
            if not fired:
                failures.append(f"{where}: the fault did not fire: {out}")
            elif read_trace(trace) != steps[: index + 1]:
                failures.append(f"{where}: steps passed {read_trace(trace)}, not up to the fault")
            if cleanup == "plain":
                out = att.plain_del()
                if not out.ok:
                    failures.append(f"{where}: plain DEL failed: {out}")
                left = diff(_kernel_and_store(baseline), _kernel_and_store(att.state()))
                if left:
                    failures.append(f"{where}: left after the plain DEL: {left}")
            out = att.delete()
            if not out.ok:
                failures.append(f"{where}: runtime DEL failed: {out}")
            now = att.state()
            left = diff(baseline, now)
            if left:
                failures.append(f"{where}: left behind: {left}")
                baseline = now  # report each leak once
    return steps, failures


def _kernel_and_store(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "files:cache"}


@pytest.mark.parametrize("op", ["ADD", "DEL"])
@pytest.mark.parametrize(
    "kind",
    ["bridge-iptables", "bridge-nftables", "bridge-ipam-exec", "bridge-sql", "loopback", "chain"],
)
def test_kill_at_every_step(kind, op, host_ns, netns_factory, launcher_dir, tmp_path):
    att = make_attachment(kind, netns_factory("ct"), launcher_dir, tmp_path)
    cleanups = ("runtime",) if op == "ADD" else ("runtime", "plain")
    # exec'd, host-local dies alone and bridge must cope: only its steps are new here
    only = "host-local." if kind == "bridge-ipam-exec" else ""
    if kind == "bridge-sql":
        # the first ADD creates the database and the pool, which stay: the
        # steps traced are those of every later ADD (the sql tests kill the
        # migration and the pool's creation themselves)
        att.warm_up()
        assert att.add().ok and len(att.state()["sql"]) == 4  # two leases, two blocks
        assert att.delete().ok and att.state()["sql"] == set()
    steps, failures = kill_matrix(att, op, cleanups, only)
    print(f"{kind} {op}: {len(steps)} steps: {' '.join(steps)}")
    assert any(s.startswith(only) for s in steps), "no fault point reached: nothing tested"
    assert not failures, "\n".join(failures)


# --- a full disk -------------------------------------------------------------------------


def _cache_failure(message: str) -> bool:
    """The plugins succeeded and only the result cache could not be written:
    like libcni, the runtime then returns the error and leaves the DEL that
    the spec requires after a failed ADD to its caller."""
    return "cached result" in message


@pytest.mark.parametrize("kind", ["bridge", "bridge-sql"])
@pytest.mark.parametrize("what", ["pages", "inodes"])
def test_full_disk(what, kind, host_ns, netns_factory, launcher_dir, tmp_path):
    """dataDir and cacheDir on a 64 KiB tmpfs (in a private mount namespace)
    filled to leave 0, 1, 2, ... pages or inodes: ADD succeeds or fails with
    a CNI error, and a failed ADD leaves nothing but the container lock;
    DEL, with the disk still full, succeeds and leaves nothing."""
    ct = netns_factory("ct")  # before the mount: a netns made later is not mounted inside it
    size = "size=1m" if kind == "bridge-sql" else "size=64k"  # SQLite's file and WAL need more
    options = size if what == "pages" else f"{size},nr_inodes=64"
    with private_tmpfs(tmp_path / "disk", options) as disk:
        att = make_attachment(kind, ct, launcher_dir, tmp_path, disk)
        att.warm_up()
        baseline = att.state()
        failures, outcomes = [], []
        for free in range(0, 16):
            disk.fill(free, what)
            out = att.add()
            outcomes.append((free, out.status, _cache_failure(out.message)))
            where = f"{free} {what} free"
            if out.status not in ("ok", "cni-error"):
                failures.append(f"{where}: ADD ended with {out}")
            elif not out.ok and not _cache_failure(out.message):
                left = [
                    d for d in diff(baseline, att.state()) if not d.endswith(" " + att.ctr_lock)
                ]
                if left:
                    failures.append(f"{where}: failed ADD left {left} ({out})")
            deleted = att.delete()
            if not deleted.ok:
                failures.append(f"{where}: DEL failed: {deleted}")
            left = diff(baseline, att.state())
            if left:
                failures.append(f"{where}: left after DEL: {left}")
                baseline = att.state()
            if out.ok:
                break
        disk.unfill()
    print(f"free {what}, ADD outcome, cache failure:", outcomes)
    assert not failures, "\n".join(failures)
    statuses = [status for _, status, _ in outcomes]
    assert statuses[-1] == "ok" and set(statuses[:-1]) == {"cni-error"}, outcomes
    # host-local's new files need pages: space ran out in the plugins and in the
    # runtime's cache write; sql rewrites pages its database and journal already have
    if what == "pages" and kind == "bridge":
        assert {cache for _, _, cache in outcomes[:-1]} == {False, True}, outcomes


# --- corrupt files -------------------------------------------------------------------------

KINDS = {
    "garbage": b"\xff\x00{garbage\r\n",
    "empty": b"",
    "directory": None,
}


def _plant(path, kind: str) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if KINDS[kind] is None:
        path.mkdir()
    else:
        path.write_bytes(KINDS[kind])


def _restore(path, saved: bytes | None) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if saved is not None:
        path.write_bytes(saved)


def test_corrupt_store_and_cache_files(host_ns, netns_factory, launcher_dir, tmp_path):
    """A store or cache file replaced by garbage, an empty file or a
    directory, before ADD or between ADD and DEL: ADD succeeds or fails with
    a CNI error (leaving nothing but the container lock), DEL succeeds and
    leaves nothing. Files that are the attachment's own (its cached result,
    its container lock, host-local's temporary file) must be gone; shared
    ones (host-local's lock and last_reserved_ip, gc.lock) may stay as
    planted; the attachment's reservation, once garbage, is no longer
    recognisably its own: DEL keeps it, GC (nothing valid) releases it."""
    att = make_attachment("bridge", netns_factory("ct"), launcher_dir, tmp_path)
    att.warm_up()
    baseline = att.state()
    net = att.net.name
    own = [
        ("cache", att.cache_file),
        ("cache", att.ctr_lock),
        ("data", f"{net}/.pycni-reserve.tmp"),
    ]
    shared = [
        ("data", f"{net}/lock"),
        ("data", f"{net}/last_reserved_ip.0"),
        ("cache", "locks/gc.lock"),
    ]
    cases = [("before ADD", root, rel) for root, rel in own + shared]
    cases += [("before DEL", root, rel) for root, rel in [*own, *shared, ("data", None)]]
    failures = []
    for phase, root, name in cases:
        for kind in KINDS:
            if name is None and kind == "directory":
                continue  # no reservation at all: DEL cannot call it its own, GC skips non-files
            if phase == "before DEL":
                prep = att.add()
                if not prep.ok:
                    failures.append(f"{phase}, {name} {kind}: the ADD before failed: {prep}")
                    att.plain_del(), att.delete()
                    baseline = att.state()
                    continue
            reservation = name is None
            rel = name
            if reservation:  # the attachment's IPv4 reservation
                rel = f"{net}/" + min(p.name for p in (att.roots["data"] / net).glob("198.*"))
            path = att.roots[root] / rel
            saved = None if reservation or not path.is_file() else path.read_bytes()
            _plant(path, kind)
            where = f"{phase}, {root} {rel} {kind}"
            planted = {f"files:{root}: {sign} {rel}{end}" for sign in "+-" for end in ("", "/")}
            if phase == "before ADD":
                out = att.add()
                if out.status not in ("ok", "cni-error"):
                    failures.append(f"{where}: ADD ended with {out}")
                elif not out.ok and not _cache_failure(out.message):
                    left = [
                        d
                        for d in diff(baseline, att.state())
                        if d not in planted and not d.endswith(" " + att.ctr_lock)
                    ]
                    if left:
                        failures.append(f"{where}: the failed ADD ({out}) left {left}")
            out = att.delete()
            if not out.ok:
                failures.append(f"{where}: DEL failed: {out}")
            if reservation:
                gc = att.gc([])
                if not gc.ok:
                    failures.append(f"{where}: GC failed: {gc}")
            ours = (root, rel) in own or reservation
            left = [d for d in diff(baseline, att.state()) if ours or d not in planted]
            if left:
                failures.append(f"{where}: left behind: {left}")
            _restore(path, saved)
            if diff(baseline, att.state()):
                att.plain_del(), att.delete()
                baseline = att.state()
    assert not failures, "\n".join(failures)
