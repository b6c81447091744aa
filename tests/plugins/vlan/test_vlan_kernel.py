"""vlan against the real kernel, in sandbox namespaces. This kernel has no
802.1Q (CONFIG_VLAN_8021Q): the ADD must then fail with an error naming it
and leave nothing behind, and the test skips with that reason; on a kernel
with VLANs it runs the whole lifecycle."""

from __future__ import annotations

import pytest

from support.outcomes import ok
from support.sublink import conf, lifecycle_or_skip, run


@pytest.mark.parametrize("vlan_id", [0, 100, 4094])
def test_lifecycle_or_named_missing_support(vlan_id, uplink, netns_factory, data_dir, cni_path):
    c = conf("vlan", data_dir, master=uplink, vlanId=vlan_id, mtu=1400)
    ct = netns_factory("ct")
    eth0 = lifecycle_or_skip("vlan", c, ct, data_dir, cni_path, "CONFIG_VLAN_8021Q")
    assert eth0["linkinfo"]["info_data"]["id"] == vlan_id
    assert eth0["mtu"] == 1400


def test_del_succeeds_with_the_master_gone(host_ns, netns_factory, data_dir, cni_path):
    """The reference's DEL fails here (its loadConf looks the master up)."""
    ct = netns_factory("ct")
    ok(run("vlan", "DEL", conf("vlan", data_dir, master="mvgone", vlanId=5), ct, path=cni_path))
