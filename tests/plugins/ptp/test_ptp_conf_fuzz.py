"""Hostile configs: ptp decoding answers with a code-7 CNIError or a
config, never a crash; and what decodes keeps the values it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.main.ptp import conf as ptp_conf
from pycni.spec.errors import CNIError

KEYS = ["ipMasq", "ipMasqBackend", "mtu", "MTU", "ipam", "dns", "name", "vrfname", "table"]

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
@given(configs, st.booleans())
def test_ptp_conf_never_crashes(conf, for_add):
    try:
        n = ptp_conf.load(conf, for_add=for_add)
    except CNIError as err:
        assert err.code == 7, err
        return
    if for_add:
        assert n.ipam_type and 0 <= n.mtu <= 65535
        assert n.ip_masq_backend in (None, "iptables", "nftables")
