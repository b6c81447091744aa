"""The portmap config: keys, runtimeConfig.portMappings, and the container IPs.

Keys as the reference's PortMapConf (plugins.md 5.1); every bad value is CNI
error 7 naming the key. Beyond the reference: ports above 65535, unknown
protocols, hostIPs that are not IPs or have no container address of their
family, and condition tokens that could smuggle syntax (quotes, control
characters, `;`) are refused too.
"""

from __future__ import annotations

from pycni.netfilter.names import format_chain_name
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.ipnet import parse_ip
from pycni.spec.jsonutil import ci_get, get_bool, get_dict, get_int, get_list, get_str
from pycni.spec.result import Result

BACKENDS = ("iptables", "nftables")
PROTOCOLS = ("tcp", "udp", "sctp")
DEFAULT_MARK_BIT = 13


class PortMapping:
    __slots__ = ("container_port", "host_ip", "host_port", "protocol")

    def __init__(self, host_port: int, container_port: int, protocol: str, host_ip: str) -> None:
        self.host_port = host_port
        self.container_port = container_port
        self.protocol = protocol
        self.host_ip = host_ip

    def host_family(self) -> int:
        """4 or 6 for a hostIP, 0 without one."""
        return 0 if not self.host_ip else (6 if ":" in self.host_ip else 4)

    def host_ip_unspecified(self) -> bool:
        return self.host_ip in ("", "0.0.0.0", "::") or parse_ip(self.host_ip) == (
            self.host_family(),
            0,
        )


class PortMapConf:
    __slots__ = (
        "backend",
        "cni_version",
        "conditions",
        "container_ips",
        "external_set_mark_chain",
        "mappings",
        "mark_masq_bit",
        "masq_all",
        "name",
        "prev",
        "snat",
    )

    def __init__(self) -> None:
        self.name = ""
        self.cni_version = ""
        self.backend: str | None = None
        self.snat = True
        self.masq_all = False
        self.mark_masq_bit = DEFAULT_MARK_BIT
        self.external_set_mark_chain: str | None = None
        self.conditions: dict[int, list[str] | None] = {4: None, 6: None}
        self.mappings: list[PortMapping] = []
        self.prev: Result | None = None
        #: family -> "ip/prefix" of the container address portmap forwards to
        self.container_ips: dict[int, str] = {}


def conditions_backend(conds: list[str] | None) -> str:
    """The reference's detectBackendOfConditions: iptables syntax starts with - or !."""
    if not conds:
        return ""
    return "iptables" if conds[0][:1] in ("-", "!") else "nftables"


def load(conf: dict, ifname: str, prev: Result | None, default_backend) -> PortMapConf:
    c = PortMapConf()
    c.name = get_str(conf, "name")
    c.cni_version = get_str(conf, "cniVersion")
    c.prev = prev
    c.snat = get_bool(conf, "snat", True)
    c.masq_all = get_bool(conf, "masqAll", False)
    backend = ci_get(conf, "backend")
    if backend is not None and backend not in BACKENDS:
        raise invalid(f'unrecognized backend "{backend}"', "use iptables or nftables")
    mark = ci_get(conf, "markMasqBit")
    chain = ci_get(conf, "externalSetMarkChain")
    if mark is not None and chain is not None:
        raise invalid("Cannot specify externalSetMarkChain and markMasqBit")
    c.mark_masq_bit = get_int(conf, "markMasqBit", DEFAULT_MARK_BIT)
    if not 0 <= c.mark_masq_bit <= 31:
        raise invalid(f"MasqMarkBit must be between 0 and 31 (got {c.mark_masq_bit})")
    if chain is not None:
        c.external_set_mark_chain = get_str(conf, "externalSetMarkChain")
        _check_chain_name("externalSetMarkChain", c.external_set_mark_chain)
    for family, key in ((4, "conditionsV4"), (6, "conditionsV6")):
        conds = get_list(conf, key)
        if conds is not None:
            for tok in conds:
                _check_token(key, tok)
            c.conditions[family] = list(conds)
    specific = _backend_options(c)
    c.backend = backend or _implied_backend(specific) or default_backend()
    _check_backend_options(c, specific)
    c.mappings = _mappings(conf)
    if prev is not None:
        c.container_ips = container_ips(prev, ifname)
    return c


