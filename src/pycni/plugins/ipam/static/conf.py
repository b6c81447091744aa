"""static's configuration: the reference's LoadIPAMConfig, with clear errors.

The addresses are, in order: `ipam.addresses`, plus CNI_ARGS `IP` (each
CNI_ARGS `GATEWAY` becomes the gateway of every CNI_ARGS address whose
subnet holds it); `args.cni.ips` replaces them all, and `runtimeConfig.ips` replaces
those again (neither carries gateways). Addresses keep their host bits.
"""

from __future__ import annotations

from pycni.plugins.pkg.ipamconf import ipam_section, parse_routes
from pycni.plugins.pkg.netconf import parse_dns
from pycni.spec import version as versions
from pycni.spec.args import load_args
from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.ipnet import go_cidr, go_ip
from pycni.spec.jsonutil import ci_get, get_dict, get_list, json_kind

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import DNS, Route

_ENV_FIELDS = {"IP": "str", "GATEWAY": "str"}


def _invalid(msg: str) -> CNIError:
    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg)


class Address:
    """One address: "ip/prefix" text (host bits kept), its family and gateway."""

    __slots__ = ("cidr", "family", "gateway", "ip", "prefixlen")

    def __init__(self, ip: str, prefixlen: int, family: int, gateway: str | None = None) -> None:
        self.ip = ip
        self.prefixlen = prefixlen
        self.family = family
        self.gateway = gateway
        self.cidr = f"{ip}/{prefixlen}"

    def contains(self, ip: str) -> bool:
        from pycni.spec.ipnet import IPNet, parse_addr

        family, value = parse_addr(ip)
        return family == self.family and IPNet.parse(self.cidr).contains(family, value)


class StaticConfig:
    __slots__ = ("addresses", "dns", "routes")

    def __init__(self, addresses: list[Address], routes: list[Route], dns: DNS | None) -> None:
        self.addresses = addresses
        self.routes = routes
        self.dns = dns


def _cidr(text: object, where: str, expected: str) -> Address:
    try:
        if not isinstance(text, str):
            raise ValueError
        ip, prefixlen, family = go_cidr(text.strip() if where == "CNI_ARGS IP" else text)
    except ValueError:
        shown = text if isinstance(text, str) else json_kind(text)
        raise _invalid(f"invalid {where}: {expected} in CIDR notation, got: '{shown}'")
    return Address(ip, prefixlen, family)


def _config_addresses(ipam: dict) -> list[Address]:
    items = get_list(ipam, "addresses") or []
    out = []
    for i, item in enumerate(items):
        where = f"ipam.addresses[{i}]"
        if not isinstance(item, dict):
            raise _invalid(f"invalid {where}: expected an object, got {json_kind(item)}")
        addr = _cidr(
            ci_get(item, "address"), f"{where}.address", "the 'address' field is expected to be"
        )
        gw = ci_get(item, "gateway")
        if gw is not None and gw != "":
            if not isinstance(gw, str):
                raise _invalid(f"invalid {where}.gateway: expected a string, got {json_kind(gw)}")
            try:
                gw_ip, gw_family = go_ip(gw)
            except ValueError as err:
                raise _invalid(f"invalid {where}.gateway: {err}")
            if gw_family != addr.family:
                raise _invalid(
                    f"invalid {where}.gateway: {gw_ip} is IPv{gw_family}, "
                    f"its address {addr.cidr} is IPv{addr.family}"
                )
            addr.gateway = gw_ip
        out.append(addr)
    return out


def _env_addresses(cni_args: str) -> list[Address]:
    """CNI_ARGS IP, each with the CNI_ARGS GATEWAY its subnet holds. As in
    the reference, GATEWAY never applies to the config's own addresses."""
    env = load_args(cni_args, _ENV_FIELDS)
    addresses: list[Address] = []
    ip = str(env.get("IP") or "")
    if ip:
        for item in ip.split(","):
            addresses.append(_cidr(item.strip(), "CNI_ARGS IP", "the 'ip' field is expected to be"))
    gateway = str(env.get("GATEWAY") or "")
    if gateway:
        for item in gateway.split(","):
            try:
                gw_ip, _ = go_ip(item.strip())
            except ValueError:
                raise CNIError(4, f"invalid gateway address: {item}", "CNI_ARGS GATEWAY")
            for addr in addresses:
                if addr.contains(gw_ip):
                    addr.gateway = gw_ip
    return addresses
    return addresses


def _ips(value: object, where: str) -> list[Address] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _invalid(f"invalid {where}: expected a list of CIDRs, got {json_kind(value)}")
    return [
        _cidr(item, f"{where}[{i}]", "an entry in the 'ips' field is expected to be")
        for i, item in enumerate(value)
    ]


def load(conf: dict, cni_args: str, cni_version: str) -> StaticConfig:
    ipam = ipam_section(conf)
    addresses = _config_addresses(ipam)
    if cni_args:
        addresses += _env_addresses(cni_args)
    args = get_dict(conf, "args")
    cni = get_dict(args, "cni") if args else None
    from_args = _ips(ci_get(cni, "ips"), "args.cni.ips") if cni else None
    if from_args:
        addresses = from_args
    runtime = get_dict(conf, "runtimeConfig")
    from_runtime = _ips(ci_get(runtime, "ips"), "runtimeConfig.ips") if runtime else None
    if from_runtime:
        addresses = from_runtime
    if not versions.gte(cni_version or "0.1.0", "0.3.0"):
        for family in (4, 6):
            if sum(1 for a in addresses if a.family == family) > 1:
                raise _invalid(
                    f"CNI version {cni_version} does not support more than 1 address per family"
                )
    return StaticConfig(addresses, parse_routes(ipam), parse_dns(ipam))
