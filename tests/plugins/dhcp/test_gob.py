"""pycni's encoding/gob against Go's: the encodings, round trips, and both
directions with real Go code (tests/plugins/dhcp/gogob, built once per session
from Debian's CNI sources, like tests/interop's gocnitool)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycni.plugins.ipam.dhcp import gob, wire
from pycni.plugins.ipam.dhcp.gob import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    STRING,
    UINT,
    Array,
    Map,
    Ptr,
    Slice,
    Struct,
)

GOGOB = Path(__file__).resolve().parent / "gogob"
CNI_SOURCES = Path("/usr/share/gocode/src/github.com/containernetworking/cni")
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
UINT64 = st.integers(0, (1 << 64) - 1)


def _uint(x: int) -> bytes:
    out = bytearray()
    gob.put_uint(out, x)
    return bytes(out)


def _int(i: int) -> bytes:
    out = bytearray()
    gob.put_int(out, i)
    return bytes(out)


# ------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    ("value", "hexed"),
    [
        (0, "00"),
        (7, "07"),
        (127, "7f"),
        (128, "ff80"),
        (256, "fe0100"),
        ((1 << 64) - 1, "f8" + "ff" * 8),
    ],
)
def test_uint_bytes_are_gos(value, hexed):
    # encoding/gob doc.go: "256 is transmitted as (FE 01 00)"
    assert _uint(value).hex() == hexed


@pytest.mark.parametrize(("value", "hexed"), [(0, "00"), (-1, "01"), (1, "02"), (-129, "fe0101")])
def test_int_bytes_are_gos(value, hexed):
    # doc.go: "-129=^128=(^256>>1) encodes as (FE 01 01)"
    assert _int(value).hex() == hexed


def test_float_bytes_are_gos():
    # doc.go: "17.0 ... is transmitted as (FE 31 40)"
    assert _uint(gob.float_bits(17.0)).hex() == "fe3140"


@pytest.mark.parametrize("bad", [-1, 1 << 64])
def test_uint_out_of_range(bad):
    with pytest.raises(gob.GobError):
        _uint(bad)


@pytest.mark.parametrize("bad", [-(1 << 63) - 1, 1 << 63])
def test_int_out_of_range(bad):
    with pytest.raises(gob.GobError):
        _int(bad)


@given(UINT64)
def test_uint_round_trip(x):
    raw = _uint(x)
    assert len(raw) == (1 if x < 128 else 1 + (x.bit_length() + 7) // 8)
    r = gob._Reader(raw)
    assert r.uint() == x and r.pos == len(raw)


@given(INT64)
def test_int_round_trip(i):
    r = gob._Reader(_int(i))
    assert r.sint() == i


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_round_trip_keeps_the_bits(f):
    back = gob.float_from_bits(gob._Reader(_uint(gob.float_bits(f))).uint())
    assert struct.pack("<d", back) == struct.pack("<d", f)


@given(st.text())
def test_string_round_trip(s):
    assert gob.decode(gob.encode(s, STRING)) == s


@given(st.binary(max_size=300))
def test_bytes_round_trip(b):
    assert gob.decode(gob.encode(b, BYTES)) == b


def test_top_level_non_struct_has_a_zero_delta():
    # a singleton: type id 6 (string) as int 0x0c, delta 0, then the value
    assert gob.encode("ab", STRING).hex() == "050c0002" + "6162"


def test_zero_fields_are_omitted_and_nested_structs_are_not():
    inner = Struct("In", [("X", INT)])
    outer = Struct("Out", [("A", INT), ("B", STRING), ("N", inner), ("P", Ptr(INT))])
    data = gob.encode({"A": 0, "B": "", "N": {"X": 0}, "P": None}, outer)
    dec = gob.Decoder.from_bytes(data)
    assert dec.decode(outer) == {"A": 0, "B": "", "N": {"X": 0}, "P": None}
    # the value message: length 5, type id 65, delta 3 (field N), N's end, the end
    assert data.endswith(bytes.fromhex("05ff82030000"))


# ---------------------------------------------------- property round trips

BASIC = (BOOL, INT, UINT, FLOAT, STRING, BYTES)


def _values(t: gob.GoType) -> st.SearchStrategy:
    if t is BOOL:
        return st.booleans()
    if t is INT:
        return INT64
    if t is UINT:
        return UINT64
    if t is FLOAT:
        return st.floats(allow_nan=False)
    if t is STRING:
        return st.text(max_size=20)
    if t is BYTES:
        return st.binary(max_size=20)
    if isinstance(t, Ptr):
        return st.none() | _values(t.elem)
    if isinstance(t, Struct):
        return st.fixed_dictionaries({n: _values(ft) for n, ft in t.fields})
    if isinstance(t, Array):
        return st.lists(_values(t.elem), min_size=t.length, max_size=t.length)
    if isinstance(t, Slice):
        return st.lists(_values(t.elem), max_size=3)
    assert isinstance(t, Map)
    return st.dictionaries(_values(t.key), _values(t.elem), max_size=3)


def _struct(kids: list) -> Struct:
    return Struct("S", [(f"F{i}", t) for i, t in enumerate(kids)])


GO_TYPES = st.recursive(
    st.sampled_from(BASIC),
    lambda kids: st.one_of(
        kids.map(Slice),
        st.tuples(kids, st.integers(0, 3)).map(lambda x: Array(*x)),
        st.tuples(st.sampled_from((INT, STRING)), kids).map(lambda kv: Map(*kv)),
        st.lists(kids | st.sampled_from(BASIC).map(Ptr), max_size=4).map(_struct),
    ),
    max_leaves=8,
)


def _expected(t: gob.GoType, v):
    """What the receiver sees: a struct field's pointer to a zero basic value
    is not sent, so it arrives nil."""
    if isinstance(t, Struct):
        out = {}
        for name, ft in t.fields:
            fv = v[name]
            if isinstance(ft, Ptr):
                out[name] = None if fv is None or not fv else fv
            else:
                out[name] = _expected(ft, fv)
        return out
    if isinstance(t, (Slice, Array)):
        return [_expected(t.elem, x) for x in v]
    if isinstance(t, Map):
        return {k: _expected(t.elem, x) for k, x in v.items()}
    return v


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_nested_round_trip(data):
    t = data.draw(GO_TYPES)
    v = data.draw(_values(t))
    raw = gob.encode(v, t)
    assert gob.decode(raw, t) == _expected(t, v)
    # untyped decoding reads the same values from the stream's own definitions
    if not _has_ptr(t):
        assert gob.decode(raw) == v


def _has_ptr(t) -> bool:
    if isinstance(t, Ptr):
        return True
    if isinstance(t, Struct):
        return any(_has_ptr(ft) for _, ft in t.fields)
    if isinstance(t, Map):
        return _has_ptr(t.key) or _has_ptr(t.elem)
    return isinstance(t, (Slice, Array)) and _has_ptr(t.elem)


@settings(max_examples=100)
@given(st.data())
def test_one_stream_many_values_sends_each_definition_once(data):
    t = data.draw(GO_TYPES.filter(lambda t: not isinstance(t, gob._Basic)))
    values = data.draw(st.lists(_values(t), min_size=2, max_size=4))
    enc = gob.Encoder()
    first = enc.encode(values[0], t)
    rest = [enc.encode(v, t) for v in values[1:]]
    dec = gob.Decoder.from_bytes(first + b"".join(rest))
    assert [dec.decode(t) for _ in values] == [_expected(t, v) for v in values]
    # a later value carries no definition: its type id is positive
    msg = gob._Reader(rest[0])
    msg.uint()
    assert msg.sint() > 0


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_garbage_raises_gob_error_only(raw):
    try:
        gob.decode(raw, wire.RESULT)
    except (gob.GobError, EOFError):
        pass


@settings(max_examples=200)
@given(st.data())
def test_truncated_streams_raise_gob_error(data):
    full = gob.encode(_RESULT_PY, wire.RESULT)
    cut = data.draw(st.integers(1, len(full) - 1))
    with pytest.raises((gob.GobError, EOFError)):
        gob.decode(full[:cut], wire.RESULT)


def test_failed_encode_leaves_the_stream_usable():
    enc = gob.Encoder()
    t = Struct("T", [("A", INT), ("L", Slice(Struct("E", [("X", INT)])))])
    with pytest.raises(gob.GobError):
        enc.encode({"A": 1, "L": [{"X": "not an int"}]}, t)
    raw = enc.encode({"A": 2, "L": [{"X": 3}]}, t)
    assert gob.decode(raw, t) == {"A": 2, "L": [{"X": 3}]}


def test_type_mismatch_is_an_error():
    raw = gob.encode({"A": "text"}, Struct("T", [("A", STRING)]))
    with pytest.raises(gob.GobError, match="type mismatch"):
        gob.decode(raw, Struct("T", [("A", INT)]))


def test_receiver_drops_fields_it_lacks_and_zeroes_the_others():
    raw = gob.encode({"A": 1, "B": "x"}, Struct("T", [("A", INT), ("B", STRING)]))
    assert gob.decode(raw, Struct("U", [("B", STRING), ("C", Slice(INT))])) == {
        "B": "x",
        "C": [],
    }


# ------------------------------------------------------------ Go itself


@pytest.fixture(scope="session")
def gogob(tmp_path_factory) -> Path:
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    if not os.access(go, os.X_OK):
        pytest.skip("no Go toolchain (Debian package golang-go)")
    if not CNI_SOURCES.is_dir():
        pytest.skip("no CNI Go sources (Debian package golang-github-appc-cni-dev)")
    out_dir = tmp_path_factory.mktemp("gogob")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(out_dir / "gocache"),
        "GOFLAGS": "",
    }
    out = out_dir / "gogob"
    subprocess.run([go, "build", "-o", str(out), "."], cwd=GOGOB, env=env, check=True)
    return out


def go_encode(tool: Path, case: str) -> bytes:
    run = subprocess.run([tool, "encode", case], capture_output=True, text=True, check=True)
    return bytes.fromhex(run.stdout.strip())


def go_json(tool: Path, case: str):
    run = subprocess.run([tool, "json", case], capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def go_decode(tool: Path, case: str, streams: list[bytes]) -> list:
    """Go's decoding of each stream into CASE's type, as JSON (or its error)."""
    stdin = "".join(s.hex() + "\n" for s in streams)
    run = subprocess.run(
        [tool, "decode", case], input=stdin, capture_output=True, text=True, check=True
    )
    lines = run.stdout.split("\n")[:-1]  # not splitlines(): U+0085 is in strings
    assert len(lines) == len(streams)
    return [line if line.startswith("error: ") else json.loads(line) for line in lines]


NESTED = Struct("Nested", [("X", INT), ("Y", STRING)])
BASIC_T = Struct(
    "Basic",
    [
        ("B", BOOL),
        ("I", INT),
        ("I8", INT),
        ("U", UINT),
        ("U16", UINT),
        ("F", FLOAT),
        ("F32", FLOAT),
        ("S", STRING),
        ("Y", BYTES),
        ("P", Ptr(INT)),
        ("PS", Ptr(STRING)),
        ("L", Slice(INT)),
        ("LS", Slice(STRING)),
        ("A", Array(INT, 3)),
        ("M", Map(STRING, INT)),
        ("N", NESTED),
        ("NP", Ptr(NESTED)),
        ("LN", Slice(NESTED)),
        ("LP", Slice(Ptr(NESTED))),
        ("IP", BYTES),
        ("Net", wire.IPNET),
    ],
)
V4 = bytes(10) + b"\xff\xff"
BASIC_PY = {
    "B": True,
    "I": -123456789,
    "I8": -128,
    "U": (1 << 64) - 1,
    "U16": 65535,
    "F": 0.1,
    "F32": 1.5,
    "S": "héllo",
    "Y": b"\x00\x01\xff",
    "P": 42,
    "PS": "pointed",
    "L": [0, -1, 1, 1 << 40],
    "LS": ["", "a"],
    "A": [0, 7, 0],
    "M": {"k": 1},
    "N": {"X": 1, "Y": "n"},
    "NP": {"X": 0, "Y": "p"},
    "LN": [{"X": 0, "Y": ""}, {"X": 2, "Y": ""}],
    "LP": [{"X": 3, "Y": ""}],
    "IP": V4 + bytes([198, 18, 0, 1]),
    "Net": {"IP": bytes.fromhex("fd00" + "00" * 13 + "01"), "Mask": b"\xff" * 8 + bytes(8)},
}
BASIC_ZERO = {
    **gob.zero(BASIC_T),
    "P": None,
    "PS": None,
    "NP": None,
}
_RESULT_PY = {
    "CNIVersion": "1.0.0",
    "Interfaces": [
        {
            "Name": "eth0",
            "Mac": "02:00:00:00:00:01",
            "Mtu": 0,
            "Sandbox": "/var/run/netns/gbns",
            "SocketPath": "",
            "PciID": "",
        }
    ],
    "IPs": [
        # Go sent Interface: &0, which gob cannot tell from nil
        {
            "Interface": None,
            "Address": {"IP": V4 + bytes([198, 18, 0, 5]), "Mask": b"\xff\xfe\x00\x00"},
            "Gateway": V4 + bytes([198, 18, 0, 1]),
        },
        {
            "Interface": 1,
            "Address": {
                "IP": bytes.fromhex("fd00" + "00" * 13 + "05"),
                "Mask": b"\xff" * 8 + bytes(8),
            },
            "Gateway": b"",
        },
    ],
    "Routes": [
        {
            "Dst": {"IP": bytes([198, 18, 0, 0]), "Mask": b"\xff\xfe\x00\x00"},
            "GW": V4 + bytes([198, 18, 0, 1]),
            "MTU": 0,
            "AdvMSS": 0,
            "Priority": 0,
            "Table": None,
            "Scope": None,
        },
        {
            "Dst": {"IP": bytes.fromhex("fd" + "00" * 15), "Mask": b"\xff" + bytes(15)},
            "GW": b"",
            "MTU": 0,
            "AdvMSS": 0,
            "Priority": 0,
            "Table": None,
            "Scope": None,
        },
    ],
    "DNS": {
        "Nameservers": ["198.18.0.53"],
        "Domain": "gb.test",
        "Search": ["a", "b"],
        "Options": ["ndots:2"],
    },
}
CASES = {
    "basic": (BASIC_T, BASIC_PY),
    "zero": (BASIC_T, BASIC_ZERO),
    "empty": (wire.EMPTY, {}),
    "ints": (
        Slice(INT),
        [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            127,
            128,
            255,
            256,
            (1 << 63) - 1,
            -(1 << 63),
            1 << 32,
            -(1 << 32),
        ],
    ),
    "uints": (Slice(UINT), [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 56, (1 << 64) - 1]),
    "floats": (
        Slice(FLOAT),
        [0.0, 1.0, -1.0, 0.5, 17.0, 1e300, -2.5e-300, 5e-324, 1.7976931348623157e308],
    ),
    "strings": (Slice(STRING), ["", "a", "é中😀", "\x00" * 200]),
    "cmdargs": (
        wire.CMD_ARGS,
        {
            "ContainerID": "gbctr",
            "Netns": "/var/run/netns/gbns",
            "IfName": "eth0",
            "Args": "IgnoreUnknown=1;K=V",
            "Path": "/opt/cni/bin",
            "NetnsOverride": "",
            "StdinData": b'{"cniVersion":"1.0.0","name":"gbnet"}',
        },
    ),
    "result": (wire.RESULT, _RESULT_PY),
    "request": (wire.REQUEST, {"ServiceMethod": "DHCP.Allocate", "Seq": 7}),
    "response": (wire.RESPONSE, {"ServiceMethod": "DHCP.Release", "Seq": 300, "Error": "boom"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_we_decode_what_go_encodes(gogob, case):
    t, expected = CASES[case]
    assert gob.decode(go_encode(gogob, case), t) == expected


def test_untyped_decoding_of_go_streams(gogob):
    got = gob.decode(go_encode(gogob, "cmdargs"))
    assert got["StdinData"] == b'{"cniVersion":"1.0.0","name":"gbnet"}'
    assert "NetnsOverride" not in got  # 1.0's CmdArgs has no such field
    result = gob.decode(go_encode(gogob, "result"))
    assert result["IPs"][0]["Interface"] == 0  # untyped: zero, not nil
    assert "Mtu" not in result["Interfaces"][0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_go_decodes_what_we_encode(gogob, case):
    t, value = CASES[case]
    want = go_json(gogob, case)
    if case == "result":
        want["ips"][0].pop("interface")  # the lost &0, see _RESULT_PY
    if case == "zero":
        value = {**value, "M": None}  # a nil map; we decode nil as {}, Go as nil
    assert go_decode(gogob, case, [gob.encode(value, t)]) == [want]


def _messages(stream: bytes) -> list[bytes]:
    r = gob._Reader(stream)
    out = []
    while r.pos < len(stream):
        out.append(r.take(r.uint()))
    return out


def _without(t: Struct, *names: str) -> Struct:
    return Struct(t.name, [(n, ft) for n, ft in t.fields if n not in names])


_IPCONFIG = wire.IPCONFIG
_INTERFACE_10 = _without(wire.INTERFACE, "Mtu", "SocketPath", "PciID")
_ROUTE_10 = _without(wire.ROUTE, "MTU", "AdvMSS", "Priority", "Table", "Scope")
DEBIAN_TYPES = {
    "cmdargs": _without(wire.CMD_ARGS, "NetnsOverride"),
    "result": Struct(
        "Result",
        [
            ("CNIVersion", STRING),
            ("Interfaces", Slice(Ptr(_INTERFACE_10))),
            ("IPs", Slice(Ptr(_IPCONFIG))),
            ("Routes", Slice(Ptr(_ROUTE_10))),
            ("DNS", wire.DNS_T),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_go_and_we_send_the_same_value_bytes(gogob, case):
    """The same definitions (type names aside) and a byte-identical value
    message, where our type descriptions match Go's structs field for field."""
    t, value = CASES[case]
    t = DEBIAN_TYPES.get(case, t)  # the field sets of Debian's CNI 1.0
    if case == "zero":
        value = {**value, "M": None}
    ours, theirs = _messages(gob.encode(value, t)), _messages(go_encode(gogob, case))
    assert len(ours) == len(theirs)
    assert ours[-1] == theirs[-1]
    assert gob.decode(gob.encode(value, t)) == gob.decode(go_encode(gogob, case))


