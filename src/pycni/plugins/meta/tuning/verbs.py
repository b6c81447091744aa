"""The tuning plugin's verbs.

ADD writes the sysctls inside the container netns, backs up the link
attributes it is about to change, then sets MAC, promisc, MTU, allmulti and
txqlen, in the reference's order; a failure undoes all of it (sysctls
included, which the reference never restores) and removes the backup. DEL
puts the backed-up attributes back and removes the backup; it never fails.
"""

from __future__ import annotations

import os

from pycni.faultpoint import step
from pycni.plugins.meta.tuning import backup
from pycni.plugins.meta.tuning.conf import TuningConf, data_dir, load, sysctl_name, sysctl_path
from pycni.plugins.pkg.errors import Failures, annotate, warn
from pycni.plugins.pkg.netconf import invalid
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import go_quote

# The kernel modules (netlink, link, netns, sysctl) are imported inside the
# verbs that use them: a DEL with no backup of this attachment, the common
# case, restores nothing and loads none of them.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.link import Link
    from pycni.kernel.netlink import RtNetlink
    from pycni.plugins.pkg.transaction import Undo
    from pycni.spec.result import Result


def _load(args: CmdArgs, allowlist: bool = True) -> TuningConf:
    if "/" in args.ifname:  # skel refuses it too; this guards in-process callers
        raise CNIError(
            errors.ERR_INVALID_ENVIRONMENT_VARIABLES,
            f"Interface name ({args.ifname}) contains an invalid character /",
        )
    return load(args.conf, args.stdin_data, args.args, args.ifname, allowlist)


def _prev_result(args: CmdArgs) -> Result:
    prev = args.prev_result
    if prev is None:
        raise invalid("Required prevResult missing: tuning must be called as a chained plugin")
    return prev


# --- ADD ---


def cmd_add(args: CmdArgs) -> Result:
    from pycni.plugins.pkg.netns import open_netlink
    from pycni.plugins.pkg.transaction import add_transaction

    conf = _load(args)
    result = _prev_result(args)
    ctr_nl = open_netlink(args.netns)
    try:
        with add_transaction("tuning ADD") as undo:
            _add(args, conf, ctr_nl, result, undo)
    finally:
        ctr_nl.close()
    return result


def _add(args: CmdArgs, conf: TuningConf, ctr_nl: RtNetlink, result: Result, undo: Undo) -> None:
    link = None
    if conf.changes_link:  # looked up first: a missing link changes nothing
        with annotate("failed to get %s in netns %s", go_quote(args.ifname), args.netns):
            link = ctr_nl.link_get(args.ifname)
        if conf.mac and link.mac and len(conf.mac) != len(link.mac):
            raise invalid(
                f"invalid MAC address {conf.mac}: {args.ifname} has "
                f"{(len(link.mac) + 1) // 3}-byte addresses"
            )
    if conf.sysctl:
        _write_sysctls(args, conf, undo)
    if link is None:
        return
    _write_backup(args, conf, link, undo)
    _set_link(args, conf, ctr_nl, link, undo)
    if conf.mac:
        for iface in result.interfaces:  # the reference's updateResultsMacAddr
            if iface.name == args.ifname:
                iface.mac = conf.mac


def _write_sysctls(args: CmdArgs, conf: TuningConf, undo: Undo) -> None:
    """Write each sysctl (always, as the reference does), remembering the
    old value of each one that can be read, for the rollback."""
    from pycni.kernel import sysctl
    from pycni.kernel.netns import enter

    written: list[tuple[str, str]] = []
    undo.push(f"restore sysctls in netns {args.netns}", _restore_sysctls, args.netns, written)
    with enter(args.netns):
        for key, value in conf.sysctl.items():
            name = sysctl_name(sysctl_path(key, args.ifname))
            try:
                old: str | None = sysctl.get(name)
            except OSError:
                old = None  # write-only (route/flush): nothing to put back
            step("tuning.add.sysctl")
            try:
                sysctl.put(name, value)
            except OSError as err:
                raise CNIError(
                    errors.ERR_INTERNAL,
                    f"failed to set sysctl {key} (/proc/sys/{name}) to {go_quote(value)} "
                    f"in netns {args.netns}: {err.strerror or err}",
                )
            if old is not None:
                written.append((name, old))


def _restore_sysctls(netns: str, written: list[tuple[str, str]]) -> None:
    if not written:
        return
    from pycni.kernel import sysctl
    from pycni.kernel.netns import enter

    with enter(netns):
        for name, old in reversed(written):
            try:
                sysctl.put(name, old)
            except OSError as err:
                warn(f"rollback: failed to restore sysctl {name}={old!r}: {err.strerror}")


