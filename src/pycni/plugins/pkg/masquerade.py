"""IP masquerade for bridge/ptp `ipMasq`: the reference's two rule sets.

nftables (`pkg/ip/ipmasq_nftables_linux.go`), through our own client: table
`inet cni_plugins_masquerade`, regular chain `masq_checks` with one rule per
container address commented `<H(net)>-<H(ifname:id)>, net: .., if: .., id: ..`,
and a nat base chain `postrouting` (priority srcnat) that skips multicast
and jumps there. One batch per operation.

iptables (`pkg/ip/ipmasq_iptables_linux.go`): in `masquerade_iptables`,
imported only when that backend is configured or holds a chain to remove
(the iptables backend is a third of what a bridge ADD would load otherwise).

pycni defaults to nftables whenever the kernel has nf_tables (the reference
defaults to iptables): no process is started on ADD or DEL. Teardown always
looks at both: iptables chains are found as nf_tables objects (iptables-nft)
or in the legacy table list, and iptables-save runs only when one exists.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter import nftables as nft
from pycni.netfilter.host import iptables_binary, legacy_tables
from pycni.netfilter.names import (
    format_chain_name,
    format_hash_with_prefix,
    truncate_nft_comment,
)
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, format_ip

# nfexpr (rule expressions) is imported by the functions that build rules:
# a DEL lists rules and deletes them by handle only.

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.pkg.transaction import Undo
    from pycni.skel import CmdArgs

FAMILY = "inet"
TABLE = "cni_plugins_masquerade"
CHAIN = "masq_checks"
TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
BACKENDS = ("iptables", "nftables")
_MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}


class MasqError(Exception):
    """A masquerade operation failed; the message names the backend and step."""


def hash_for_network(network: str) -> str:
    return format_hash_with_prefix(16, "", network)


def hash_for_instance(network: str, ifname: str, container_id: str) -> str:
    return (
        hash_for_network(network)
        + "-"
        + format_hash_with_prefix(16, "", ifname + ":" + container_id)
    )


def comment_for_instance(network: str, ifname: str, container_id: str) -> str:
    comment = "{}, net: {}, if: {}, id: {}".format(
        hash_for_instance(network, ifname, container_id),
        network.replace('"', ""),
        ifname.replace('"', ""),
        container_id.replace('"', ""),
    )
    return truncate_nft_comment(comment)


def default_backend() -> str:
    """nftables when the kernel has nf_tables, else iptables."""
    return "nftables" if nft.available() else "iptables"


def check_backend(backend: str | None) -> None:
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown ipmasq backend {backend!r}")


# --- public operations ----------------------------------------------------------------------


def setup(
    ipns: list[str], network: str, ifname: str, container_id: str, backend: str | None = None
) -> str:
    """SetupIPMasqForNetworks; returns the backend used."""
    check_backend(backend)
    nets = [IPNet.parse(c) for c in ipns]
    backend = backend or default_backend()
    if backend == "iptables":
        from pycni.plugins.pkg import masquerade_iptables as ipt

        for family in (4, 6):
            fam_nets = [n for n in nets if n.family == family]
            if fam_nets:
                try:
                    ipt.setup(family, fam_nets, network, container_id)
                except ipt.IptablesError as err:
                    raise MasqError(str(err))
    else:
        _nft_setup(nets, network, ifname, container_id)
    return backend


def teardown(
    ipns: list[str],
    network: str,
    ifname: str,
    container_id: str,
    client: nft.Nft | None = None,
) -> None:
    """TeardownIPMasqForNetworks: the rules of both backends, found without
    a process when there are none. With no addresses (the interface or its
    netns is gone), the iptables chain is still found by name and comment.
    `client` is a netfilter socket of the caller's, left open."""
    nets = [IPNet.parse(c) for c in ipns]
    errs = []
    try:
        c = client or nft.Nft()
        try:
            _nft_teardown(c, network, ifname, container_id)
            chain = format_chain_name(network, container_id)
            families = [f for f in (4, 6) if _ipt_chain_in_use(c, f, chain)]
        finally:
            if client is None:
                c.close()
    except OSError as err:
        errs.append(str(err))
        families = [f for f in (4, 6) if iptables_binary(f)] if nft_unavailable(err) else []
    if families:
        from pycni.plugins.pkg import masquerade_iptables as ipt

        for family in families:
            try:
                fam_nets = [n for n in nets if n.family == family]
                ipt.teardown(family, fam_nets, network, container_id)
            except ipt.IptablesError as err:
                errs.append(str(err))
    if errs:
        raise MasqError("\n".join(errs))


