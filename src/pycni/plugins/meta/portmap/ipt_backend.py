"""portmap's iptables rule set, byte-compatible with the Go 1.1.1 plugin.

Table nat of iptables/ip6tables: CNI-HOSTPORT-DNAT (jumped to from
PREROUTING and OUTPUT for local destinations), with snat the mark chains
CNI-HOSTPORT-SETMARK and CNI-HOSTPORT-MASQ (jumped to first thing in
POSTROUTING), and per container CNI-DN-<hash(net+id)> with its entry rules
in CNI-HOSTPORT-DNAT (per protocol, per 15 ports). Each operation is one
iptables-save and at most one iptables-restore per family, under the
iptables layer's lock (`netfilter.iptables.change`): two plugin processes
must not interleave their read-modify-writes (the first ADDs on a fresh
host, in parallel, would otherwise fail or empty CNI-HOSTPORT-DNAT).
"""

from __future__ import annotations

from pycni.netfilter.iptables import Table, change
from pycni.netfilter.names import format_chain_name
from pycni.plugins.meta.portmap.conf import PortMapConf, dnat_chain

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

TOP_DNAT = "CNI-HOSTPORT-DNAT"
SETMARK = "CNI-HOSTPORT-SETMARK"
MARK_MASQ = "CNI-HOSTPORT-MASQ"
OLD_TOP_SNAT = "CNI-HOSTPORT-SNAT"


def _change(family: int, op: str, edit: Callable[[Table], None]) -> None:
    change(family, "nat", op, edit)


def old_snat_chain(network: str, cid: str) -> str:
    return format_chain_name(network, cid, "SN-")


def _mark(bit: int) -> str:
    v = 1 << bit
    return f"{v:#x}/{v:#x}"


def _comment(network: str, cid: str) -> str:
    text = f'dnat name: "{network}" id: "{cid}"'
    return text if len(text) <= 255 else text[:253] + "..."


def entry_rules(conf: PortMapConf, family: int, cid: str) -> list[list[str]]:
    """The rules of CNI-HOSTPORT-DNAT that jump to this container's chain."""
    by_proto: dict[str, list[int]] = {}
    for m in conf.mappings:
        by_proto.setdefault(m.protocol, []).append(m.host_port)
    chain = dnat_chain(conf.name, cid)
    conds = conf.conditions[family] or []
    out = []
    for proto in sorted(by_proto):
        ports = by_proto[proto]
        for k in range(0, len(ports), 15):
            spec = ",".join(str(p) for p in ports[k : k + 15])
            out.append(
                [
                    *("-m", "comment", "--comment", _comment(conf.name, cid)),
                    *("-m", "multiport", "-p", proto, "--destination-ports", spec),
                    *conds,
                    *("-j", chain),
                ]
            )
    return out


def chain_rules(conf: PortMapConf, family: int, container_ip: str) -> list[list[str]]:
    """The rules inside CNI-DN-…, in the reference's order."""
    setmark = conf.external_set_mark_chain or SETMARK
    ip = container_ip.partition("/")[0]
    target = f"{ip}:{{}}" if family == 4 else f"[{ip}]:{{}}"
    # masqAll: the reference's `-s 0.0.0.0/0` (`::/0`) is no match at all, and
    # iptables-save leaves it out; written so, the rule is found again
    # (CHECK, append-if-absent)
    src = [] if conf.masq_all else ["-s", container_ip]
    out = []
    for m in conf.mappings:
        hfam = m.host_family()
        if hfam and hfam != family:
            continue
        base = ["-p", m.protocol, "--dport", str(m.host_port)]
        if not m.host_ip_unspecified():
            base += ["-d", m.host_ip]
        if conf.snat:
            out.append([*base, *src, "-j", setmark])
            if family == 4 and not conf.masq_all:
                out.append([*base, "-s", "127.0.0.1", "-j", setmark])
        out.append([*base, "-j", "DNAT", "--to-destination", target.format(m.container_port)])
    return out


def forward(conf: PortMapConf, family: int, container_ip: str, cid: str) -> None:
    _change(family, "add port mappings", lambda t: _forward(t, conf, family, container_ip, cid))


def _forward(t: Table, conf: PortMapConf, family: int, container_ip: str, cid: str) -> None:
    if conf.snat and conf.external_set_mark_chain is None:
        mark = _mark(conf.mark_masq_bit)
        t.ensure_chain(SETMARK)
        t.append_unique(
            SETMARK,
            [
                *("-m", "comment", "--comment", "CNI portfwd masquerade mark"),
                *("-j", "MARK", "--set-xmark", mark),
            ],
        )
        t.ensure_chain(MARK_MASQ)
        t.append_unique(MARK_MASQ, ["-m", "mark", "--mark", mark, "-j", "MASQUERADE"])
        t.insert_unique(
            "POSTROUTING",
            ["-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", MARK_MASQ],
        )
    t.ensure_chain(TOP_DNAT)
    for entry in ("PREROUTING", "OUTPUT"):
        t.append_unique(entry, ["-m", "addrtype", "--dst-type", "LOCAL", "-j", TOP_DNAT])
    chain = dnat_chain(conf.name, cid)
    t.ensure_chain(chain)
    for rule in chain_rules(conf, family, container_ip):
        t.append_unique(chain, rule)
    for rule in entry_rules(conf, family, cid):
        t.append_unique(TOP_DNAT, rule)


def check(conf: PortMapConf, family: int, container_ip: str, cid: str) -> str:
    """'' when this container's chain and rules are all there, else what is missing."""
    t = Table.read(family, "nat")
    chain = dnat_chain(conf.name, cid)
    if chain not in t.chains:
        return f"chain {chain} not found in iptables table nat"
    for rule in chain_rules(conf, family, container_ip):
        if not t.has(chain, rule):
            return f"rule {rule} in chain {chain} not found in table nat"
    for rule in entry_rules(conf, family, cid):
        if not t.has(TOP_DNAT, rule):
            return f"rule {rule} in chain {TOP_DNAT} not found in table nat"
    return ""


def unforward(family: int, network: str, cid: str) -> None:
    """Remove the container's chain and every jump to it (and the legacy SN- chain)."""
    _change(family, "delete port mappings", lambda t: _unforward(t, network, cid))


def _unforward(t: Table, network: str, cid: str) -> None:
    for chain, top in (
        (dnat_chain(network, cid), TOP_DNAT),
        (old_snat_chain(network, cid), OLD_TOP_SNAT),
    ):
        if chain not in t.chains:
            continue
        for r in t.rules_of(top):
            if r.target == chain:
                t.delete(r)
        t.delete_chain(chain)


def gc(family: int, network: str, valid_ids: set[str]) -> None:
    """Remove this network's container chains whose container is not valid
    (the entry rules' comment names the network and container)."""
    _change(family, "garbage-collect port mappings", lambda t: _gc(t, network, valid_ids))


def _gc(t: Table, network: str, valid_ids: set[str]) -> None:
    prefix = f'dnat name: "{network}" id: "'
    stale = set()
    for r in t.rules_of(TOP_DNAT):
        c = r.comment
        if c.startswith(prefix) and c.endswith('"'):
            cid = c[len(prefix) : -1]
            if cid not in valid_ids and r.target == dnat_chain(network, cid):
                stale.add(cid)
    for cid in stale:
        chain = dnat_chain(network, cid)
        for r in t.rules_of(TOP_DNAT):
            if r.target == chain:
                t.delete(r)
        t.delete_chain(chain)
