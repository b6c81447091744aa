"""The vlan plugin's config, decoded with Go's semantics (code 7 naming the key)."""

from __future__ import annotations

from pycni.plugins.pkg.netconf import invalid
from pycni.plugins.pkg.sublink import SubLinkConf
from pycni.spec.jsonutil import get_int


class NetConf(SubLinkConf):
    __slots__ = ("vlan_id",)

    vlan_id: int

    def info_data(self) -> dict:
        return {"id": self.vlan_id}


def load(conf: dict, for_add: bool = True) -> NetConf:
    """Decode; the VLAN ID range is checked for every verb (the reference's
    loadConf), the required master and IPAM only for ADD."""
    n = NetConf(conf)
    n.vlan_id = get_int(conf, "vlanId")
    if n.vlan_id < 0 or n.vlan_id > 4094:
        raise invalid(f'invalid "vlanId" {n.vlan_id}: invalid VLAN ID (must be between 0 and 4094)')
    if for_add:
        if not n.master:
            raise invalid(
                '"master" field is required. It specifies the host interface name '
                "to create the VLAN for"
            )
        if not n.is_layer3:
            raise invalid('vlan needs an IPAM plugin: "ipam.type" is empty')
    return n
