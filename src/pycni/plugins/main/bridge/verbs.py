"""The bridge plugin's verbs, each a short story of toolkit calls (ADD's in
`add`, imported by cmd_add alone)."""

from __future__ import annotations

from pycni.plugins.main.bridge.conf import load
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.ctrlink import delete_container_link
from pycni.plugins.pkg.errors import Failures, warn
from pycni.plugins.pkg.ipam import ipam_del, ipam_status
from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result


def cmd_add(args: CmdArgs) -> Result:
    from pycni.plugins.main.bridge.add import cmd_add as add

    return add(args)


# --- DEL ---


def cmd_del(args: CmdArgs) -> None:
    """Remove spoof-check and masquerade rules, delete the container veth,
    release IPAM. Succeeds when the netns, the interface or the prevResult
    is missing; repeatable. Every failure is reported, and no step is
    skipped because an earlier one failed.

    The rules go first, on one netfilter socket closed last: deleting rules
    makes the close wait for an RCU grace period, which then passes while
    the veth is deleted instead of after it."""
    conf = load(args.conf, args.args)
    failures = Failures()
    masq = conf.is_layer3 and conf.ip_masq
    client = _netfilter() if conf.mac_spoof_chk or masq else None
    try:
        if conf.mac_spoof_chk:
            from pycni.plugins.main.bridge import spoofcheck  # off by default

            try:
                spoofcheck.teardown(spoofcheck.ref_id(args.container_id, args.ifname), client)
            except CNIError as err:
                warn(str(err))
        if masq:
            # without addresses the iptables chain is found by name and comment
            addrs = _prev_addrs(args)
            failures.attempt(masquerade.teardown_step, args, addrs, conf.name, client)
        failures.attempt(delete_container_link, args.netns, args.ifname, "bridge.del.delete-veth")
        if conf.is_layer3:
            failures.attempt(ipam_del, conf.ipam_type, args.stdin_data)
    finally:
        if client is not None:
            client.close()
    failures.raise_if_any()


def _netfilter():
    """One nf_tables socket for every rule set DEL removes (None without nf_tables)."""
    from pycni.netfilter.nftables import Nft

    try:
        return Nft()
    except OSError:
        return None


def _prev_addrs(args: CmdArgs) -> list[str]:
    """The container addresses recorded in prevResult (when the interface is gone)."""
    try:
        prev = args.prev_result
    except CNIError:
        return []
    if prev is None:
        return []
    return [ipc.address for ipc in prev.ips]


# --- CHECK, GC, STATUS ---


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.main.bridge import check  # only CHECK pays for it

    check.check(args, load(args.conf, args.args))


def cmd_gc(args: CmdArgs) -> None:
    """Forward GC to IPAM; remove this network's masquerade rules of
    attachments that are no longer valid."""
    conf = load(args.conf, args.args)
    masquerade.gc_verb(args, conf.name, conf.ipam_type, conf.ip_masq)


def cmd_status(args: CmdArgs) -> None:
    conf = load(args.conf, args.args)
    if conf.is_layer3:
        ipam_status(conf.ipam_type, args.stdin_data)
