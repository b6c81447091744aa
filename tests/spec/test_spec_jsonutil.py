"""Go-compatible JSON helpers: key matching, printing, parsing, typed getters, IP text."""

from __future__ import annotations

import pytest

from pycni.spec.errors import CNIError
from pycni.spec.ipnet import go_cidr, go_ip
from pycni.spec.jsonutil import (
    ci_get,
    fold_key,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    go_dumps,
    go_loads,
    go_quote,
    go_type,
    json_kind,
)


def test_ci_get() -> None:
    d = {"TYPE": "a", "type": "b", "Name": "n", "nAmE": "m"}
    assert ci_get(d, "type") == "b"  # the exact key first
    assert ci_get(d, "name") == "n"  # else the first case-insensitive match
    assert ci_get(d, "missing") is None
    assert ci_get(d, "missing", 5) == 5
    assert ci_get({"k": None}, "k", 5) is None  # present null is returned as is
    assert ci_get({"\u212aey": 1}, "key") == 1  # Kelvin sign folds to k, as in Go
    assert ci_get({"typ\u017fe": 1}, "typSe") == 1  # long s folds to s, as in Go
    assert fold_key("CniVersion") == fold_key("cniversion")


def test_go_dumps_indent_and_escaping() -> None:
    obj = {"a": [1, {"b": "x<y>&z"}], "e": [], "o": {}, "u": "é\u2028ü", "c": "\n\t\x01"}
    assert go_dumps(obj) == (
        "{\n"
        '    "a": [\n'
        "        1,\n"
        "        {\n"
        '            "b": "x\\u003cy\\u003e\\u0026z"\n'
        "        }\n"
        "    ],\n"
        '    "e": [],\n'
        '    "o": {},\n'
        '    "u": "é\\u2028ü",\n'
        '    "c": "\\n\\t\\u0001"\n'
        "}"
    )
    assert go_dumps(obj, indent=False) == (
        '{"a":[1,{"b":"x\\u003cy\\u003e\\u0026z"}],"e":[],"o":{},"u":"é\\u2028ü",'
        '"c":"\\n\\t\\u0001"}'
    )
    assert go_dumps({"k": "\ud800"}, indent=False) == '{"k":"\ufffd"}'
    assert go_dumps([True, None, 1.5]) == "[\n    true,\n    null,\n    1.5\n]"
    with pytest.raises(ValueError):
        go_dumps(float("nan"))


def test_go_loads() -> None:
    assert go_loads(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert go_loads('{"a": null}') == {"a": None}
    assert go_loads(b'"\xff"') == "\ufffd"  # invalid UTF-8 is replaced, as in Go
    for bad in (b"NaN", b"[Infinity]", b"-Infinity", b"\xef\xbb\xbf{}", b"{", b"", b"[1,]"):
        with pytest.raises(ValueError):
            go_loads(bad)
    with pytest.raises(ValueError, match="exceeded max depth"):
        go_loads(b"[" * 100000 + b"]" * 100000)


def nested(depth: int, leaf: str = '{"k": [1, "x\\u0026", null]}') -> str:
    """`depth` levels of alternating objects and arrays around `leaf`."""
    opening = "".join('{"a":' if i % 2 else "[" for i in range(depth))
    closing = "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
    return opening + leaf + closing


@pytest.mark.parametrize("depth", [10, 990, 1000, 2500, 9998])
def test_any_depth_go_accepts_decodes_and_encodes(depth) -> None:
    """Issue 6, item 10: Go accepts 10000 levels; the C scanner alone ~990."""
    text = nested(depth)
    doc = go_loads(text)
    assert go_dumps(doc, indent=False) == text.replace(": ", ":").replace(", ", ",")
    if depth <= 1000:  # indented text grows with the square of the depth
        assert go_dumps(go_loads(go_dumps(doc))) == go_dumps(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (nested(10000), "exceeded max depth"),
        # 3.13 words a trailing comma its own way
        (nested(3000, "[1,]"), "Expecting value|Illegal trailing comma"),
        (nested(3000, '{"a" 1}'), "Expecting ':' delimiter"),
        (nested(3000, "{1: 2}"), "Expecting property name enclosed in double quotes"),
        (nested(3000, "[1 2]"), "Expecting ',' delimiter"),
        ("[" * 3000, "Expecting value"),
        (nested(3000) + "x", "Extra data"),
    ],
)
def test_deep_documents_are_refused_like_shallow_ones(text, message) -> None:
    with pytest.raises(ValueError, match=message):
        go_loads(text)


