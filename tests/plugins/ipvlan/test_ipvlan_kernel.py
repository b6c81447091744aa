"""ipvlan against the real kernel, in sandbox namespaces. This kernel has no
ipvlan (CONFIG_IPVLAN): the ADD must then fail with an error naming it and
leave nothing behind, and the test skips with that reason; on a kernel with
ipvlan it runs the whole lifecycle."""

from __future__ import annotations

import pytest

from support.sublink import conf, lifecycle_or_skip, links


@pytest.mark.parametrize("mode", ["l2", "l3", "l3s"])
def test_lifecycle_or_named_missing_support(mode, uplink, netns_factory, data_dir, cni_path):
    c = conf("ipvlan", data_dir, master=uplink, mode=mode)
    eth0 = lifecycle_or_skip("ipvlan", c, netns_factory("ct"), data_dir, cni_path, "CONFIG_IPVLAN")
    assert eth0["linkinfo"]["info_data"]["mode"] == mode


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