def check_host_ips(c: PortMapConf) -> None:
    """ADD refuses a hostIP of a family the container has no address of (the
    reference skips such a mapping silently); "0.0.0.0" and "::" mean "any
    host address" and are fine for either family. Not part of load(): DEL and
    CHECK of an attachment the reference ADDed must not fail on it."""
    for m in c.mappings:
        fam = m.host_family()
        if m.host_ip_unspecified():
            continue
        if fam and c.container_ips and fam not in c.container_ips:
            raise invalid(
                f'invalid "hostIP" {m.host_ip!r} of port mapping {m.host_port}/{m.protocol}:'
                f" the container has no IPv{fam} address"
            )


def _backend_options(c: PortMapConf) -> dict[str, list[str]]:
    """The keys that only one backend understands, per backend (ensureBackend)."""
    specific: dict[str, list[str]] = {"iptables": [], "nftables": []}
    if c.external_set_mark_chain is not None:
        specific["iptables"].append("externalSetMarkChain")
    for family, key in ((4, "conditionsV4"), (6, "conditionsV6")):
        b = conditions_backend(c.conditions[family])
        if b:
            specific[b].append(key)
    return specific


def _implied_backend(specific: dict[str, list[str]]) -> str:
    """Without a "backend" key, the one backend the options are written for:
    pycni defaults to nftables where the reference defaults to iptables, so
    a reference config with iptables-only options must keep working."""
    named = [b for b in BACKENDS if specific[b]]
    return named[0] if len(named) == 1 else ""


def _check_backend_options(c: PortMapConf, specific: dict[str, list[str]]) -> None:
    wrong = "nftables" if c.backend == "iptables" else "iptables"
    if specific[wrong]:
        raise invalid(
            f"{c.backend} backend was requested but configuration contains "
            f"{wrong}-specific options [{' '.join(specific[wrong])}]"
        )


def _check_token(key: str, tok: object) -> None:
    if not isinstance(tok, str):
        raise invalid(f'"{key}": cannot unmarshal {tok!r} into Go value of type string')
    if not tok.strip() or any(ch in tok for ch in ";\n\r\t{}#") or not tok.isprintable():
        raise invalid(f'invalid condition token {tok!r} in "{key}"')


def _check_chain_name(key: str, name: str) -> None:
    ok = 0 < len(name) <= 28 and all(ch.isalnum() or ch in "-_." for ch in name)
    if not ok:
        raise invalid(f'invalid "{key}" {name!r}: not a valid iptables chain name')


def _mappings(conf: dict) -> list[PortMapping]:
    rc = get_dict(conf, "runtimeConfig")
    if not rc:
        return []
    items = get_list(rc, "portMappings")
    out = []
    for i, item in enumerate(items or []):
        where = f"runtimeConfig.portMappings[{i}]"
        if not isinstance(item, dict):
            raise invalid(f'"{where}": cannot unmarshal into Go struct PortMapEntry', repr(item))
        host = get_int(item, "hostPort")
        ctr = get_int(item, "containerPort")
        proto = get_str(item, "protocol")
        host_ip = get_str(item, "hostIP")
        if ctr <= 0 or ctr > 65535:
            raise invalid(f"Invalid container port number: {ctr}", where)
        if host <= 0 or host > 65535:
            raise invalid(f"Invalid host port number: {host}", where)
        if proto.lower() not in PROTOCOLS:
            raise invalid(f'invalid "protocol" {proto!r} in {where}: must be one of tcp, udp, sctp')
        if host_ip:
            try:
                parse_ip(host_ip)
            except ValueError:
                raise invalid(f'invalid "hostIP" {host_ip!r} in {where}: not an IP address')
        out.append(PortMapping(host, ctr, proto.lower(), host_ip))
    return out


def container_ips(prev: Result, ifname: str) -> dict[int, str]:
    """The first IPv4 and IPv6 of prevResult on CNI_IFNAME in a sandbox (or
    with no interface index), as the reference picks them."""
    out: dict[int, str] = {}
    for ipc in prev.ips:
        fam = ipc.family
        if fam in out:
            continue
        idx = ipc.interface
        if idx is not None and 0 <= idx < len(prev.interfaces):
            intf = prev.interfaces[idx]
            if intf.name != ifname or not intf.sandbox:
                continue
        out[fam] = ipc.address
    return out


def dnat_chain(network: str, cid: str) -> str:
    """The iptables chain of one container's port mappings (CNI-DN-...):
    here, not in ipt_backend, because DEL looks for it before it knows
    whether the iptables backend is needed at all."""
    return format_chain_name(network, cid, "DN-")
