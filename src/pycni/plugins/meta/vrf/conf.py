"""The vrf config: `vrfname` (required) and `table` (optional u32).

Decoded as Go's encoding/json does (case-insensitive keys, `null` is not
set, a wrong JSON type is an error) and checked before anything is touched;
every error is code 7 naming the key and the value.
"""

from __future__ import annotations

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.jsonutil import ci_get, get_str, json_kind
from pycni.spec.validate import config_interface_name_problem

MAX_TABLE = 0xFFFFFFFF


class NetConf(netconf.NetConf):
    __slots__ = ("table", "vrfname")

    vrfname: str
    table: int  # 0: pick a free one


def load(conf: dict) -> NetConf:
    n = NetConf(conf)
    n.vrfname = get_str(conf, "vrfname")
    if not n.vrfname:
        raise invalid(
            'configuration is expected to have a valid vrf name: "vrfname" is missing or empty'
        )
    problem = config_interface_name_problem(n.vrfname)
    if problem:
        raise invalid(f'invalid "vrfname" {n.vrfname!r}: {problem}')
    n.table = _table(conf)
    return n


def _table(conf: dict) -> int:
    value = ci_get(conf, "table")
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f'"table": cannot unmarshal {json_kind(value)} into Go value of type uint32')
    if not 0 <= value <= MAX_TABLE:
        raise invalid(
            f'"table": cannot unmarshal number {value} into Go value of type uint32',
            "a routing table id is 1-4294967295 (0: pick a free one)",
        )
    return value
