"""The keys every plugin config has, decoded with one error dialect.

Like Go's encoding/json into the reference's types.NetConf: keys match
case-insensitively, `null` is "not set", and a value of the wrong JSON type
is CNI error 7 naming the key and the value ('"mtu": cannot unmarshal
string into Go value of type int'). Plugins decode their own keys with the
same `get_*` getters (pycni.spec.jsonutil) and raise `invalid(...)`.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.jsonutil import ci_get, get_dict, get_list, get_str

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import DNS


def invalid(msg: str, details: str = "") -> CNIError:
    """A config error (code 7); `msg` names the key and the bad value."""
    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg, details)


class NetConf:
    """The common keys: name, cniVersion, the IPAM plugin's type, dns."""

    __slots__ = ("cni_version", "dns", "ipam_type", "name", "raw")

    raw: dict
    name: str
    cni_version: str
    ipam_type: str
    dns: DNS | None

    def __init__(self, conf: dict) -> None:
        self.raw = conf
        self.name = get_str(conf, "name")
        self.cni_version = get_str(conf, "cniVersion")
        self.ipam_type = ipam_type(conf)
        self.dns = parse_dns(conf)

    @property
    def is_layer3(self) -> bool:
        """An IPAM plugin is configured (else the interface gets no address)."""
        return bool(self.ipam_type)


def ipam_type(conf: dict) -> str:
    ipam = get_dict(conf, "ipam")
    if ipam is None:
        return ""
    t = ci_get(ipam, "type")
    if t is not None and not isinstance(t, str):
        raise invalid('"ipam.type": cannot unmarshal into Go value of type string', repr(t))
    return t or ""


def parse_dns(conf: dict) -> DNS | None:
    """The config's `dns`, or None when no field of it is set (dnsConfSet)."""
    dns = get_dict(conf, "dns")
    if not dns:
        return None
    nameservers = _str_list(dns, "nameservers")
    search = _str_list(dns, "search")
    options = _str_list(dns, "options")
    domain = get_str(dns, "domain")
    if nameservers is None and search is None and options is None and not domain:
        return None
    # deliberately here: a DEL that reads only the name need not load results
    from pycni.spec.result import DNS

    return DNS(nameservers or [], domain, search or [], options or [])


def _str_list(d: dict, key: str) -> list[str] | None:
    items = get_list(d, key)
    if items is None:
        return None
    for item in items:
        if not isinstance(item, str):
            raise invalid(f'"dns.{key}": cannot unmarshal {item!r} into Go value of type string')
    return list(items)


def requested_mac(conf: dict, cni_args: str, check: bool, own_key: bool = False) -> str:
    """The MAC asked for, with the reference's precedence: CNI_ARGS MAC <
    args.cni.mac < runtimeConfig.mac (bridge); with `own_key` the config's
    `mac` < CNI_ARGS MAC < runtimeConfig.mac (macvlan, tap: they do not read
    args.cni). Normalised (and validated) if `check`."""
    mac = ""
    source = ""
    if own_key:
        mac, source = get_str(conf, "mac"), "mac"
    if cni_args:
        from pycni.spec.args import load_args

        env = load_args(cni_args, {"MAC": "str"})
        if env.get("MAC"):
            mac, source = str(env["MAC"]), "CNI_ARGS MAC"
    args = None if own_key else get_dict(conf, "args")
    if args:
        cni = get_dict(args, "cni")
        if cni:
            value = get_str(cni, "mac")
            if value:
                mac, source = value, "args.cni.mac"
    rc = get_dict(conf, "runtimeConfig")
    if rc:
        value = get_str(rc, "mac")
        if value:
            mac, source = value, "runtimeConfig.mac"
    if mac and check:
        mac = ethernet_mac(mac, source)
    return mac


def ethernet_mac(mac: str, source: str = "mac") -> str:
    """A 6-byte MAC as lower-case aa:bb:cc:dd:ee:ff (net.ParseMAC's forms)."""
    from pycni.spec.ipnet import parse_mac  # a MAC asked for: rare, and ADD only

    try:
        text = parse_mac(mac.strip())
    except ValueError:
        text = ""
    if len(text) != 17:
        raise invalid(f"invalid MAC address {mac!r} (from {source})")
    return text
