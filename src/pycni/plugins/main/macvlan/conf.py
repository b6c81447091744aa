"""The macvlan plugin's config, decoded with Go's semantics (code 7 naming the key)."""

from __future__ import annotations

from pycni.kernel import netlink as nl
from pycni.kernel.link import encode_info_data
from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.plugins.pkg.sublink import SubLinkConf
from pycni.spec.jsonutil import get_int, get_str

MODES = ("bridge", "private", "vepa", "passthru")
IFLA_MACVLAN_BC_QUEUE_LEN = 7
_UINT32_MAX = 0xFFFFFFFF


class NetConf(SubLinkConf):
    __slots__ = ("bcqueuelen", "mac", "mode")

    mode: str
    mac: str
    bcqueuelen: int

    def info_data(self) -> bytes:
        """IFLA_INFO_DATA as Go's netlink sends it: the mode, then the
        broadcast queue length when one is set."""
        data = encode_info_data("macvlan", {"mode": self.mode})
        if self.bcqueuelen:
            data += nl.nla_u32(IFLA_MACVLAN_BC_QUEUE_LEN, self.bcqueuelen)
        return data


def load(conf: dict, cni_args: str = "", strict: bool = True) -> NetConf:
    """Decode; `strict` (ADD, CHECK) also validates mode, MAC and CNI_ARGS,
    which DEL must not fail on."""
    n = NetConf(conf)
    n.mode = get_str(conf, "mode") or "bridge"
    n.bcqueuelen = get_int(conf, "bcqueuelen")
    if n.bcqueuelen < 0 or n.bcqueuelen > _UINT32_MAX:
        raise invalid(
            f'"bcqueuelen": cannot unmarshal number {n.bcqueuelen} into Go value of type uint32'
        )
    n.mac = ""
    if strict:
        if n.mode not in MODES:
            raise invalid(
                f'invalid "mode": unknown macvlan mode: "{n.mode}" (use one of {", ".join(MODES)})'
            )
        n.mac = requested_mac(conf, cni_args)
    return n


def requested_mac(conf: dict, cni_args: str) -> str:
    """The reference's precedence: config `mac` < CNI_ARGS MAC < runtimeConfig.mac."""
    return netconf.requested_mac(conf, cni_args, True, own_key=True)
