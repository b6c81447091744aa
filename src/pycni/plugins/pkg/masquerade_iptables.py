"""The iptables half of `masquerade`: the reference's rule set
(`pkg/ip/ipmasq_iptables_linux.go`).

Chain `CNI-<hash(net+id)>` in table nat (iptables and ip6tables), an ACCEPT
for the container subnet, a MASQUERADE for non-multicast, and a POSTROUTING
jump from the container address, all commented `name: "<net>" id: "<id>"`;
one iptables-save and at most one iptables-restore per family.

A module of its own so that bridge and ptp load the iptables backend only
when it is configured or holds something to remove: `masquerade` imports it
where it is used. Failures are `IptablesError`s; `masquerade` words them.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter.iptables import IptablesError, Table, canon_net, change
from pycni.netfilter.names import format_chain_name, format_comment
from pycni.spec.ipnet import IPNet, format_ip
from pycni.spec.jsonutil import go_quote

__all__ = ["IptablesError", "gc", "present", "setup", "teardown", "teardown_lines"]

_MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}


def _cm(comment: str) -> list[str]:
    return ["-m", "comment", "--comment", comment]


def setup(family: int, nets: list[IPNet], network: str, container_id: str) -> None:
    chain = format_chain_name(network, container_id)
    cm = _cm(format_comment(network, container_id))

    def edit(table: Table) -> None:
        table.ensure_chain(chain)
        for n in nets:
            table.append_unique(chain, ["-d", str(n), "-j", "ACCEPT", *cm])
            table.append_unique(chain, ["!", "-d", _MULTICAST[n.family], "-j", "MASQUERADE", *cm])
            table.append_unique("POSTROUTING", ["-s", n.ip_str, "-j", chain, *cm])
        step("ipmasq.iptables-restore")

    change(family, "nat", "add masquerade rules", edit)


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


def teardown(family: int, nets: list[IPNet], network: str, container_id: str) -> None:
    chain = format_chain_name(network, container_id)

    def edit(table: Table) -> None:
        teardown_lines(table, nets, chain, format_comment(network, container_id))
        step("ipmasq.iptables-restore")

    change(family, "nat", "delete masquerade rules", edit)


def gc(family: int, network: str, valid_ids: set[str]) -> None:
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


def present(families: list[int], chain: str) -> bool:
    """Whether `chain` exists in table nat of every family, with a
    POSTROUTING jump to it."""
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