def gc(network: str, attachments: list[tuple[str, str]]) -> None:
    """GCIPMasqForNetwork: drop this network's rules of attachments not in the
    list [(container_id, ifname)]; iptables too (the reference does not)."""
    errs = []
    valid_ids = {cid for cid, _ in attachments}
    families: list[int] = []
    try:
        with nft.Nft() as c:
            _nft_gc(c, network, attachments)
            families = [f for f in (4, 6) if _ipt_nat_in_use(c, f)]
    except OSError as err:
        errs.append(str(err))
    if families:
        from pycni.plugins.pkg import masquerade_iptables as ipt

        for family in families:
            try:
                ipt.gc(family, network, valid_ids)
            except ipt.IptablesError as err:
                errs.append(str(err))
    if errs:
        raise MasqError("\n".join(errs))


# --- the steps of the plugins' verbs (bridge, ptp): failures as CNIErrors ---------------


def setup_step(
    args: CmdArgs, addrs: list[str], network: str, backend: str | None, undo: Undo
) -> None:
    """ADD's ipMasq step for this attachment: the teardown is pushed on
    `undo` first, so that a setup that fails halfway is removed too."""
    undo.push("remove masquerade rules", teardown, addrs, network, args.ifname, args.container_id)
    try:
        setup(addrs, network, args.ifname, args.container_id, backend)
    except MasqError as err:
        raise CNIError(errors.ERR_INTERNAL, f"failed to set up IP masquerade: {err}")


def teardown_step(
    args: CmdArgs, addrs: list[str], network: str, client: nft.Nft | None = None
) -> None:
    """DEL's ipMasq step for this attachment (see teardown)."""
    try:
        teardown(addrs, network, args.ifname, args.container_id, client)
    except MasqError as err:
        raise CNIError(errors.ERR_INTERNAL, f"failed to remove IP masquerade rules: {err}")


def gc_verb(args: CmdArgs, network: str, ipam_type: str, ip_masq: bool) -> None:
    """GC of a plugin with `ipMasq`: forwarded to IPAM (when configured),
    then this network's rules of attachments that are not in the runtime's
    list of valid ones (none touched when it sent no list). Both run; the
    failures are reported together."""
    from pycni.plugins.pkg.errors import Failures
    from pycni.plugins.pkg.ipam import ipam_gc

    failures = Failures()
    if ipam_type:
        failures.attempt(ipam_gc, ipam_type, args.stdin_data)
    attachments = args.valid_attachments
    if ip_masq and attachments is not None:
        try:
            gc(network, attachments)
        except MasqError as err:
            failures.add(
                CNIError(
                    errors.ERR_INTERNAL, f"failed to garbage-collect IP masquerade rules: {err}"
                )
            )
    failures.raise_if_any()


def present(ipns: list[str], network: str, ifname: str, container_id: str) -> bool:
    """Whether this attachment's rules exist in either backend (for CHECK)."""
    with nft.Nft() as c:
        if _find_rules(c, hash_for_instance(network, ifname, container_id)):
            return True
        chain = format_chain_name(network, container_id)
        nets = [IPNet.parse(a) for a in ipns]
        families = sorted({n.family for n in nets}) or [4]
        if not all(_ipt_chain_in_use(c, f, chain) for f in families):
            return False
    from pycni.plugins.pkg import masquerade_iptables

    return masquerade_iptables.present(families, chain)


