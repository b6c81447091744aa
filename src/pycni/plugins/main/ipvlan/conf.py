"""The ipvlan plugin's config, decoded with Go's semantics (code 7 naming the key)."""

from __future__ import annotations

from pycni.plugins.pkg.netconf import invalid
from pycni.plugins.pkg.sublink import SubLinkConf
from pycni.spec.jsonutil import get_str

MODES = ("l2", "l3", "l3s")
FLAGS = ("bridge", "private", "vepa")


class NetConf(SubLinkConf):
    __slots__ = ("flag", "mode")

    mode: str
    flag: str

    def info_data(self) -> dict:
        """IFLA_INFO_DATA: the mode and the flag, both always sent (as
        iproute2 and Go's netlink do)."""
        return {"mode": self.mode, "flags": self.flag}


def load(conf: dict, strict: bool = True) -> NetConf:
    """Decode; `strict` (ADD, CHECK) also validates mode and flag, which DEL
    must not fail on."""
    n = NetConf(conf)
    n.mode = get_str(conf, "mode") or "l2"
    n.flag = get_str(conf, "flag") or "bridge"
    if strict:
        if n.mode not in MODES:
            raise invalid(
                f'invalid "mode": unknown ipvlan mode: "{n.mode}" (use one of {", ".join(MODES)})'
            )
        if n.flag not in FLAGS:
            raise invalid(
                f'invalid "flag": unknown ipvlan flag: "{n.flag}" (use one of {", ".join(FLAGS)})'
            )
    return n
