"""sbr without a kernel: config decoding, which addresses count, table ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.plugins.meta.sbr.conf import MAX_TABLE, load, static_gateways
from pycni.plugins.meta.sbr.routing import host_cidr, next_free_table, relevant_ips
from pycni.spec.errors import CNIError
from pycni.spec.result import Interface, IPConfig, Result


def test_defaults():
    c = load({"cniVersion": "1.0.0", "name": "n", "type": "sbr"}, for_add=True)
    assert (c.table, c.gateways, c.gateway4, c.gateway6, c.add_source_hints) == (
        None,
        [],
        None,
        None,
        False,
    )


def test_keys_match_case_insensitively_and_null_is_unset():
    c = load({"TABLE": 7, "Gateways": ["fd00::1"], "addsourcehints": True}, for_add=True)
    assert (c.table, c.gateway6, c.add_source_hints) == (7, "fd00::1", True)
    assert load({"table": None, "gateways": None}).table is None


@pytest.mark.parametrize(
    ("gateways", "expected"),
    [
        (["198.18.0.1"], ("198.18.0.1", None)),
        (["fd00::1", "198.18.0.1"], ("198.18.0.1", "fd00::1")),
        (["::ffff:198.18.0.1"], ("198.18.0.1", None)),  # v4-mapped is IPv4, as Go's To4
        (["FD00:0::1"], (None, "fd00::1")),
        ([], (None, None)),
    ],
)
def test_static_gateways(gateways, expected):
    assert static_gateways(gateways) == expected


def test_gateway_values_are_checked_for_add_only():
    bad = {"gateways": ["x", "y", "z"]}
    assert load(bad).gateways == ["x", "y", "z"]
    with pytest.raises(CNIError) as e:
        load(bad, for_add=True)
    assert e.value.code == 7


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from(["198.18.0.1", "fd00::1", "::ffff:1.2.3.4", "1.2.3.4/8"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner)
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(["table", "gateways", "addSourceHints", "Table", "dns", "ipam", "name"]),
        json_values,
        max_size=5,
    ),
    st.booleans(),
)
def test_any_config_decodes_or_is_a_cni_error(config, for_add):
    try:
        c = load(config, for_add=for_add)
    except CNIError as e:
        assert e.code in (7,)
        return
    assert c.table is None or 0 < c.table <= MAX_TABLE
    assert all(isinstance(g, str) for g in c.gateways)
    if for_add:
        assert len(c.gateways) <= 2


def _result(ips, names=("eth0",)):
    return Result(
        "1.0.0",
        interfaces=[Interface(n) for n in names],
        ips=[IPConfig(a, interface=i) for a, i in ips],
    )


def test_relevant_ips():
    prev = _result(
        [("198.18.0.2/24", 0), ("198.18.1.2/24", 1), ("198.18.2.2/24", None), ("fd00::2/64", 9)],
        ("eth0", "net1"),
    )
    assert [ipc.address for ipc in relevant_ips(prev, "eth0")] == [
        "198.18.0.2/24",
        "198.18.2.2/24",
        "fd00::2/64",
    ]
    assert [ipc.address for ipc in relevant_ips(prev, "net1")] == [
        "198.18.1.2/24",
        "198.18.2.2/24",
        "fd00::2/64",
    ]


def test_no_ips_is_an_error():
    with pytest.raises(CNIError, match="No IP addresses supplied on interface: eth0"):
        relevant_ips(_result([]), "eth0")


def test_host_cidr():
    assert host_cidr(IPConfig("198.18.0.2/24")) == "198.18.0.2/32"
    assert host_cidr(IPConfig("fd00::2/64")) == "fd00::2/128"


def test_next_free_table():
    used = {100, 101, 103, 254}
    assert next_free_table(used, 100) == 102
    assert next_free_table(used, 103) == 104
    assert next_free_table(set(), 100) == 100
