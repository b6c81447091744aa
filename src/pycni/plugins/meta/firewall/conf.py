"""The firewall plugin's network configuration, decoded with Go's semantics.

Keys match case-insensitively, `null` is "not set", a value of the wrong
JSON type is an error (code 7 naming the key). Beyond the reference, which
passes anything on to iptables or falls back to auto-detection, the values
are checked before anything is touched: an unknown `backend` or
`ingressPolicy` and an `iptablesAdminChainName` that iptables would refuse
(or that would not survive an iptables-restore line) are code 7, for every
verb.
"""

from __future__ import annotations

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.jsonutil import get_str, go_quote

BACKENDS = ("", "iptables", "firewalld", "nftables")
POLICIES = ("", "open", "same-bridge", "isolated")
DEFAULT_ADMIN_CHAIN = "CNI-ADMIN"
DEFAULT_ZONE = "trusted"
#: the firewall's own chain (the admin chain jumps from it: it cannot be the admin chain)
FORWARD_CHAIN = "CNI-FORWARD"
#: iptables: "chain name `...' too long (must be under 29 chars)"
MAX_CHAIN_LEN = 28
#: names iptables refuses for a new chain, or that would make the admin jump a
#: verdict or a loop: built-in chains, standard verdicts and the common target
#: extensions ("chain name may not clash with target name")
RESERVED_CHAINS = frozenset(
    (
        "INPUT FORWARD OUTPUT PREROUTING POSTROUTING ACCEPT DROP QUEUE RETURN "
        "AUDIT CHECKSUM CLASSIFY CLUSTERIP CONNMARK CONNSECMARK CT DNAT DSCP ECN HL HMARK "
        "IDLETIMER LED LOG MARK MASQUERADE NETMAP NFLOG NFQUEUE NOTRACK RATEEST REDIRECT "
        "REJECT SECMARK SET SNAT SYNPROXY TCPMSS TCPOPTSTRIP TEE TOS TPROXY TRACE TTL ULOG "
        + FORWARD_CHAIN
    ).split()
)


class NetConf(netconf.NetConf):
    """The decoded config; attribute names follow the reference's fields."""

    __slots__ = ("admin_chain", "backend", "firewalld_zone", "ingress_policy")

    backend: str
    admin_chain: str
    firewalld_zone: str
    ingress_policy: str

    @property
    def isolates(self) -> bool:
        """The ingress policy adds bridge isolation rules (same-bridge, isolated)."""
        return self.ingress_policy in ("same-bridge", "isolated")


def load(conf: dict) -> NetConf:
    """Decode and validate; raises CNIError code 7 naming the key and value."""
    n = NetConf(conf)
    n.backend = get_str(conf, "backend")
    if n.backend not in BACKENDS:
        raise invalid(
            f'invalid "backend" {go_quote(n.backend)}: unknown firewall backend '
            '(use "iptables", "firewalld", "nftables" or leave it empty)'
        )
    n.admin_chain = get_str(conf, "iptablesAdminChainName") or DEFAULT_ADMIN_CHAIN
    problem = chain_name_problem(n.admin_chain)
    if problem:
        raise invalid(f'invalid "iptablesAdminChainName" {go_quote(n.admin_chain)}: {problem}')
    n.firewalld_zone = get_str(conf, "firewalldZone") or DEFAULT_ZONE
    n.ingress_policy = get_str(conf, "ingressPolicy")
    if n.ingress_policy not in POLICIES:
        raise invalid(
            f'invalid "ingressPolicy" {go_quote(n.ingress_policy)}: unknown ingress policy '
            '(use "open", "same-bridge" or "isolated")'
        )
    return n


def chain_name_problem(name: str) -> str:
    """Why iptables would refuse `name` as a user chain ("" if it would not).

    Stricter than iptables where that keeps the restore script unambiguous:
    printable ASCII only, no quotes, backslash or whitespace."""
    if len(name) > MAX_CHAIN_LEN:
        return f"a chain name has at most {MAX_CHAIN_LEN} characters"
    bad = [c for c in name if not ("!" <= c <= "~") or c in "\"'\\`"]
    if bad:
        return (
            f"a chain name has no {go_quote(bad[0])}: only printable ASCII without "
            "quotes, backslash or whitespace"
        )
    if name[0] in "-!":
        return f"a chain name may not start with {name[0]!r}"
    if name in RESERVED_CHAINS:
        return "a built-in chain, a target or the firewall's own chain cannot be the admin chain"
    return ""
