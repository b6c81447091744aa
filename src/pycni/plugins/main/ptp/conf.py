"""The ptp plugin's network configuration: ipMasq, ipMasqBackend, mtu, ipam, dns.

Decoded with Go's semantics (case-insensitive keys, `null` is "not set", a
value of the wrong JSON type is code 7 naming the key). The reference does
not check values; here the ones ADD uses are checked before anything is
touched: an IPAM plugin must be configured (ptp has no L2 mode), the MTU
must be one a link can have, and the masquerade backend must be known.
"""

from __future__ import annotations

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.jsonutil import get_bool, get_int, get_str

BACKENDS = ("iptables", "nftables")


class NetConf(netconf.NetConf):
    """The decoded config; attribute names follow the reference's fields."""

    __slots__ = ("ip_masq", "ip_masq_backend", "mtu")

    ip_masq: bool
    ip_masq_backend: str | None
    mtu: int


def load(conf: dict, for_add: bool = False) -> NetConf:
    """Decode; with `for_add` also validate the values ADD (and STATUS) use.

    Type errors fail every verb, as the reference's json.Unmarshal does; a
    DEL never fails on a value it does not use."""
    n = NetConf(conf)
    n.ip_masq = get_bool(conf, "ipMasq")
    n.ip_masq_backend = get_str(conf, "ipMasqBackend", None)  # type: ignore[arg-type]
    n.mtu = get_int(conf, "mtu")
    if for_add:
        check(n)
    return n


def check(n: NetConf) -> None:
    if not n.ipam_type:
        raise invalid(
            '"ipam.type" is missing: ptp needs an IPAM plugin to address the veth pair',
            'set "ipam": {"type": "host-local", ...} (or static, dhcp)',
        )
    if n.ip_masq_backend is not None and n.ip_masq_backend not in BACKENDS:
        raise invalid(
            f'invalid "ipMasqBackend" {n.ip_masq_backend!r}: unknown ipmasq backend '
            '(use "iptables" or "nftables")'
        )
    if n.mtu < 0 or n.mtu > 65535:
        raise invalid(f'invalid "mtu" {n.mtu}: must be between 0 and 65535')