def nft_unavailable(err: OSError) -> bool:
    import errno

    return err.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT, errno.ENOPROTOOPT)


# --- nftables backend ----------------------------------------------------------------------


def _find_rules(c: nft.Nft, prefix: str) -> list[nft.Rule]:
    return [r for r in c.rules(FAMILY, TABLE, CHAIN) if r.comment.startswith(prefix)]


def _postrouting_rules() -> list[list[bytes]]:
    from pycni.netfilter import nfexpr as x

    out = [[*x.addr(FAMILY, "daddr", mc), *x.verdict("return")] for mc in _MULTICAST.values()]
    return [*out, x.verdict("goto", CHAIN)]


def add_base(c: nft.Nft, b: nft.Batch, fast: bool = True) -> None:
    """The table, both chains, and postrouting's three rules, rewritten only
    when they differ (the reference flushes them on every ADD; deleting
    rules makes closing the socket wait for an RCU grace period)."""
    if fast:
        b.known_chains(FAMILY, TABLE)
    b.add_table(FAMILY, TABLE, comment=TABLE_COMMENT)
    b.add_chain(FAMILY, TABLE, CHAIN, comment=CHAIN_COMMENT)
    b.add_chain(FAMILY, TABLE, "postrouting", type="nat", hook="postrouting", priority=100)
    wanted = _postrouting_rules()
    if fast and nft.chain_is(c.rules(FAMILY, TABLE, "postrouting"), wanted):
        return
    b.flush_chain(FAMILY, TABLE, "postrouting")
    for rule in wanted:
        b.add_rule(FAMILY, TABLE, "postrouting", rule)


def _nft_setup(nets: list[IPNet], network: str, ifname: str, container_id: str) -> None:
    from pycni.netfilter import nfexpr as x

    comment = comment_for_instance(network, ifname, container_id)
    try:
        with nft.Nft() as c:
            stale = _find_rules(c, hash_for_instance(network, ifname, container_id))

            def build(b: nft.Batch, fast: bool) -> None:
                add_base(c, b, fast)
                b.delete_rules(stale)
                for n in nets:
                    net = f"{format_ip(n.family, n.network)}/{n.prefixlen}"
                    match = [
                        *x.addr(FAMILY, "saddr", n.ip_str),
                        *x.addr(FAMILY, "daddr", net, neq=True),
                    ]
                    b.add_rule(FAMILY, TABLE, CHAIN, [*match, *x.masquerade()], comment=comment)
                step("ipmasq.nft")

            c.commit_retry(build)
    except OSError as err:
        raise MasqError(str(err))


def _nft_teardown(c: nft.Nft, network: str, ifname: str, container_id: str) -> None:
    rules = _find_rules(c, hash_for_instance(network, ifname, container_id))
    if rules:
        step("ipmasq.nft")
        b = c.batch()
        b.delete_rules(rules)
        b.commit()


def _nft_gc(c: nft.Nft, network: str, attachments: list[tuple[str, str]]) -> None:
    valid = {comment_for_instance(network, ifname, cid) for cid, ifname in attachments}
    stale = [r for r in _find_rules(c, hash_for_network(network)) if r.comment not in valid]
    if stale:
        b = c.batch()
        b.delete_rules(stale)
        b.commit()


# --- is there anything of iptables here (no process, no iptables module) ---------------------

_NFT_FAMILY = {4: "ip", 6: "ip6"}


def _ipt_nat_in_use(c: nft.Nft, family: int) -> bool:
    return "nat" in legacy_tables(family) or c.table_exists(_NFT_FAMILY[family], "nat")


def _ipt_chain_in_use(c: nft.Nft, family: int, chain: str) -> bool:
    """Could iptables hold this chain? (iptables-nft: an nf_tables chain of
    table `ip|ip6 nat`; legacy: the nat table exists at all.)"""
    if "nat" in legacy_tables(family):
        return True
    return c.chain_exists(_NFT_FAMILY[family], "nat", chain)
