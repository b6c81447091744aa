"""portmap's nftables rule set (the reference's portmap_nftables.go layout).

One table per family, `ip|ip6 cni_hostport` ("CNI portmap plugin"), chains
in the reference's creation order: hostports, hostip_hostports (legacy,
kept empty), hostports_all (rewritten on every ADD: jump hostip_hostports,
jump hostports), prerouting and output (nat, priority dstnat, rewritten on
every ADD: `<conditions> fib daddr type local jump hostports_all`), and
with snat masquerading (nat postrouting, priority srcnat). Per container,
commented with the container ID: one DNAT rule per mapping in hostports,
and the hairpin (and, for IPv4, localhost) masquerade rules.

Conditions in nftables syntax are compiled by us, not by `nft`: the forms
`ip|ip6 saddr|daddr [==|!=] <address or CIDR>` and `iifname|oifname
[==|!=] <name>` (optionally `meta`-prefixed, names optionally quoted).
Anything else is a config error naming the token.
"""

from __future__ import annotations

from pycni.netfilter import nftables as nft
from pycni.plugins.meta.portmap.conf import PortMapConf
from pycni.plugins.pkg.netconf import invalid

# nfexpr (rule expressions, with spec.ipnet) is imported by the functions
# that build rules: a DEL lists rules and deletes them by handle only.

TABLE = "cni_hostport"
TABLE_COMMENT = "CNI portmap plugin"
HOSTPORTS = "hostports"
HOSTIP_HOSTPORTS = "hostip_hostports"
HOSTPORTS_ALL = "hostports_all"
MASQUERADING = "masquerading"
FAMILIES = {4: "ip", 6: "ip6"}
_DNAT_PRIORITY = -100
_SNAT_PRIORITY = 100


def compile_conditions(tokens: list[str] | None, family: int, key: str) -> list[bytes]:
    """The expressions of `conditionsV4/V6` in nftables syntax (see module doc)."""
    from pycni.netfilter import nfexpr as x

    if not tokens:
        return []
    words = " ".join(tokens).split()
    out: list[bytes] = []
    i = 0

    def operator() -> bool:
        nonlocal i
        if words[i] in ("==", "!="):
            i += 1
            return words[i - 1] == "!="
        return False

    while i < len(words):
        start = i
        try:
            word = words[i]
            i += 1
            if word == "meta" and words[i] in ("iifname", "oifname"):
                word = words[i]
                i += 1
            if word in ("ip", "ip6") and (word == "ip") == (family == 4):
                field = words[i]
                i += 1
                if field not in ("saddr", "daddr"):
                    raise ValueError(field)
                neq = operator()
                value = words[i]
                i += 1
                if (":" in value) != (family == 6):
                    raise ValueError(value)
                out += x.addr(FAMILIES[family], field, value, neq)
            elif word in ("iifname", "oifname"):
                neq = operator()
                value = words[i]
                i += 1
                if len(value) > 1 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                out += _ifname_match(word, value, neq)
            else:
                raise ValueError(word)
        except (ValueError, IndexError, KeyError):
            raise invalid(
                f'unsupported nftables condition {" ".join(words[start:])!r} in "{key}": '
                'pycni compiles "ip|ip6 saddr|daddr [!=] <addr>" and '
                '"iifname|oifname [!=] <name>"'
            ) from None
    return out


def check_conditions(conf: PortMapConf) -> None:
    """Compile conditionsV4 and conditionsV6 (code 7 if either is not
    supported), whichever families the container has."""
    for family in (4, 6):
        key = "conditionsV4" if family == 4 else "conditionsV6"
        compile_conditions(conf.conditions[family], family, key)


def _ifname_match(word: str, name: str, neq: bool) -> list[bytes]:
    """`iifname|oifname [!=] <name>`; a trailing `*` is a prefix match, as
    in nft (which compares only the prefix's bytes)."""
    from pycni.netfilter import nfexpr as x

    if "\\" in name:
        raise ValueError(name)  # nft's escapes (`eth\*`): not compiled
    key = x.META_IIFNAME if word == "iifname" else x.META_OIFNAME
    if name.endswith("*"):
        prefix = name[:-1].encode("utf-8", "surrogateescape")
        if not prefix or len(prefix) >= x.IFNAMSIZ:
            raise ValueError(name)
        return [x.meta(key), x.cmp(prefix, x.CMP_NEQ if neq else x.CMP_EQ)]
    return (x.iifname if word == "iifname" else x.oifname)(name, neq)