@pytest.mark.parametrize(
    ("s", "quoted"),
    [
        ("abc", '"abc"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("a\nb\tc\r\x07\x08\x0c\x0b", '"a\\nb\\tc\\r\\a\\b\\f\\v"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("héllo 世界", '"héllo 世界"'),
        ("\u00a0\u200b\ufeff", '"\\u00a0\\u200b\\ufeff"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("", '""'),
    ],
)
def test_go_quote(s: str, quoted: str) -> None:
    assert go_quote(s) == quoted


def test_go_type_and_json_kind() -> None:
    assert [go_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "<nil>",
        "bool",
        "float64",
        "float64",
        "string",
        "[]interface {}",
        "map[string]interface {}",
    ]
    assert [json_kind(v) for v in (True, 1, 1.5, "s", [], {})] == [
        "bool",
        "number",
        "number 1.5",
        "string",
        "array",
        "object",
    ]


# -- typed getters ---------------------------------------------------------------------------


def test_getters_read_values_case_insensitively() -> None:
    conf = {"ipMasq": True, "MTU": 1500, "bridge": "cni0", "Ranges": [[1]], "ipam": {"type": "x"}}
    assert get_bool(conf, "ipmasq") is True
    assert get_int(conf, "mtu") == 1500
    assert get_str(conf, "Bridge") == "cni0"
    assert get_list(conf, "ranges") == [[1]]
    assert get_dict(conf, "IPAM") == {"type": "x"}


def test_getters_defaults_for_absent_and_null() -> None:
    conf = {"a": None}
    assert get_bool(conf, "a") is False and get_bool(conf, "b", True) is True
    assert get_int(conf, "a") == 0 and get_int(conf, "b", 7) == 7
    assert get_str(conf, "a") == "" and get_str(conf, "b", "x") == "x"
    assert get_list(conf, "a") is None and get_list(conf, "b", []) == []
    assert get_dict(conf, "a") is None


@pytest.mark.parametrize(
    ("getter", "value", "msg"),
    [
        (get_bool, "true", '"k": cannot unmarshal string into Go value of type bool'),
        (get_bool, 1, '"k": cannot unmarshal number into Go value of type bool'),
        (get_int, 1.5, '"k": cannot unmarshal number 1.5 into Go value of type int'),
        (get_int, 1e3, '"k": cannot unmarshal number 1000.0 into Go value of type int'),
        (get_int, True, '"k": cannot unmarshal bool into Go value of type int'),
        (get_int, "1", '"k": cannot unmarshal string into Go value of type int'),
        (get_str, 1, '"k": cannot unmarshal number into Go value of type string'),
        (get_list, {}, '"k": cannot unmarshal object into Go value of type []interface {}'),
        (get_dict, [], '"k": cannot unmarshal array into Go value of type map[string]interface {}'),
    ],
)
def test_getter_type_errors(getter, value, msg: str) -> None:
    with pytest.raises(CNIError) as info:
        getter({"k": value}, "k")
    assert (info.value.code, info.value.msg) == (7, msg)


# -- IP text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical", "family"),
    [
        ("10.0.0.1", "10.0.0.1", 4),
        ("0.0.0.0", "0.0.0.0", 4),
        ("255.255.255.255", "255.255.255.255", 4),
        ("::", "::", 6),
        ("::1", "::1", 6),
        ("2001:DB8::1", "2001:db8::1", 6),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6),
        ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1", 6),  # longest zero run
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1", 6),
        ("2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1", 6),  # first of equal runs
        ("2001:db8:1:1:1:1:0:1", "2001:db8:1:1:1:1:0:1", 6),  # a single 0 stays
        ("1::", "1::", 6),
        ("::ffff:10.1.2.3", "10.1.2.3", 4),  # v4-mapped prints as IPv4, as in Go
        ("::10.1.2.3", "::a01:203", 6),  # v4-compatible does not
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304", 6),
    ],
)
def test_go_ip(text: str, canonical: str, family: int) -> None:
    assert go_ip(text) == (canonical, family)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.0.0.1",
        "010.0.0.1",
        " 1.2.3.4",
        "1.2.3.4 ",
        "fe80::1%eth0",
        "1:2:3:4:5:6:7:8:9",
        "::g",
        "1.2.3.4/32",
        "é",
        "1.2.3.4\x00",
        None,
        5,
    ],
)
def test_go_ip_rejects(text) -> None:
    with pytest.raises(ValueError) as info:
        go_ip(text)
    assert str(info.value) == f"invalid IP address: {text}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3/16", ("10.1.2.3", 16, 4)),
        ("10.1.2.3/0", ("10.1.2.3", 0, 4)),
        ("10.1.2.3/32", ("10.1.2.3", 32, 4)),
        ("10.1.2.3/024", ("10.1.2.3", 24, 4)),  # Go's dtoi takes leading zeros
        ("2001:DB8::5/64", ("2001:db8::5", 64, 6)),
        ("::/0", ("::", 0, 6)),
        ("::ffff:10.1.2.3/120", ("10.1.2.3", 24, 4)),
        ("::ffff:10.1.2.3/64", ("10.1.2.3", 0, 4)),
    ],
)
def test_go_cidr(text: str, expected: tuple) -> None:
    assert go_cidr(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "10.1.2.3",
        "10.1.2.3/",
        "10.1.2.3/33",
        "10.1.2.3/-1",
        "10.1.2.3/+8",
        "10.1.2.3/8/8",
        "::/129",
        "fe80::1%eth0/64",
        "/24",
        "10.1.2.3/2a",
        "10.1.2.3/٣",
        None,
    ],
)
def test_go_cidr_rejects(text) -> None:
    with pytest.raises(ValueError) as info:
        go_cidr(text)
    assert str(info.value) == f"invalid CIDR address: {text}"


def test_go_loads_errors_without_the_json_package_loaded():
    """The C scanner needs json.decoder for some errors; a fresh process has none."""
    import subprocess
    import sys

    code = (
        "from pycni.spec.jsonutil import go_loads\n"
        "for bad in (b'{not json', b'[1,', b'{\"a\" 1}', b'\"\\\\x\"'):\n"
        "    try:\n        go_loads(bad)\n    except ValueError as e:\n        print(e)\n"
        "import sys; print('json' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Expecting property name enclosed in double quotes")
    assert len(lines) == 5


def test_go_loads_does_not_import_json_on_success():
    import subprocess
    import sys
    from pathlib import Path

    import pycni

    src = str(Path(pycni.__file__).resolve().parent.parent)
    code = (
        f"import sys\nsys.path.insert(0, {src!r})\n"
        "from pycni.spec.jsonutil import go_loads, go_dumps\n"
        'go_dumps(go_loads(b\'{"a": [1, 2.5, null, true, "x"]}\'))\n'
        "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ""},
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
