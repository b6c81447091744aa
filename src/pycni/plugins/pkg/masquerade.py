"""IP masquerade for bridge/ptp `ipMasq`: the reference's two rule sets.

nftables (`pkg/ip/ipmasq_nftables_linux.go`), through our own client: table
`inet cni_plugins_masquerade`, regular chain `masq_checks` with one rule per
container address commented `<H(net)>-<H(ifname:id)>, net: .., if: .., id: ..`,
and a nat base chain `postrouting` (priority srcnat) that skips multicast
and jumps there. One batch per operation.

iptables (`pkg/ip/ipmasq_iptables_linux.go`): chain `CNI-<hash(net+id)>` in
table nat (iptables and ip6tables), an ACCEPT for the container subnet, a
MASQUERADE for non-multicast, and a POSTROUTING jump from the container
address, all commented `name: "<net>" id: "<id>"`; one iptables-save and at
most one iptables-restore per family.

pycni defaults to nftables whenever the kernel has nf_tables (the reference
defaults to iptables): no process is started on ADD or DEL. Teardown always
looks at both: iptables chains are found as nf_tables objects (iptables-nft)
or in the legacy table list, and iptables-save runs only when one exists.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter import nfexpr as x
from pycni.netfilter import nftables as nft
from pycni.netfilter.iptables import IptablesError, Table, binary, canon_net, change
from pycni.netfilter.names import (
    format_chain_name,
    format_comment,
    format_hash_with_prefix,
    truncate_nft_comment,
)
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, format_ip
from pycni.spec.jsonutil import go_quote

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
        for family in (4, 6):
            fam_nets = [n for n in nets if n.family == family]
            if fam_nets:
                _ipt_setup(family, fam_nets, network, container_id)
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
        families = [f for f in (4, 6) if binary(f)] if nft_unavailable(err) else []
    for family in families:
        try:
            fam_nets = [n for n in nets if n.family == family]
            _ipt_teardown(family, fam_nets, network, container_id)
        except IptablesError as err:
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
    for family in families:
        try:
            _ipt_gc(family, network, valid_ids)
        except IptablesError as err:
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
    for family in families:
        try:
            table = Table.read(family, "nat")
        except IptablesError:
            return False
        if chain not in table.chains or not any(
            r.target == chain for r in table.rules_of("POSTROUTING")
        ):
            return False
    return True


def nft_unavailable(err: OSError) -> bool:
    import errno

    return err.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT, errno.ENOPROTOOPT)


# --- nftables backend ----------------------------------------------------------------------


def _find_rules(c: nft.Nft, prefix: str) -> list[nft.Rule]:
    return [r for r in c.rules(FAMILY, TABLE, CHAIN) if r.comment.startswith(prefix)]


def _postrouting_rules() -> list[list[bytes]]:
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


# --- iptables backend ------------------------------------------------------------------------

_NFT_FAMILY = {4: "ip", 6: "ip6"}
_LEGACY_NAMES = {4: "/proc/net/ip_tables_names", 6: "/proc/net/ip6_tables_names"}


def legacy_tables(family: int) -> set[str]:
    """The legacy (x_tables) tables in use in this netns; no process started."""
    try:
        with open(_LEGACY_NAMES[family]) as f:
            return set(f.read().split())
    except OSError:
        return set()


def _ipt_nat_in_use(c: nft.Nft, family: int) -> bool:
    return "nat" in legacy_tables(family) or c.table_exists(_NFT_FAMILY[family], "nat")


def _ipt_chain_in_use(c: nft.Nft, family: int, chain: str) -> bool:
    """Could iptables hold this chain? (iptables-nft: an nf_tables chain of
    table `ip|ip6 nat`; legacy: the nat table exists at all.)"""
    if "nat" in legacy_tables(family):
        return True
    return c.chain_exists(_NFT_FAMILY[family], "nat", chain)


def _cm(comment: str) -> list[str]:
    return ["-m", "comment", "--comment", comment]


def _ipt_setup(family: int, nets: list[IPNet], network: str, container_id: str) -> None:
    chain = format_chain_name(network, container_id)
    cm = _cm(format_comment(network, container_id))

    def edit(table: Table) -> None:
        table.ensure_chain(chain)
        for n in nets:
            table.append_unique(chain, ["-d", str(n), "-j", "ACCEPT", *cm])
            table.append_unique(chain, ["!", "-d", _MULTICAST[n.family], "-j", "MASQUERADE", *cm])
            table.append_unique("POSTROUTING", ["-s", n.ip_str, "-j", chain, *cm])
        step("ipmasq.iptables-restore")

    try:
        change(family, "nat", "add masquerade rules", edit)
    except IptablesError as err:
        raise MasqError(str(err))


def teardown_lines(table: Table, nets: list[IPNet], chain: str, comment: str) -> None:
    """Delete the POSTROUTING jumps (bare-IP and legacy CIDR forms, or all of
    this chain's when no address is known), then flush and delete the chain
    unless something else still jumps to it."""
    sources = set()
    for n in nets:
        sources.add(canon_net(n.ip_str))
        sources.add(f"{format_ip(n.family, n.network)}/{n.prefixlen}")
    remaining = 0
    for r in list(table.rules):
        if r.target != chain:
            continue
        if r.chain == "POSTROUTING" and r.comment == comment and (not nets or r.source in sources):
            table.delete(r)
        else:
            remaining += 1
    if not remaining:
        table.delete_chain(chain)


def _ipt_teardown(family: int, nets: list[IPNet], network: str, container_id: str) -> None:
    chain = format_chain_name(network, container_id)

    def edit(table: Table) -> None:
        teardown_lines(table, nets, chain, format_comment(network, container_id))
        step("ipmasq.iptables-restore")

    change(family, "nat", "delete masquerade rules", edit)


def _ipt_gc(family: int, network: str, valid_ids: set[str]) -> None:
    change(
        family, "nat", "garbage-collect masquerade rules", lambda t: _gc_edit(t, network, valid_ids)
    )


def _gc_edit(table: Table, network: str, valid_ids: set[str]) -> None:
    prefix = f"name: {go_quote(network)} id: "
    stale: set[str] = set()
    for r in table.rules_of("POSTROUTING"):
        if not r.comment.startswith(prefix):
            continue
        cid = r.comment[len(prefix) :]
        if len(cid) < 2 or cid[0] != '"' or cid[-1] != '"':
            continue
        cid = cid[1:-1]
        if cid not in valid_ids and r.target == format_chain_name(network, cid):
            stale.add(cid)
    for cid in sorted(stale):
        teardown_lines(table, [], format_chain_name(network, cid), format_comment(network, cid))
