"""vlan against the real kernel, in sandbox namespaces. This kernel has no
802.1Q (CONFIG_VLAN_8021Q): the ADD must then fail with an error naming it
and leave nothing behind, and the test skips with that reason; on a kernel
with VLANs it runs the whole lifecycle."""

from __future__ import annotations

import pytest

from support.cni import reservations
from support.outcomes import err, ok
from support.sublink import conf, links, run


@pytest.mark.parametrize("vlan_id", [0, 100, 4094])
def test_lifecycle_or_named_missing_support(vlan_id, uplink, netns_factory, data_dir, cni_path):
    ct = netns_factory("ct")
    c = conf("vlan", data_dir, master=uplink, vlanId=vlan_id, mtu=1400)
    out = run("vlan", "ADD", c, ct, path=cni_path)
    if not out.ok:
        _, msg = err(out)
        assert "this kernel has no vlan support (CONFIG_VLAN_8021Q)" in msg, msg
        assert sorted(links(ct.name)) == ["lo"]
        assert not [n for n in links() if n.startswith("veth")]
        assert reservations(data_dir, c["name"]) == []
        ok(run("vlan", "DEL", c, ct, path=cni_path))
        pytest.skip(f"kernel refuses vlan: {msg}")
    res = out.json
    eth0 = links(ct.name)["eth0"]
    assert eth0["linkinfo"]["info_kind"] == "vlan"
    assert eth0["linkinfo"]["info_data"]["id"] == vlan_id
    assert eth0["mtu"] == 1400
    ok(run("vlan", "CHECK", {**c, "prevResult": res}, ct, path=cni_path))
    ok(run("vlan", "DEL", c, ct, path=cni_path))
    ok(run("vlan", "DEL", c, ct, path=cni_path))
    assert sorted(links(ct.name)) == ["lo"]
    assert reservations(data_dir, c["name"]) == []


def test_del_succeeds_with_the_master_gone(host_ns, netns_factory, data_dir, cni_path):
    """The reference's DEL fails here (its loadConf looks the master up)."""
    ct = netns_factory("ct")
    ok(run("vlan", "DEL", conf("vlan", data_dir, master="mvgone", vlanId=5), ct, path=cni_path))
