"""The bridge plugin's network configuration, decoded with Go's semantics.

Keys match case-insensitively, `null` is "not set", a value of the wrong
JSON type is an error (code 7 naming the key), and the reference's checks
(VLAN ranges, trunk syntax, exclusive options, MAC precedence CNI_ARGS <
args.cni.mac < runtimeConfig.mac) are applied before anything is touched.
"""

from __future__ import annotations

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid as _err
from pycni.spec.jsonutil import ci_get, get_bool, get_int, get_list, get_str
from pycni.spec.validate import config_interface_name_problem

DEFAULT_BRIDGE = "cni0"


class NetConf(netconf.NetConf):
    """The decoded config; attribute names follow the reference's fields."""

    __slots__ = (
        "br_name",
        "disable_container_interface",
        "enable_dad",
        "force_address",
        "hairpin_mode",
        "ip_masq",
        "ip_masq_backend",
        "is_default_gw",
        "is_gw",
        "mac",
        "mac_spoof_chk",
        "mtu",
        "port_isolation",
        "preserve_default_vlan",
        "promisc_mode",
        "vlan",
        "vlan_trunk_set",
        "vlans",
    )

    br_name: str
    disable_container_interface: bool
    enable_dad: bool
    force_address: bool
    hairpin_mode: bool
    ip_masq: bool
    ip_masq_backend: str | None
    is_default_gw: bool
    is_gw: bool
    mac: str
    mac_spoof_chk: bool
    mtu: int
    port_isolation: bool
    preserve_default_vlan: bool
    promisc_mode: bool
    vlan: int
    vlan_trunk_set: bool
    vlans: list[int]

    @property
    def vlan_filtering(self) -> bool:
        return self.vlan != 0 or self.vlan_trunk_set


def load(conf: dict, cni_args: str = "", for_add: bool = False) -> NetConf:
    """Decode and validate; raises CNIError code 7 with the key and value.

    Decoding errors (wrong JSON types, VLAN ranges, trunk syntax, CNI_ARGS)
    fail every verb, as in the reference's loadNetConf. The checks of values
    only ADD uses (exclusive options, bridge name, MTU, MAC, masquerade
    backend) run with `for_add`, so a DEL or CHECK never fails on them.
    """
    n = NetConf(conf)
    n.br_name = get_str(conf, "bridge", DEFAULT_BRIDGE)
    n.is_gw = get_bool(conf, "isGateway")
    n.is_default_gw = get_bool(conf, "isDefaultGateway")
    if n.is_default_gw:
        n.is_gw = True
    n.force_address = get_bool(conf, "forceAddress")
    n.ip_masq = get_bool(conf, "ipMasq")
    n.ip_masq_backend = get_str(conf, "ipMasqBackend", None)  # type: ignore[arg-type]
    n.mtu = get_int(conf, "mtu")
    n.hairpin_mode = get_bool(conf, "hairpinMode")
    n.promisc_mode = get_bool(conf, "promiscMode")
    n.vlan = get_int(conf, "vlan")
    if n.vlan < 0 or n.vlan > 4094:
        raise _err(f"invalid VLAN ID {n.vlan} (must be between 0 and 4094)")
    trunk = get_list(conf, "vlanTrunk")
    n.vlan_trunk_set = trunk is not None
    n.vlans = collect_vlan_trunk(trunk)
    # The reference defaults preserveDefaultVlan to true "to maintain existing
    # behavior"; only an explicit false removes the port's default PVID.
    n.preserve_default_vlan = get_bool(conf, "preserveDefaultVlan", True)
    n.mac_spoof_chk = get_bool(conf, "macspoofchk")
    n.enable_dad = get_bool(conf, "enabledad")
    n.disable_container_interface = get_bool(conf, "disableContainerInterface")
    n.port_isolation = get_bool(conf, "portIsolation")
    n.mac = netconf.requested_mac(conf, cni_args, for_add)
    if for_add:
        _check_for_add(n)
    return n


def _check_for_add(n: NetConf) -> None:
    _check_ifname("bridge", n.br_name)
    if n.ip_masq_backend is not None and n.ip_masq_backend not in ("iptables", "nftables"):
        raise _err(
            f'invalid "ipMasqBackend" {n.ip_masq_backend!r}: unknown ipmasq backend '
            '(use "iptables" or "nftables")'
        )
    if n.mtu < 0 or n.mtu > 65535:
        raise _err(f'invalid "mtu" {n.mtu}: must be between 0 and 65535')
    if n.hairpin_mode and n.promisc_mode:
        raise _err("cannot set hairpin mode and promiscuous mode at the same time")
    if n.is_layer3 and n.disable_container_interface:
        raise _err("cannot use IPAM when DisableContainerInterface flag is set")
    if n.vlan and len(f"{n.br_name}.{n.vlan}") > 15 and n.is_gw and n.is_layer3:
        raise _err(
            f'invalid "bridge" {n.br_name!r} with "vlan" {n.vlan}: the gateway interface '
            f'name "{n.br_name}.{n.vlan}" is longer than 15 characters'
        )


def _check_ifname(key: str, name: str) -> None:
    problem = config_interface_name_problem(name)
    if problem:
        raise _err(
            f'invalid "{key}" {name!r}: {problem}; an interface name of 1-15 bytes '
            "without NUL, '/', ':' or whitespace is required"
        )


def collect_vlan_trunk(trunk: list | None) -> list[int]:
    """The reference's collectVlanTrunk: de-duplicated, sorted VIDs."""
    if not trunk:
        return []
    vids: set[int] = set()
    for item in trunk:
        if not isinstance(item, dict):
            raise _err(f'"vlanTrunk": cannot unmarshal {item!r} into Go value of type VlanTrunk')
        min_id = _trunk_int(item, "minID")
        max_id = _trunk_int(item, "maxID")
        vid = _trunk_int(item, "id")
        if min_id is not None and max_id is not None:
            if min_id <= 0 or min_id > 4094:
                raise _err("incorrect trunk minID parameter", f"minID {min_id}")
            if max_id <= 0 or max_id > 4094:
                raise _err("incorrect trunk maxID parameter", f"maxID {max_id}")
            if max_id < min_id:
                raise _err("minID is greater than maxID in trunk parameter", f"{min_id} > {max_id}")
            vids.update(range(min_id, max_id + 1))
        elif min_id is None and max_id is not None:
            raise _err("minID and maxID should be configured simultaneously, minID is missing")
        elif min_id is not None and max_id is None:
            raise _err("minID and maxID should be configured simultaneously, maxID is missing")
        if vid is not None:
            if vid <= 0 or vid > 4094:
                raise _err("incorrect trunk id parameter", f"id {vid}")
            vids.add(vid)
    return sorted(vids)


def _trunk_int(item: dict, key: str) -> int | None:
    value = ci_get(item, key)
    if value is None:
        return None
    return get_int(item, key)
