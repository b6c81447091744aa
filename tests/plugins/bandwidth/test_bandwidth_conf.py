"""The bandwidth config as the reference decodes it: which block wins, Go's
uint64 decoding, the reference's validation, and the IFB name. No kernel."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.plugins.meta.bandwidth.conf import load, shape_for_kernel
from pycni.plugins.meta.bandwidth.ifb import ifb_alias, ifb_name
from pycni.spec.errors import CNIError

TICK = 15.625


def conf(**keys) -> dict:
    return {"cniVersion": "1.0.0", "name": "bwnet", "type": "bandwidth", **keys}


def err(c: dict) -> str:
    with pytest.raises(CNIError) as info:
        load(c)
    assert info.value.code == 7, info.value
    return info.value.msg


def directions(c: dict) -> tuple:
    n = load(c)
    return (n.source, n.ingress.rate, n.ingress.burst, n.egress.rate, n.egress.burst)


def test_top_level_block():
    c = conf(ingressRate=8000, ingressBurst=80, egressRate=16, egressBurst=8)
    assert directions(c) == ("", 8000, 80, 16, 8)


def test_runtime_block_and_capability_key_any_case():
    bw = {"ingressRate": 8, "ingressBurst": 8, "egressRate": 16, "egressBurst": 9}
    assert directions(conf(runtimeConfig={"bandwidth": bw})) == (
        "runtimeConfig.bandwidth.",
        8,
        8,
        16,
        9,
    )
    # the reference's own integration config spells it "bandWidth"
    assert directions(conf(RuntimeConfig={"bandWidth": bw}))[1:] == (8, 8, 16, 9)


def test_static_block_wins_over_runtime_even_when_it_is_all_zero():
    rc = {"bandwidth": {"ingressRate": 8, "ingressBurst": 8}}
    assert directions(conf(egressRate=0, runtimeConfig=rc)) == ("", 0, 0, 0, 0)
    # any of the four keys at the top level, even null, selects the top block
    n = load(conf(ingressBurst=None, runtimeConfig=rc))
    assert n.source == "" and n.is_zero
    assert load(conf(INGRESSRATE=8, ingressburst=16, runtimeConfig=rc)).ingress.burst == 16


def test_no_bandwidth_at_all():
    for c in (conf(), conf(runtimeConfig=None), conf(runtimeConfig={"bandwidth": None})):
        n = load(c)
        assert n.source is None and n.is_zero
    assert load(conf(runtimeConfig={"bandwidth": {}})).source == "runtimeConfig.bandwidth."


def test_last_key_equal_up_to_case_wins():
    n = load({**conf(), "ingressRate": 8, "INGRESSRATE": 16, "ingressBurst": 8})
    assert n.ingress.rate == 16
    n = load({**conf(), "ingressRate": 8, "INGRESSRATE": None, "ingressBurst": 8})
    assert n.ingress.rate == 8  # null leaves a Go field as it was


def test_unknown_keys_and_the_reverted_subnet_keys_are_ignored():
    c = conf(
        ingressRate=8,
        ingressBurst=8,
        shapedSubnets="not even a list",
        unshapedSubnets=["198.18.0.0/15"],
        whatever={"x": 1},
    )
    assert directions(c) == ("", 8, 8, 0, 0)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (-1, "cannot unmarshal number -1 into Go value of type uint64"),
        (1 << 64, f"cannot unmarshal number {1 << 64} into Go value of type uint64"),
        (1.5, "cannot unmarshal number 1.5 into Go value of type uint64"),
        ("5", "cannot unmarshal string into Go value of type uint64"),
        (True, "cannot unmarshal bool into Go value of type uint64"),
        ([8], "cannot unmarshal array into Go value of type uint64"),
    ],
)
def test_bad_values_name_the_key(value, words):
    msg = err(conf(ingressRate=value, ingressBurst=8))
    assert msg.startswith('"ingressRate": ') and words in msg
    msg = err(conf(runtimeConfig={"bandwidth": {"egressBurst": value}}))
    assert msg.startswith('"runtimeConfig.bandwidth.egressBurst": ') and words in msg


def test_max_uint64_is_a_value():
    big = (1 << 64) - 1
    assert load(conf(egressRate=big, egressBurst=8)).egress.rate == big


def test_both_blocks_are_decoded_like_go():
    """A wrong type in the unused runtime block still fails, as in Go."""
    msg = err(conf(ingressRate=8, ingressBurst=8, runtimeConfig={"bandwidth": {"egressRate": -1}}))
    assert "runtimeConfig.bandwidth.egressRate" in msg
    assert "runtimeConfig" in err(conf(runtimeConfig="x"))
    assert "runtimeConfig.bandwidth" in err(conf(runtimeConfig={"bandwidth": [1]}))


def test_rate_and_burst_go_together():
    msg = err(conf(ingressRate=100))
    assert 'invalid "ingressRate" 100' in msg and "burst must also be set" in msg
    msg = err(conf(egressBurst=100))
    assert 'invalid "egressBurst" 100' in msg and "rate must also be set" in msg
    msg = err(conf(runtimeConfig={"bandwidth": {"egressRate": 5}}))
    assert 'invalid "runtimeConfig.bandwidth.egressRate" 5' in msg
    # the unused block is not validated
    assert directions(conf(ingressRate=0, runtimeConfig={"bandwidth": {"egressRate": 5}}))[0] == ""


def test_burst_cannot_be_more_than_4gb():
    limit = ((1 << 32) - 1) * 8  # burst/8 must stay below 2^32-1
    assert load(conf(ingressRate=8, ingressBurst=limit - 1)).ingress.burst == limit - 1
    msg = err(conf(ingressRate=8, ingressBurst=limit))
    assert f'invalid "ingressBurst" {limit}: burst cannot be more than 4GB' in msg


def test_what_the_kernel_cannot_shape_is_a_config_error():
    n = load(conf(ingressRate=7, ingressBurst=80, egressRate=10**11, egressBurst=80))
    with pytest.raises(CNIError) as info:
        shape_for_kernel(n.ingress, TICK)
    assert info.value.code == 7 and 'invalid "ingressRate" 7: below 8 bits/s' in info.value.msg
    with pytest.raises(CNIError) as info:
        shape_for_kernel(n.egress, TICK)
    assert info.value.code == 7 and 'invalid "egressBurst" 80' in info.value.msg
    # the reference's own test values: 1 byte/s, 1 byte
    ok = load(conf(ingressRate=8, ingressBurst=8))
    assert shape_for_kernel(ok.ingress, TICK) == (1, 15625000, 1)


def test_ifb_name_is_the_references():
    # what /usr/lib/cni/bandwidth named it for network "bwnet", container "ctr1"
    assert ifb_name("bwnet", "ctr1") == "bwpea62040b30ca"
    assert len(ifb_name("n", "c" * 200)) == 15


def test_ifb_alias_fits_the_kernel_or_is_empty():
    assert ifb_alias("bwnet") == "pycni bandwidth bwnet"
    assert ifb_alias("n" * 239) == "pycni bandwidth " + "n" * 239  # 255 bytes
    assert ifb_alias("n" * 240) == ""


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 70), 1 << 70)
    | st.floats()
    | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_keys = st.sampled_from(
    ["ingressRate", "ingressBurst", "egressRate", "egressBurst", "EgressRate", "runtimeConfig"]
)


@given(st.dictionaries(_keys, _json, max_size=5), st.dictionaries(_keys, _json, max_size=4))
def test_any_config_decodes_or_is_a_config_error(top, runtime):
    c = conf(**top)
    if "runtimeConfig" not in top:
        c["runtimeConfig"] = {"bandwidth": runtime}
    try:
        n = load(c)
    except CNIError as e:
        assert e.code == 7 and e.msg.startswith(('"', "invalid "))
        return
    for d in (n.ingress, n.egress):
        assert 0 <= d.rate < 1 << 64 and 0 <= d.burst // 8 < (1 << 32) - 1
        assert (d.rate == 0) == (d.burst == 0)
