"""Hostile configs: ptp decoding answers with a code-7 CNIError or a
config, never a crash; and what decodes keeps the values it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.main.ptp import conf as ptp_conf
from pycni.spec.errors import CNIError

from support.fuzz import configs

KEYS = ["ipMasq", "ipMasqBackend", "mtu", "MTU", "ipam", "dns", "name", "vrfname", "table"]


@settings(max_examples=300, deadline=None)
@given(configs(KEYS, nested=["type", "nameservers", "search"]), st.booleans())
def test_ptp_conf_never_crashes(conf, for_add):
    try:
        n = ptp_conf.load(conf, for_add=for_add)
    except CNIError as err:
        assert err.code == 7, err
        return
    if for_add:
        assert n.ipam_type and 0 <= n.mtu <= 65535
        assert n.ip_masq_backend in (None, "iptables", "nftables")
