"""Config decoding: code 7 naming key and value, hostile admin chain names,
the version gate, prevResult rules; no kernel needed except where a name is
tried on iptables itself."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.meta.firewall.conf import DEFAULT_ADMIN_CHAIN, chain_name_problem, load
from pycni.plugins.meta.firewall.verbs import bridge_of
from pycni.spec.errors import CNIError
from pycni.spec.result import Interface, Result

from support.firewall import PLUGIN, filter_table, make_conf, prev_result, run
from support.outcomes import err, ok


def base(**keys) -> dict:
    return {"cniVersion": "1.0.0", "name": "n", "type": "firewall", **keys}


def test_defaults():
    c = load(base())
    assert (c.backend, c.admin_chain, c.firewalld_zone, c.ingress_policy) == (
        "",
        DEFAULT_ADMIN_CHAIN,
        "trusted",
        "",
    )
    assert not c.isolates
    c = load(base(BACKEND="nftables", ingresspolicy="isolated", IptablesAdminChainName=None))
    assert (c.backend, c.ingress_policy, c.admin_chain) == ("nftables", "isolated", "CNI-ADMIN")
    assert c.isolates


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"backend": "ebtables"}, ['"backend"', '"ebtables"']),
        ({"backend": 1}, ['"backend"', "number"]),
        ({"ingressPolicy": "closed"}, ['"ingressPolicy"', '"closed"']),
        ({"ingressPolicy": ["open"]}, ['"ingressPolicy"', "array"]),
        ({"firewalldZone": True}, ['"firewalldZone"', "bool"]),
        ({"iptablesAdminChainName": "A" * 29}, ['"iptablesAdminChainName"', "28"]),
        ({"iptablesAdminChainName": "a b"}, ['"iptablesAdminChainName"', '"a b"']),
        ({"iptablesAdminChainName": 'x"y'}, ['"iptablesAdminChainName"', "quotes"]),
        ({"iptablesAdminChainName": "x\ny"}, ['"iptablesAdminChainName"', "\\n"]),
        ({"iptablesAdminChainName": "-j"}, ['"iptablesAdminChainName"', "'-'"]),
        ({"iptablesAdminChainName": "!x"}, ['"iptablesAdminChainName"', "'!'"]),
        ({"iptablesAdminChainName": "ACCEPT"}, ['"iptablesAdminChainName"', "built-in"]),
        ({"iptablesAdminChainName": "FORWARD"}, ['"iptablesAdminChainName"', "built-in"]),
        ({"iptablesAdminChainName": "CNI-FORWARD"}, ['"iptablesAdminChainName"', "own chain"]),
        ({"iptablesAdminChainName": "LOG"}, ['"iptablesAdminChainName"', "target"]),
        ({"iptablesAdminChainName": "ädmin"}, ['"iptablesAdminChainName"', "ASCII"]),
    ],
)
def test_bad_values_are_code_7_naming_key_and_value(keys, words):
    with pytest.raises(CNIError) as info:
        load(base(**keys))
    assert info.value.code == 7
    for w in words:
        assert w in info.value.msg, info.value.msg


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["backend", "ingressPolicy", "iptablesAdminChainName", "firewalldZone"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=40),
            st.lists(st.text(max_size=3)),
        ),
    )
)
def test_any_config_decodes_or_is_code_7(keys):
    try:
        c = load(base(**keys))
    except CNIError as e:
        assert e.code == 7
        return
    assert c.backend in ("", "iptables", "firewalld", "nftables")
    assert c.ingress_policy in ("", "open", "same-bridge", "isolated")
    assert chain_name_problem(c.admin_chain) == ""


@given(st.text(max_size=40))
def test_accepted_chain_names_are_safe_for_restore(name):
    if name and not chain_name_problem(name):
        assert len(name) <= 28
        assert all("!" <= ch <= "~" and ch not in "\"'\\`" for ch in name)
        assert name[0] not in "-!"


@pytest.mark.parametrize("name", ["a,b", "x:y", "A.B_c-d", "adm#1", "z" * 28, "return"])
def test_accepted_odd_chain_names_work_in_iptables(name, ct):
    c = make_conf("1.0.0", prev_result(), backend="iptables", iptablesAdminChainName=name)
    ok(run(PLUGIN, "ADD", c, ct))
    rules = filter_table()
    assert f":{name} - [0:0]" in rules
    assert any(r.startswith("-A CNI-FORWARD") and r.endswith(f"-j {name}") for r in rules), rules
    ok(run(PLUGIN, "CHECK", c, ct))


def test_version_gate_and_prev_result(ct):
    old = make_conf("0.3.1", prev_result(cni_version="0.3.1"), backend="nftables")
    code, msg = err(run(PLUGIN, "ADD", old, ct))
    assert code == 1 and "incompatible CNI versions" in msg
    c = make_conf("1.0.0", None, backend="nftables")
    assert err(run(PLUGIN, "ADD", c, ct)) == (999, "missing prevResult from earlier plugin")
    ok(run(PLUGIN, "DEL", c, ct))
    broken = make_conf(
        "1.0.0", {"cniVersion": "1.0.0", "ips": [{"address": "x"}]}, backend="nftables"
    )
    code, msg = err(run(PLUGIN, "ADD", broken, ct))
    assert msg.startswith("could not parse prevResult")
    ok(run(PLUGIN, "DEL", broken, ct))  # DEL does not need it
    code, _ = err(run(PLUGIN, "ADD", make_conf("1.0.0", prev_result(), backend="bogus"), ct))
    assert code == 7


def _prev(*names: str) -> Result:
    return Result(interfaces=[Interface(n) for n in names])


@pytest.mark.parametrize(
    ("prev", "code", "text"),
    [
        (_prev(), 999, 'make sure to chain "firewall" plugin with "bridge"'),
        (_prev(""), 999, "got empty bridge name"),
        (_prev("-j"), 7, "starts with '-'"),
        (_prev("!br"), 7, "starts with '!'"),
        (_prev("br 0"), 7, "whitespace"),
        (_prev("b" * 16), 7, "15 bytes"),
    ],
)
def test_bridge_from_prev_result(prev, code, text):
    conf = load(base(ingressPolicy="same-bridge"))
    with pytest.raises(CNIError) as info:
        bridge_of(conf, prev)
    assert info.value.code == code and text in info.value.msg
    assert bridge_of(load(base()), prev) == ""  # open: no bridge needed


def test_hostile_bridge_name_touches_nothing(ct):
    prev = prev_result(bridge="-j ACCEPT")
    code, msg = err(
        run(
            PLUGIN,
            "ADD",
            make_conf("1.0.0", prev, backend="iptables", ingressPolicy="isolated"),
            ct,
        )
    )
    assert code == 7 and '"-j ACCEPT"' in msg
    assert not any("CNI-" in r for r in filter_table())
