"""Hostile configs: vrf decoding answers with a code-7 CNIError or a
config, never a crash; and what decodes keeps the values it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.meta.vrf import conf as vrf_conf
from pycni.spec.errors import CNIError

KEYS = ["vrfname", "vrfName", "table", "Table", "name", "ipam", "prevResult"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from([*KEYS, "type", "nameservers", "search"]), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
configs = st.dictionaries(st.sampled_from(KEYS), json_value, max_size=6)


@settings(max_examples=300, deadline=None)
@given(configs)
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
