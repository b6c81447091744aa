"""CNI_ARGS: Go's LoadArgs for plugins and cnitool's parser for runtimes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.spec.args import load_args, parse_cnitool_args
from pycni.spec.errors import CNIError

FIELDS = {"IP": "ip", "MAC": "mac", "K8S_POD_NAME": "str", "Debug": "bool"}


def args_error(s: str, fields: dict | None = None) -> CNIError:
    with pytest.raises(CNIError) as info:
        load_args(s, FIELDS if fields is None else fields)
    return info.value


def test_empty_string_is_nothing() -> None:
    assert load_args("", FIELDS) == {}


def test_known_keys() -> None:
    out = load_args("IP=10.0.0.5;K8S_POD_NAME=web-0;Debug=TRUE;MAC=0A-58-0A-F4-00-05", FIELDS)
    assert out == {
        "IP": "10.0.0.5",
        "K8S_POD_NAME": "web-0",
        "Debug": True,
        "MAC": "0a:58:0a:f4:00:05",
    }


def test_values_are_canonical() -> None:
    assert load_args("IP=2001:DB8::0:1", FIELDS) == {"IP": "2001:db8::1"}
    assert load_args("IP=::ffff:10.1.2.3", FIELDS) == {"IP": "10.1.2.3"}
    assert load_args("MAC=0a58.0af4.0005", FIELDS) == {"MAC": "0a:58:0a:f4:00:05"}
    assert load_args("MAC=00:00:00:00:fe:80:00:00", FIELDS) == {"MAC": "00:00:00:00:fe:80:00:00"}


def test_empty_values() -> None:
    assert load_args("K8S_POD_NAME=", FIELDS) == {"K8S_POD_NAME": ""}
    assert load_args("IP=;MAC=", FIELDS) == {}
    assert load_args("IP=10.0.0.1;IP=", FIELDS) == {}


def test_later_pairs_win() -> None:
    assert load_args("K8S_POD_NAME=a;K8S_POD_NAME=b", FIELDS) == {"K8S_POD_NAME": "b"}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), ("True", True), ("0", False), ("false", False), ("FALSE", False)],
)
def test_bool_values(text: str, value: bool) -> None:
    assert load_args(f"Debug={text}", FIELDS) == {"Debug": value}


@pytest.mark.parametrize(
    ("s", "msg"),
    [
        ("IP", 'ARGS: invalid pair "IP"'),
        ("IP=1=2", 'ARGS: invalid pair "IP=1=2"'),
        ("IP=10.0.0.1;", 'ARGS: invalid pair ""'),
        (";IP=10.0.0.1", 'ARGS: invalid pair ""'),
        (
            "Debug=yes",
            'ARGS: error parsing value of pair "Debug=yes": boolean unmarshal error: invalid'
            " input yes",
        ),
        (
            "Debug=YES",
            'ARGS: error parsing value of pair "Debug=YES": boolean unmarshal error: invalid'
            " input yes",
        ),
        (
            "IP=10.0.0.300",
            'ARGS: error parsing value of pair "IP=10.0.0.300": invalid IP address: 10.0.0.300',
        ),
        (
            "IP=10.0.0.1/24",
            'ARGS: error parsing value of pair "IP=10.0.0.1/24": invalid IP address: 10.0.0.1/24',
        ),
        (
            "MAC=zz:58:0a:f4:00:05",
            'ARGS: error parsing value of pair "MAC=zz:58:0a:f4:00:05": address'
            " zz:58:0a:f4:00:05: invalid MAC address",
        ),
        (
            "MAC=0a:58:0a:f4:00",
            'ARGS: error parsing value of pair "MAC=0a:58:0a:f4:00": address 0a:58:0a:f4:00:'
            " invalid MAC address",
        ),
        (
            "MAC=0a:58-0a:f4:00:05",
            'ARGS: error parsing value of pair "MAC=0a:58-0a:f4:00:05": address'
            " 0a:58-0a:f4:00:05: invalid MAC address",
        ),
        (
            "MAC=0a580af40005xx",
            'ARGS: error parsing value of pair "MAC=0a580af40005xx": address 0a580af40005xx:'
            " invalid MAC address",
        ),
        (
            "IgnoreUnknown=maybe",
            'ARGS: error parsing value of pair "IgnoreUnknown=maybe": boolean unmarshal error:'
            " invalid input maybe",
        ),
        ("FOO=1;ip=10.0.0.1", 'ARGS: unknown args ["FOO=1" "ip=10.0.0.1"]'),
        ("FOO=1;IgnoreUnknown=0", 'ARGS: unknown args ["FOO=1"]'),
        ("K8S_POD_NAMESPACE=ns\n", 'ARGS: unknown args ["K8S_POD_NAMESPACE=ns\\n"]'),
    ],
)
def test_errors(s: str, msg: str) -> None:
    err = args_error(s)
    assert (err.code, err.msg, err.details) == (4, msg, "CNI_ARGS")
    assert str(err) == f"{msg}; CNI_ARGS"


def test_invalid_value_is_reported_before_unknown_keys() -> None:
    assert args_error("FOO=1;Debug=x").msg.startswith("ARGS: error parsing value")


@pytest.mark.parametrize(
    "s",
    [
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_UID=u;K8S_POD_INFRA_CONTAINER_ID=abc",
        "K8S_POD_NAMESPACE=ns;IgnoreUnknown=true",
        "FOO=1;IgnoreUnknown=True;BAR=2",
        "IgnoreUnknown=0;FOO=1;IgnoreUnknown=1",
    ],
)
def test_ignore_unknown_anywhere(s: str) -> None:
    out = load_args(s, FIELDS)
    assert out == {"IgnoreUnknown": True}


def test_ignore_unknown_does_not_excuse_bad_pairs() -> None:
    assert args_error("IgnoreUnknown=1;BAD").msg == 'ARGS: invalid pair "BAD"'


def test_keys_are_case_sensitive() -> None:
    assert args_error("debug=1").msg == 'ARGS: unknown args ["debug=1"]'


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown CNI_ARGS field kind 'int'"):
        load_args("X=1", {"X": "int"})


_key = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=10).filter(
    lambda k: k != "IgnoreUnknown"
)
_value = st.text(
    st.characters(blacklist_characters=";=", blacklist_categories=("Cs",)), max_size=10
)
_ip4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_mac = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
_kinds = {"str": _value, "bool": st.booleans(), "ip": _ip4, "mac": _mac}


@st.composite
def _schema_and_values(draw) -> tuple[dict, dict]:
    keys = draw(st.lists(_key, unique=True, max_size=6))
    fields = {k: draw(st.sampled_from(sorted(_kinds))) for k in keys}
    values = {k: draw(_kinds[kind]) for k, kind in fields.items()}
    return fields, values


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@given(_schema_and_values())
def test_generated_args_round_trip(case: tuple[dict, dict]) -> None:
    fields, values = case
    s = ";".join(f"{k}={_text(v)}" for k, v in values.items())
    assert load_args(s, fields) == values


@given(_schema_and_values(), st.lists(st.tuples(_key, _value), max_size=3))
def test_unknown_keys_are_ignored_only_with_ignore_unknown(case, extra) -> None:
    fields, values = case
    extra = [(k, v) for k, v in extra if k not in fields]
    pairs = [f"{k}={_text(v)}" for k, v in values.items()] + [f"{k}={v}" for k, v in extra]
    if extra:
        with pytest.raises(CNIError, match="ARGS: unknown args"):
            load_args(";".join(pairs), fields)
    assert load_args(";".join([*pairs, "IgnoreUnknown=1"]), fields) == {
        **values,
        "IgnoreUnknown": True,
    }


# -- cnitool ---------------------------------------------------------------------------------


def test_cnitool_args() -> None:
    assert parse_cnitool_args("") == []
    assert parse_cnitool_args("A=1;B=two;A=3") == [("A", "1"), ("B", "two"), ("A", "3")]


@pytest.mark.parametrize("s", ["A", "A=", "=1", "A=1;", "A=1=2", "A=1;;B=2"])
def test_cnitool_args_errors(s: str) -> None:
    bad = next(p for p in s.split(";") if len(p.split("=")) != 2 or "" in p.split("="))
    with pytest.raises(CNIError) as info:
        parse_cnitool_args(s)
    assert (info.value.code, info.value.msg) == (4, f'invalid CNI_ARGS pair "{bad}"')
