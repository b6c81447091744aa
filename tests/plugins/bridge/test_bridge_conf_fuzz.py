"""Hostile configs: bridge decoding answers with a CNIError, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.main.bridge import conf as bridge_conf
from pycni.spec.errors import CNIError

from support.fuzz import configs as configs_of

KEYS = [
    "bridge",
    "isGateway",
    "isDefaultGateway",
    "forceAddress",
    "ipMasq",
    "ipMasqBackend",
    "mtu",
    "hairpinMode",
    "promiscMode",
    "vlan",
    "vlanTrunk",
    "preserveDefaultVlan",
    "enabledad",
    "macspoofchk",
    "disableContainerInterface",
    "portIsolation",
    "ipam",
    "dns",
    "args",
    "runtimeConfig",
    "cniVersion",
    "name",
    "MTU",
    "Bridge",
]

configs = configs_of(KEYS, nested=["id", "minID", "maxID", "type", "mac", "cni"], max_size=8)
cni_args = st.one_of(
    st.just(""),
    st.text(max_size=30),
    st.sampled_from(["MAC=02:00:00:00:00:01", "IgnoreUnknown=1;X=y", "MAC=zz"]),
)


@settings(max_examples=400, deadline=None)
@given(conf=configs, args=cni_args, for_add=st.booleans())
def test_any_config_decodes_or_raises_a_cni_error(conf, args, for_add):
    conf = {"cniVersion": "1.1.0", "name": "fuzz", "type": "bridge", **conf}
    try:
        n = bridge_conf.load(conf, args, for_add)
    except CNIError as err:
        assert err.code in (2, 4, 7), err
        assert err.msg
        return
    # an explicit "bridge": "" decodes (as in Go) and is refused by ADD only:
    # DEL never needs the bridge's name
    assert isinstance(n.br_name, str) and (n.br_name or not for_add)
    assert isinstance(n.mtu, int)
    assert 0 <= n.vlan <= 4094
