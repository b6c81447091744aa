"""The sbr config: `table`, `gateways`, `addSourceHints`.

The reference (upstream after 1.1.1; Debian's 1.1.1 ignores these keys)
decodes them with encoding/json and checks `gateways` only halfway through
an ADD, inside the namespace, as a plain error. Here every check runs
before anything is touched and is CNI error 7 naming the key and value:
types on every verb (DEL also uses `table`), and the `table` range too;
the `gateways` values only on ADD, the one verb that uses them.
"""

from __future__ import annotations

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.ipnet import go_ip
from pycni.spec.jsonutil import ci_get, get_bool, json_kind

MAX_TABLE = 0xFFFFFFFF  # routing table ids are u32; 0 is "unspecified"


class NetConf(netconf.NetConf):
    """The decoded config: `table` None means "pick free tables"."""

    __slots__ = ("add_source_hints", "gateway4", "gateway6", "gateways", "table")

    table: int | None
    gateways: list[str]
    gateway4: str | None
    gateway6: str | None
    add_source_hints: bool


def load(conf: dict, for_add: bool = False) -> NetConf:
    n = NetConf(conf)
    n.table = _table(conf)
    n.gateways = _gateways(conf)
    n.add_source_hints = get_bool(conf, "addSourceHints")
    n.gateway4 = n.gateway6 = None
    if for_add:
        n.gateway4, n.gateway6 = static_gateways(n.gateways)
    return n


def _table(conf: dict) -> int | None:
    value = ci_get(conf, "table")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f'"table": cannot unmarshal {json_kind(value)} into Go value of type int')
    if not 0 < value <= MAX_TABLE:
        raise invalid(f'invalid "table" {value} (a routing table id is 1 to {MAX_TABLE})')
    return value


def _gateways(conf: dict) -> list[str]:
    items = ci_get(conf, "gateways")
    if items is None:
        return []
    if not isinstance(items, list):
        raise invalid(
            f'"gateways": cannot unmarshal {json_kind(items)} into Go value of type []string'
        )
    for item in items:
        if not isinstance(item, str):
            raise invalid(
                f'"gateways": cannot unmarshal {json_kind(item)} into Go value of type string'
            )
    return list(items)


def static_gateways(gateways: list[str]) -> tuple[str | None, str | None]:
    """(IPv4, IPv6) gateway of `gateways`: at most two, one per family
    (an IPv4-mapped IPv6 address counts as IPv4, as Go's To4 has it)."""
    if len(gateways) > 2:
        raise invalid(
            f'"gateways": list cannot contain more than 2 entries (one IPv4, one IPv6), '
            f"got {len(gateways)}"
        )
    found: dict[int, str] = {}
    for text in gateways:
        try:
            ip, family = go_ip(text)
        except ValueError:
            raise invalid(f'"gateways": invalid static gateway IP address: "{text}"') from None
        if family in found:
            raise invalid(
                f'"gateways": list contains multiple IPv{family} addresses: '
                f"{found[family]} and {text}"
            )
        found[family] = ip
    return found.get(4), found.get(6)
