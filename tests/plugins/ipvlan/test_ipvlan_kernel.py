"""ipvlan against the real kernel, in sandbox namespaces. This kernel has no
ipvlan (CONFIG_IPVLAN): the ADD must then fail with an error naming it and
leave nothing behind, and the test skips with that reason; on a kernel with
ipvlan it runs the whole lifecycle."""

from __future__ import annotations

import pytest

from support.cni import reservations
from support.outcomes import err, ok
from support.sublink import conf, links, run


@pytest.mark.parametrize("mode", ["l2", "l3", "l3s"])
def test_lifecycle_or_named_missing_support(mode, uplink, netns_factory, data_dir, cni_path):
    ct = netns_factory("ct")
    c = conf("ipvlan", data_dir, master=uplink, mode=mode)
    out = run("ipvlan", "ADD", c, ct, path=cni_path)
    if not out.ok:
        _, msg = err(out)
        assert "this kernel has no ipvlan support (CONFIG_IPVLAN)" in msg, msg
        assert sorted(links(ct.name)) == ["lo"]
        assert not [n for n in links() if n.startswith("veth")]
        assert reservations(data_dir, c["name"]) == []
        ok(run("ipvlan", "DEL", c, ct, path=cni_path))
        pytest.skip(f"kernel refuses ipvlan: {msg}")
    res = out.json
    eth0 = links(ct.name)["eth0"]
    assert eth0["linkinfo"]["info_kind"] == "ipvlan"
    assert eth0["linkinfo"]["info_data"]["mode"] == mode
    ok(run("ipvlan", "CHECK", {**c, "prevResult": res}, ct, path=cni_path))
    ok(run("ipvlan", "DEL", c, ct, path=cni_path))
    ok(run("ipvlan", "DEL", c, ct, path=cni_path))
    assert sorted(links(ct.name)) == ["lo"]
    assert reservations(data_dir, c["name"]) == []


def test_go_reference_fails_too_on_this_kernel(uplink, netns_factory, tmp_path):
    """Without CONFIG_IPVLAN the reference fails as well (with the bare
    errno); with it, there is nothing to compare here (skip)."""
    from support.bridge import go_plugin

    go = go_plugin("ipvlan")
    ct = netns_factory("ct")
    out = run_go(go, conf("ipvlan", tmp_path, master=uplink), ct)
    if out.ok:
        pytest.skip("this kernel has ipvlan")
    assert "operation not supported" in out.stdout.lower()
    assert sorted(links(ct.name)) == ["lo"]


def run_go(go, c, ct):
    from pycni.skel.testing import run_plugin

    return run_plugin(str(go), "ADD", c, netns=ct.path, path=[str(go.parent)])