def forward(c: nft.Nft, conf: PortMapConf, family: int, container_ip: str, cid: str) -> None:
    """The ADD transaction for one family, all or nothing."""
    from pycni.netfilter import nfexpr as x

    fam = FAMILIES[family]
    ip = container_ip.partition("/")[0]
    key = "conditionsV4" if family == 4 else "conditionsV6"
    conds = compile_conditions(conf.conditions[family], family, key)
    shared = {
        HOSTPORTS_ALL: [x.verdict("jump", HOSTIP_HOSTPORTS), x.verdict("jump", HOSTPORTS)],
        "prerouting": [[*conds, *x.fib_daddr_local(), *x.verdict("jump", HOSTPORTS_ALL)]],
        "output": [[*conds, *x.fib_daddr_local(), *x.verdict("jump", HOSTPORTS_ALL)]],
    }
    # The reference flushes and refills the shared chains on every ADD; we
    # rewrite only a chain whose rules differ (deleting rules costs every
    # later close of a netfilter socket an RCU grace period).
    current = {name: c.rules(fam, TABLE, name) for name in shared}

    def build(b: nft.Batch, fast: bool) -> None:
        if fast:
            b.known_chains(fam, TABLE)
        b.add_table(fam, TABLE, comment=TABLE_COMMENT)
        b.add_chain(fam, TABLE, HOSTPORTS)
        b.add_chain(fam, TABLE, HOSTIP_HOSTPORTS)
        b.add_chain(fam, TABLE, HOSTPORTS_ALL)
        _rewrite(b, fam, HOSTPORTS_ALL, shared, current, fast)
        for hook in ("prerouting", "output"):
            b.add_chain(fam, TABLE, hook, type="nat", hook=hook, priority=_DNAT_PRIORITY)
            _rewrite(b, fam, hook, shared, current, fast)
        if conf.snat:
            b.add_chain(
                fam, TABLE, MASQUERADING, type="nat", hook="postrouting", priority=_SNAT_PRIORITY
            )
        for m in conf.mappings:
            hfam = m.host_family()
            if hfam and hfam != family:
                continue
            match = [] if m.host_ip_unspecified() else x.addr(fam, "daddr", m.host_ip)
            rule = [*match, *x.l4_dport(m.protocol, m.host_port), *x.dnat(ip, m.container_port)]
            b.add_rule(fam, TABLE, HOSTPORTS, rule, comment=cid)
        if conf.snat:
            src = ("0.0.0.0/0" if family == 4 else "::/0") if conf.masq_all else ip
            hairpin = [*x.addr(fam, "saddr", src), *x.addr(fam, "daddr", ip), *x.masquerade()]
            b.add_rule(fam, TABLE, MASQUERADING, hairpin, comment=cid)
            if family == 4 and not conf.masq_all:
                local = [*x.addr(fam, "saddr", "127.0.0.1"), *x.addr(fam, "daddr", ip)]
                b.add_rule(fam, TABLE, MASQUERADING, [*local, *x.masquerade()], comment=cid)

    c.commit_retry(build)


def _rewrite(b: nft.Batch, fam: str, chain: str, shared: dict, current: dict, fast: bool) -> None:
    if fast and nft.chain_is(current[chain], shared[chain]):
        return
    b.flush_chain(fam, TABLE, chain)
    for rule in shared[chain]:
        b.add_rule(fam, TABLE, chain, rule)


def expected_counts(conf: PortMapConf, family: int) -> tuple[int, int]:
    """(hostport rules, masquerade rules) one container has in this family."""
    hostports = sum(1 for m in conf.mappings if m.host_family() in (0, family))
    masq = 0
    if conf.snat:
        masq = 2 if family == 4 and not conf.masq_all else 1
    return hostports, masq


def check(c: nft.Nft, conf: PortMapConf, family: int, cid: str) -> str:
    """'' when this container's rules are all there, else what is missing."""
    fam = FAMILIES[family]
    hostports, masq = expected_counts(conf, family)
    for chain, want in ((HOSTPORTS, hostports), (MASQUERADING, masq)):
        if want and sum(r.comment == cid for r in c.rules(fam, TABLE, chain)) < want:
            return f'missing hostport rules in "{chain}" chain of table {fam} {TABLE}'
    return ""


def owned_rules(c: nft.Nft, cid: str) -> list[nft.Rule]:
    """This container's rules in both families' tables."""
    out = []
    for fam in FAMILIES.values():
        for chain in (HOSTPORTS, HOSTIP_HOSTPORTS, MASQUERADING):
            out += [r for r in c.rules(fam, TABLE, chain) if r.comment == cid]
    return out


def unforward(c: nft.Nft, cid: str) -> None:
    rules = owned_rules(c, cid)
    if rules:
        b = c.batch()
        b.delete_rules(rules)
        b.commit()
