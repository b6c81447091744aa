"""Hostile configs: vrf decoding answers with a code-7 CNIError or a
config, never a crash; and what decodes keeps the values it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.meta.vrf import conf as vrf_conf
from pycni.spec.errors import CNIError

from support.fuzz import configs

KEYS = ["vrfname", "vrfName", "table", "Table", "name", "ipam", "prevResult"]


@settings(max_examples=300, deadline=None)
@given(configs(KEYS, nested=["type", "nameservers", "search"]))
def test_vrf_conf_never_crashes(conf):
    try:
        n = vrf_conf.load(conf)
    except CNIError as err:
        assert err.code == 7, err
        return
    assert n.vrfname and 0 < len(n.vrfname.encode()) <= 15
    assert 0 <= n.table <= 0xFFFFFFFF


@given(st.integers(0, 0xFFFFFFFF), st.sampled_from(["vrf-a", "VRF0", "v"]))
def test_vrf_conf_keeps_its_values(table, name):
    n = vrf_conf.load({"vrfName": name, "TABLE": table})
    assert (n.vrfname, n.table) == (name, table)