def test_go_rejects_a_mismatched_field(gogob):
    bad = gob.encode({"ContainerID": 5}, Struct("CmdArgs", [("ContainerID", INT)]))
    [answer] = go_decode(gogob, "cmdargs", [bad])
    assert answer == "error: gob: wrong type (string) for received field CmdArgs.ContainerID"


# net.IP's MarshalText (used by Go's JSON printing) refuses other lengths
IP_BYTES = (
    st.sampled_from([b"", bytes(4)])
    | st.binary(min_size=4, max_size=4)
    | st.binary(min_size=16, max_size=16)
)
BASIC_VALUES = st.fixed_dictionaries(
    {
        "B": st.booleans(),
        "I": INT64,
        "I8": st.integers(-128, 127),
        "U": UINT64,
        "U16": st.integers(0, 65535),
        "F": st.floats(allow_nan=False, allow_infinity=False),
        "F32": st.floats(width=32, allow_nan=False, allow_infinity=False),
        "S": st.text(max_size=10),
        "Y": st.binary(max_size=10),
        "P": st.none() | INT64,
        "PS": st.none() | st.text(max_size=5),
        "L": st.lists(INT64, max_size=3),
        "LS": st.lists(st.text(max_size=3), max_size=3),
        "A": st.lists(INT64, min_size=3, max_size=3),
        "M": st.dictionaries(st.text(max_size=3), INT64, max_size=3),
        "N": st.fixed_dictionaries({"X": INT64, "Y": st.text(max_size=3)}),
        "NP": st.none() | st.fixed_dictionaries({"X": INT64, "Y": st.text(max_size=3)}),
        "LN": st.lists(st.fixed_dictionaries({"X": INT64, "Y": st.just("")}), max_size=2),
        "LP": st.lists(st.fixed_dictionaries({"X": INT64, "Y": st.just("y")}), max_size=2),
        "IP": IP_BYTES,
        "Net": st.fixed_dictionaries({"IP": IP_BYTES, "Mask": st.binary(max_size=16)}),
    }
)