def _write_backup(args: CmdArgs, conf: TuningConf, link: Link, undo: Undo) -> None:
    """The attributes' current values. Where a backup of this attachment
    exists already (an ADD retried without a DEL, after a crash or a
    success), its values win: they are the ones from before any tuning,
    which the reference loses by overwriting them."""
    path = backup.path_of(conf.data_dir, args.container_id, args.ifname)
    with annotate("failed to save the backup of %s's attributes to %s", args.ifname, path):
        old = backup.read(path)
        saved = backup.snapshot(link, conf)
        earlier = backup.decode(old) if old is not None else None
        if earlier:
            saved.update(earlier)
        step("tuning.add.backup")
        backup.write(path, backup.encode(saved))
    undo.push(f"restore the backup file {path}", backup.put_back, path, old)
    marker = backup.marker_of(conf.data_dir, conf.name, args.container_id, args.ifname)
    if not os.path.exists(marker):
        with annotate("failed to record the backup %s for GC in %s", path, marker):
            backup.write_marker(marker)
        undo.push(f"remove the GC marker {marker}", backup.remove, marker)


def _set_link(args: CmdArgs, conf: TuningConf, ctr_nl: RtNetlink, link: Link, undo: Undo) -> None:
    """MAC, promisc, MTU, allmulti, txqlen: one request each, in the
    reference's order, each followed by its undo."""
    from pycni.kernel.link import IFF_ALLMULTI

    where = f"{args.ifname} in netns {args.netns}"
    if conf.mac:
        step("tuning.add.mac")
        with annotate("failed to set the MAC address of %s to %s", where, conf.mac):
            ctr_nl.link_set(link, mac=conf.mac)
        if link.mac:
            undo.push(f"restore the MAC address of {where}", _set, ctr_nl, link, "mac", link.mac)
    if conf.promisc:
        step("tuning.add.promisc")
        with annotate("failed to set promiscuous mode on %s", where):
            ctr_nl.link_set(link, promisc=True)
        if not link.promisc:
            undo.push(f"turn promiscuous mode off on {where}", _set, ctr_nl, link, "promisc", False)
    if conf.mtu:
        step("tuning.add.mtu")
        with annotate("failed to set the MTU of %s to %d", where, conf.mtu):
            ctr_nl.link_set(link, mtu=conf.mtu)
        undo.push(f"restore the MTU of {where}", _set, ctr_nl, link, "mtu", link.mtu)
    if conf.allmulti is not None:
        step("tuning.add.allmulti")
        with annotate("failed to set all-multicast mode %s on %s", _onoff(conf.allmulti), where):
            ctr_nl.link_set(link, allmulti=conf.allmulti)
        was = bool(link.flags & IFF_ALLMULTI)
        undo.push(f"restore all-multicast mode on {where}", _set, ctr_nl, link, "allmulti", was)
    if conf.txqlen is not None:
        step("tuning.add.txqlen")
        with annotate("failed to set the transmit queue length of %s to %d", where, conf.txqlen):
            ctr_nl.link_set(link, txqlen=conf.txqlen)
        undo.push(f"restore the txqlen of {where}", _set, ctr_nl, link, "txqlen", link.txqlen)


def _set(ctr_nl: RtNetlink, link: Link, attr: str, value: object) -> None:
    ctr_nl.link_set(link, **{attr: value})


def _onoff(on: bool) -> str:
    return "on" if on else "off"


# --- DEL ---


def cmd_del(args: CmdArgs) -> None:
    """Restore the backed-up attributes and remove the backup. Never fails
    (as the reference): a backup that cannot be restored yet is kept for a
    later DEL (or GC), with a warning on stderr. Only `dataDir` is decoded,
    so a config ADD refused cannot block its DEL."""
    ddir = data_dir(args.conf)
    path = backup.path_of(ddir, args.container_id, args.ifname)
    marker = backup.marker_of(ddir, args.conf.get("name", ""), args.container_id, args.ifname)
    _quietly(backup.remove, backup.tmp_of(path))  # a killed ADD's half-written backup
    try:
        data = backup.read(path)
    except OSError as err:
        warn(f"tuning: cannot read the backup {path}: {err.strerror or err}")
        return
    if data is not None:
        saved = backup.decode(data)
        if saved is None:
            warn(f"tuning: {path} is not a valid backup; removing it, nothing restored")
        else:
            try:
                restored = _restore(args, saved)
            except (OSError, CNIError) as err:  # e.g. the link lookup itself failed
                warn(f"tuning: cannot restore {args.ifname} in netns {args.netns}: {err}")
                restored = False
            if not restored:
                return
        step("tuning.del.remove-backup")
        _quietly(backup.remove, path)
    _quietly(backup.remove, marker)


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except OSError as err:
        warn(f"tuning: {err}")


def _restore(args: CmdArgs, saved: dict) -> bool:
    """Put the saved attributes back (MTU, MAC, promisc, allmulti, txqlen,
    the reference's order); False when some could not be restored. A netns
    or link that is gone has nothing left to restore."""
    if not saved or not args.netns:
        return True
    from pycni.plugins.pkg.netns import NetnsGone, open_netlink
    from pycni.spec.ipnet import parse_mac

    try:
        ctr_nl = open_netlink(args.netns)
    except NetnsGone:
        return True
    except CNIError as err:
        if err.msg.endswith("is not a network namespace"):
            return True  # the runtime's netns file outlived its namespace
        warn(f"tuning: cannot restore {args.ifname}: {err.msg}")
        return False
    try:
        link = ctr_nl.link_find(args.ifname)
        if link is None:
            return True
        failures = []
        for key, what in _RESTORE_ORDER:
            if key not in saved:
                continue
            value = saved[key]
            step(f"tuning.del.restore-{key.lower()}")
            try:
                if key == "mac":
                    value = parse_mac(value)
                _set(ctr_nl, link, _LINK_SET_ARG[key], value)
            except (OSError, ValueError) as err:
                failures.append(f"failed to restore {what}: {err}")
        if failures:
            warn(f"tuning: {args.ifname} in netns {args.netns}: " + "; ".join(failures))
            return False
        return True
    finally:
        ctr_nl.close()


_RESTORE_ORDER = (
    ("mtu", "MTU"),
    ("mac", "MAC address"),
    ("promisc", "promiscuous mode"),
    ("allmulti", "all-multicast mode"),
    ("txQLen", "transmit queue length"),
)
_LINK_SET_ARG = {
    "mtu": "mtu",
    "mac": "mac",
    "promisc": "promisc",
    "allmulti": "allmulti",
    "txQLen": "txqlen",
}


# --- CHECK, GC, STATUS ---


def cmd_check(args: CmdArgs) -> None:
    """The reference's CHECK: every sysctl and configured attribute has the
    configured value (sysctls compared by their whitespace-separated fields,
    MACs in canonical form); promisc must be off unless configured on."""
    from pycni.kernel.link import IFF_ALLMULTI
    from pycni.plugins.pkg.netns import open_netlink

    conf = _load(args, allowlist=False)
    _prev_result(args)
    ctr_nl = open_netlink(args.netns)
    try:
        if conf.sysctl:
            _check_sysctls(args, conf)
        link = ctr_nl.link_find(args.ifname)
    finally:
        ctr_nl.close()
    if link is None:
        raise CNIError(
            errors.ERR_INTERNAL, f"Cannot find container link {args.ifname}", f"netns {args.netns}"
        )
    ifname = args.ifname
    if conf.mac and conf.mac != link.mac:
        _mismatch(f"Ethernet of {ifname} is {conf.mac}, current value is {link.mac}")
    if conf.promisc != link.promisc:
        _mismatch(
            f"link {ifname} configured promisc is {_go_bool(conf.promisc)}, "
            f"current value is {int(link.promisc)}",
            prefix="Tuning ",
        )
    if conf.mtu and conf.mtu != link.mtu:
        _mismatch(f"MTU of {ifname} is {conf.mtu}, current value is {link.mtu}")
    allmulti = bool(link.flags & IFF_ALLMULTI)
    if conf.allmulti is not None and conf.allmulti != allmulti:
        _mismatch(
            f"all-multicast mode of {ifname} is {_go_bool(conf.allmulti)}, "
            f"current value is {_go_bool(allmulti)}"
        )
    if conf.txqlen is not None and conf.txqlen != link.txqlen:
        _mismatch(
            f"Transmit Queue Length of {ifname} is {conf.txqlen}, current value is {link.txqlen}"
        )


def _check_sysctls(args: CmdArgs, conf: TuningConf) -> None:
    from pycni.kernel import sysctl
    from pycni.kernel.netns import enter

    with enter(args.netns):
        for key, value in conf.sysctl.items():
            path = sysctl_path(key, args.ifname)
            try:
                current = sysctl.get(sysctl_name(path))
            except OSError as err:
                raise CNIError(
                    errors.ERR_INTERNAL,
                    f"failed to read sysctl {key} ({path}) in netns {args.netns}: "
                    f"{err.strerror or err}",
                )
            if current.split() != value.split():
                _mismatch(f"value of {path} is {value}, current value is {current}")


def _mismatch(what: str, prefix: str = "Tuning configured ") -> None:
    raise CNIError(errors.ERR_INTERNAL, f"Error: {prefix}{what}")


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def cmd_gc(args: CmdArgs) -> None:
    """Remove the backups this network's ADDs made for attachments that are
    no longer valid (the runtime says their netns may be gone: nothing is
    restored). Backups of other networks sharing the folder, and those the
    reference's ADD wrote (no marker), are left alone."""
    valid = args.valid_attachments
    ddir = data_dir(args.conf)
    network = args.conf.get("name")
    if valid is None or not isinstance(network, str) or not network:
        return
    keep = {f"{cid}_{ifname}" for cid, ifname in valid}
    folder = os.path.join(ddir, backup.GC_DIR, network)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    except OSError as err:
        raise CNIError(errors.ERR_INTERNAL, f"failed to list {folder}: {err.strerror or err}")
    failures = Failures()
    for name in sorted(names):
        if name in keep:
            continue
        step("tuning.gc.remove-backup")
        path = os.path.join(ddir, name + ".json")
        failures.attempt(backup.remove, backup.tmp_of(path), what=f"failed to remove {path}.tmp")
        failures.attempt(backup.remove, path, what=f"failed to remove {path}")
        marker = os.path.join(folder, name)
        failures.attempt(backup.remove, marker, what=f"failed to remove {marker}")
    failures.raise_if_any()


def cmd_status(args: CmdArgs) -> None:
    """Ready: tuning needs nothing but the kernel."""
    data_dir(args.conf)