def _go_json_of_basic(v: dict) -> dict:
    """Go's encoding/json of the Basic our decoder read (nil slices are null,
    []byte is base64, net.IP is its text, a nil pointer is null)."""

    def b64(b: bytes):
        return base64.b64encode(b).decode() if b else None

    return {
        **v,
        "Y": b64(v["Y"]),
        "L": v["L"] or None,
        "LS": v["LS"] or None,
        "LN": v["LN"] or None,
        "LP": v["LP"] or None,
        "IP": wire.ip_text(v["IP"]) or "",
        "Net": {"IP": wire.ip_text(v["Net"]["IP"]) or "", "Mask": b64(v["Net"]["Mask"])},
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(BASIC_VALUES, min_size=1, max_size=8))
def test_go_decodes_random_values_like_we_do(gogob, values):
    """Go decodes our streams of random values to what our decoder reads."""
    streams = [gob.encode(v, BASIC_T) for v in values]
    answers = go_decode(gogob, "basic", streams)
    for stream, answer in zip(streams, answers):
        ours = gob.decode(stream, BASIC_T)
        assert isinstance(answer, dict), answer
        # Go prints a float32 in its shortest float32 form: compare as float32
        assert struct.pack("<f", answer.pop("F32")) == struct.pack("<f", ours.pop("F32"))
        # Go prints 5e16 as 50497199470292380: compare as float64
        assert float(answer.pop("F")) == ours.pop("F")
        assert answer == _go_json_of_basic(ours)
