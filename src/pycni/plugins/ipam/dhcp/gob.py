"""Go's encoding/gob, as far as net/rpc with Go's dhcp plugin and daemon needs.

Why our own: the reference dhcp plugin and daemon talk gob over net/rpc, and
being a drop-in means either side can be Go.  gob is self-describing: a
stream carries type definitions (wireType values under negative ids) before
the first value of each type, and the receiver matches struct fields by name,
drops fields it lacks and leaves absent ones at their zero value.  Python
values carry no Go type, so encoding takes a `GoType` describing the value
(built from BOOL/INT/.../Struct/Slice/...), and decoding may take one to
shape the result like Go's typed decoding (zero values, None for nil
pointers); without one it decodes by the wire types.

Layout on the wire (Go's encoding/gob doc.go):
- uint: < 128 in one byte, else a byte holding -n (n = 1..8) and n
  big-endian bytes; int: zigzag-like (i << 1, or ^i << 1 | 1) as a uint;
  float: the float64 bits byte-reversed, as a uint; string/[]byte: length
  and bytes; bool: uint 0/1.
- message: uint byte count, then int type id (negative: a definition
  follows), then the value; a struct is (field-number delta, value) pairs
  ended by a 0 delta, zero fields omitted; a top-level non-struct value is
  prefixed by a 0 delta; slice/array/map: count then elements (zero elements
  included); pointers are flattened (nil is "absent").
- GobEncoder/BinaryMarshaler values are opaque bytes.  Go's gob ignores
  TextMarshaler (golang.org/issue/6760), so net.IP is a plain []byte.
- A zero value is never sent in a struct, so a pointer to one (a Go *int
  holding 0) arrives nil: gob cannot carry that difference.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable
    from typing import Any


class GobError(ValueError):
    """A gob stream or value that cannot be encoded/decoded (Go's "gob: ...")."""


# ---------------------------------------------------------------- go types


class GoType:
    """The Go type of a value; ids are assigned per encoder stream."""

    kind = ""
    name = ""

    def __repr__(self) -> str:
        return f"<GoType {self.kind} {self.name}>"


class _Basic(GoType):
    def __init__(self, kind: str, tid: int) -> None:
        self.kind = kind
        self.name = kind
        self.tid = tid


BOOL = _Basic("bool", 1)
INT = _Basic("int", 2)
UINT = _Basic("uint", 3)
FLOAT = _Basic("float", 4)
BYTES = _Basic("bytes", 5)
STRING = _Basic("string", 6)
COMPLEX = _Basic("complex", 7)
_BASIC = {t.tid: t for t in (BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX)}
_INTERFACE_ID = 8


class Struct(GoType):
    """A struct; `fields` are (exported name, type) in declaration order."""

    kind = "struct"

    def __init__(self, name: str, fields: Iterable[tuple[str, GoType]]) -> None:
        self.name = name
        self.fields = list(fields)
        self.by_name = dict(self.fields)


class Slice(GoType):
    kind = "slice"

    def __init__(self, elem: GoType, name: str = "") -> None:
        self.elem = elem
        self.name = name or "[]" + elem.name


class Array(GoType):
    kind = "array"

    def __init__(self, elem: GoType, length: int, name: str = "") -> None:
        self.elem = elem
        self.length = length
        self.name = name or f"[{length}]{elem.name}"


class Map(GoType):
    kind = "map"

    def __init__(self, key: GoType, elem: GoType, name: str = "") -> None:
        self.key = key
        self.elem = elem
        self.name = name or f"map[{key.name}]{elem.name}"


class Ptr(GoType):
    """A pointer: the same bytes as its element, but nil (None) is absent and
    decodes to None where Go would leave the pointer nil."""

    kind = "ptr"

    def __init__(self, elem: GoType) -> None:
        self.elem = elem
        self.name = "*" + elem.name


# ------------------------------------------------------------ primitives


def put_uint(out: bytearray, x: int) -> None:
    if x < 0 or x >> 64:
        raise GobError(f"gob: uint {x} out of range")
    if x < 0x80:
        out.append(x)
        return
    raw = x.to_bytes((x.bit_length() + 7) // 8, "big")
    out.append(256 - len(raw))
    out += raw


def put_int(out: bytearray, i: int) -> None:
    if not -(1 << 63) <= i < 1 << 63:
        raise GobError(f"gob: int {i} out of range")
    put_uint(out, (~i << 1) | 1 if i < 0 else i << 1)


def float_bits(f: float) -> int:
    """The uint gob sends for a float64: its bits byte-reversed, so that
    small exponents compress."""
    return int.from_bytes(struct.pack("<d", f), "big")


def float_from_bits(x: int) -> float:
    return float(struct.unpack("<d", x.to_bytes(8, "big"))[0])


def _int_from_uint(x: int) -> int:
    return ~(x >> 1) if x & 1 else x >> 1


class _Reader:
    """A cursor over one message."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise GobError("gob: decoding past the end of the message")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self) -> int:
        b = self.take(1)[0]
        if b < 0x80:
            return b
        n = 256 - b
        if n > 8:
            raise GobError(f"gob: invalid uint data length {n}")
        return int.from_bytes(self.take(n), "big")

    def sint(self) -> int:
        return _int_from_uint(self.uint())

    def blob(self) -> bytes:
        return self.take(self.uint())


# ------------------------------------------------------- wire definitions


class _Wire:
    """A decoded wireType: what the sender's type looks like."""

    __slots__ = ("elem", "fields", "key", "kind", "length", "name")

    def __init__(
        self,
        kind: str,
        name: str = "",
        elem: int = 0,
        key: int = 0,
        length: int = 0,
        fields: list[tuple[str, int]] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.elem = elem
        self.key = key
        self.length = length
        self.fields = fields or []


# The bootstrap types that describe types (Go's type.go, ids 16-23).
_COMMON = Struct("CommonType", [("Name", STRING), ("Id", INT)])
_ARRAY_T = Struct("arrayType", [("CommonType", _COMMON), ("Elem", INT), ("Len", INT)])
_SLICE_T = Struct("sliceType", [("CommonType", _COMMON), ("Elem", INT)])
_FIELD_T = Struct("fieldType", [("Name", STRING), ("Id", INT)])
_STRUCT_T = Struct("structType", [("CommonType", _COMMON), ("Field", Slice(_FIELD_T))])
_MAP_T = Struct("mapType", [("CommonType", _COMMON), ("Key", INT), ("Elem", INT)])
_ENCODER_T = Struct("gobEncoderType", [("CommonType", _COMMON)])
_WIRE_KINDS = ("ArrayT", "SliceT", "StructT", "MapT", "GobEncoderT", "BinaryMarshalerT")
_WIRE_T = Struct(
    "wireType",
    [
        ("ArrayT", Ptr(_ARRAY_T)),
        ("SliceT", Ptr(_SLICE_T)),
        ("StructT", Ptr(_STRUCT_T)),
        ("MapT", Ptr(_MAP_T)),
        ("GobEncoderT", Ptr(_ENCODER_T)),
        ("BinaryMarshalerT", Ptr(_ENCODER_T)),
        ("TextMarshalerT", Ptr(_ENCODER_T)),
    ],
)
# Their wire shapes, known to every decoder (the ids of the type-describing
# types never travel; an internal id stands for gobEncoderType and []fieldType).
_GOBENC_ID = -24
_BOOT_WIRES = {
    16: _Wire(
        "struct",
        "wireType",
        fields=list(zip([f for f, _ in _WIRE_T.fields], (17, 19, 20, 23) + (_GOBENC_ID,) * 3)),
    ),
    17: _Wire("struct", "arrayType", fields=[("CommonType", 18), ("Elem", 2), ("Len", 2)]),
    18: _Wire("struct", "CommonType", fields=[("Name", 6), ("Id", 2)]),
    19: _Wire("struct", "sliceType", fields=[("CommonType", 18), ("Elem", 2)]),
    20: _Wire("struct", "structType", fields=[("CommonType", 18), ("Field", 22)]),
    21: _Wire("struct", "fieldType", fields=[("Name", 6), ("Id", 2)]),
    22: _Wire("slice", "[]*gob.fieldType", elem=21),
    23: _Wire("struct", "mapType", fields=[("CommonType", 18), ("Key", 2), ("Elem", 2)]),
    _GOBENC_ID: _Wire("struct", "gobEncoderType", fields=[("CommonType", 18)]),
}
_FIRST_USER_ID = 65


def zero(t: GoType) -> Any:
    """The Python form of Go's zero value of t."""
    if isinstance(t, _Basic):
        return {"bool": False, "float": 0.0, "complex": 0j, "bytes": b"", "string": ""}.get(
            t.kind, 0
        )
    if isinstance(t, Struct):
        return {name: zero(ft) for name, ft in t.fields}
    if isinstance(t, Array):
        return [zero(t.elem) for _ in range(t.length)]
    if isinstance(t, Slice):
        return []
    if isinstance(t, Map):
        return {}
    return None  # Ptr


def _is_zero(t: GoType, v: Any) -> bool:
    """Whether Go would omit this struct field (nested structs are always sent)."""
    if v is None:
        return True
    t = _deref(t)  # a pointer's target is checked like a value (Go's encIndirect)
    if isinstance(t, Map):
        return False  # Go sends empty non-nil maps; None is nil
    if isinstance(t, Struct):
        return False
    return not v


# ----------------------------------------------------------------- encoder


class Encoder:
    """One direction of a gob stream: remembers which types it has defined."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}  # _key(GoType) -> type id
        self._keep: list[GoType] = []  # keeps id() keys alive
        self._sent: set[int] = set()
        self._next = _FIRST_USER_ID

    def encode(self, value: Any, gotype: GoType) -> bytes:
        """The messages (new type definitions, then the value) for one Encode.

        On GobError nothing counts as sent, so the stream stays usable."""
        saved = (dict(self._ids), len(self._keep), set(self._sent), self._next)
        try:
            return self._encode(value, gotype)
        except GobError:
            self._ids, self._sent, self._next = saved[0], saved[2], saved[3]
            del self._keep[saved[1] :]
            raise

    def _encode(self, value: Any, gotype: GoType) -> bytes:
        out = bytearray()
        self._define(gotype, out)
        body = bytearray()
        t = _deref(gotype)
        put_int(body, self._id(t))
        if isinstance(t, Struct):
            self._struct(body, t, value)
        else:
            put_uint(body, 0)  # singleton: a field delta of 0
            self._value(body, t, value)
        put_uint(out, len(body))
        out += body
        return bytes(out)

    def _id(self, t: GoType) -> int:
        t = _deref(t)
        if isinstance(t, _Basic):
            return t.tid
        key: tuple
        # Go's type identity: a named struct is itself; unnamed composites
        # ([]string in three fields) are one type, defined once.
        if isinstance(t, Struct):
            key = ("struct", id(t))
        elif isinstance(t, Array):
            key = ("array", t.name, self._id(t.elem), t.length)
        elif isinstance(t, Slice):
            key = ("slice", t.name, self._id(t.elem))
        elif isinstance(t, Map):
            key = ("map", t.name, self._id(t.key), self._id(t.elem))
        else:
            raise GobError(f"gob: cannot encode type {t!r}")
        tid = self._ids.get(key)
        if tid is None:
            tid = self._ids[key] = self._next
            self._keep.append(t)
            self._next += 1
        return tid

    def _define(self, t: GoType, out: bytearray) -> None:
        """Send t's definition, then its components' (Go's order)."""
        t = _deref(t)
        if isinstance(t, _Basic):
            return
        tid = self._id(t)
        if tid in self._sent:
            return
        self._sent.add(tid)
        common: dict[str, Any] = {"Name": t.name, "Id": tid}
        inner: list[GoType] = []
        wire: dict[str, Any]
        if isinstance(t, Struct):
            fields = [{"Name": n, "Id": self._id(ft)} for n, ft in t.fields]
            wire = {"StructT": {"CommonType": common, "Field": fields}}
            inner = [ft for _, ft in t.fields]
        elif isinstance(t, Array):
            wire = {"ArrayT": {"CommonType": common, "Elem": self._id(t.elem), "Len": t.length}}
            inner = [t.elem]
        elif isinstance(t, Slice):
            wire = {"SliceT": {"CommonType": common, "Elem": self._id(t.elem)}}
            inner = [t.elem]
        elif isinstance(t, Map):
            key, elem = self._id(t.key), self._id(t.elem)
            wire = {"MapT": {"CommonType": common, "Key": key, "Elem": elem}}
            inner = [t.key, t.elem]
        else:
            raise GobError(f"gob: cannot encode type {t!r}")
        msg = bytearray()
        put_int(msg, -tid)
        self._struct(msg, _WIRE_T, wire)
        put_uint(out, len(msg))
        out += msg
        for it in inner:
            self._define(it, out)

    def _struct(self, out: bytearray, t: Struct, value: Any) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise GobError(f"gob: {t.name} value must be a dict, not {type(value).__name__}")
        last = -1
        for num, (name, ft) in enumerate(t.fields):
            v = value.get(name)
            if _is_zero(ft, v):
                continue
            put_uint(out, num - last)
            last = num
            self._value(out, _deref(ft), v)
        out.append(0)

    def _value(self, out: bytearray, t: GoType, v: Any) -> None:
        t = _deref(t)
        if v is None and not isinstance(t, (Struct, Slice, Map)):
            raise GobError(f"gob: nil value of type {t.name}")
        try:
            if t is BOOL:
                put_uint(out, 1 if v else 0)
            elif t is INT:
                put_int(out, _check_int(v))
            elif t is UINT:
                put_uint(out, _check_int(v))
            elif t is FLOAT:
                put_uint(out, float_bits(float(v)))
            elif t is COMPLEX:
                c = complex(v)
                put_uint(out, float_bits(c.real))
                put_uint(out, float_bits(c.imag))
            elif t is BYTES:
                raw = bytes(v)
                put_uint(out, len(raw))
                out += raw
            elif t is STRING:
                if not isinstance(v, str):
                    raise GobError(f"gob: string value must be str, not {type(v).__name__}")
                raw = v.encode("utf-8", "surrogateescape")
                put_uint(out, len(raw))
                out += raw
            elif isinstance(t, Struct):
                self._struct(out, t, v)
            elif isinstance(t, Map):
                items = list((v or {}).items())
                put_uint(out, len(items))
                for key, val in items:
                    self._value(out, t.key, key)
                    self._value(out, t.elem, val)
            elif isinstance(t, (Slice, Array)):
                seq = list(v or ())
                if isinstance(t, Array) and len(seq) != t.length:
                    raise GobError(f"gob: array {t.name} needs {t.length} elements, got {len(seq)}")
                put_uint(out, len(seq))
                for item in seq:
                    if item is None and not isinstance(_deref(t.elem), (Struct, Slice, Map)):
                        raise GobError("gob: encodeArray: nil element")
                    self._value(out, t.elem, item)
            else:
                raise GobError(f"gob: cannot encode type {t!r}")
        except (TypeError, UnicodeError, OverflowError) as exc:
            raise GobError(f"gob: bad {t.name} value {v!r}: {exc}") from None


def _check_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise GobError(f"gob: integer value expected, not {v!r}")
    return v


def _deref(t: GoType) -> GoType:
    while isinstance(t, Ptr):
        t = t.elem
    return t


# ----------------------------------------------------------------- decoder


class Decoder:
    """The other direction: reads messages with `read(n)` (exactly n bytes,
    EOFError at the end of the stream) and keeps the sender's definitions."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._wires: dict[int, _Wire] = dict(_BOOT_WIRES)

    @classmethod
    def from_bytes(cls, data: bytes) -> Decoder:
        reader = _Reader(data)

        def read(n: int) -> bytes:
            if reader.pos >= len(data):
                raise EOFError("end of gob stream")
            if reader.pos + n > len(data):
                raise GobError("gob: unexpected end of stream")
            return reader.take(n)

        return cls(read)

    def _stream_uint(self) -> int:
        b = self._read(1)[0]
        if b < 0x80:
            return b
        n = 256 - b
        if n > 8:
            raise GobError(f"gob: invalid message length prefix {b:#x}")
        return int.from_bytes(self._read(n), "big")

    def decode(self, into: GoType | None = None) -> Any:
        """The next value of the stream (definitions before it are absorbed).

        With `into`, the value is shaped like Go's decoding into that type;
        without, structs become dicts of every wire field (absent ones at their
        zero value) and GobEncoder/BinaryMarshaler values raw bytes."""
        while True:
            n = self._stream_uint()
            if n > 1 << 26:
                raise GobError(f"gob: message too large ({n} bytes)")
            msg = _Reader(self._read(n))
            tid = msg.sint()
            if tid < 0:
                w = self._value(msg, 16, _WIRE_T)
                self._wires[-tid] = _wire_from(w, -tid)
                _done(msg)
                continue
            wire = self._wires.get(tid)
            if wire is not None and wire.kind == "struct":
                value = self._value(msg, tid, into)
            else:
                if msg.uint() != 0:
                    raise GobError("gob: decode: corrupted data: non-zero delta for singleton")
                value = self._value(msg, tid, into)
            _done(msg)
            return value

    def _value(self, r: _Reader, tid: int, into: GoType | None) -> Any:
        if into is not None:
            into = _deref(into)
        basic = _BASIC.get(tid)
        if basic is not None:
            if into is not None and into is not basic:
                raise _mismatch(basic.name, into)
            return _basic(r, basic)
        if tid == _INTERFACE_ID:
            name = r.blob()
            if name:
                raise GobError("gob: interface values are not supported")
            return None
        w = self._wires.get(tid)
        if w is None:
            raise GobError(f"gob: unknown type id {tid}")
        if w.kind == "struct":
            return self._struct(r, w, into)
        if w.kind in ("slice", "array"):
            n = r.uint()
            if w.kind == "array" and n != w.length:
                raise GobError(f"gob: array length {n} does not match type length {w.length}")
            elem = None
            if into is not None:
                if into.kind != w.kind:
                    raise _mismatch(w.name, into)
                elem = into.elem  # type: ignore[attr-defined]
            if n > len(r.data) - r.pos:
                raise GobError(f"gob: {w.kind} of {n} elements in a shorter message")
            return [self._value(r, w.elem, elem) for _ in range(n)]
        if w.kind == "map":
            n = r.uint()
            key_t = elem_t = None
            if into is not None:
                if not isinstance(into, Map):
                    raise _mismatch(w.name, into)
                key_t, elem_t = into.key, into.elem
            out = {}
            for _ in range(n):
                k = self._value(r, w.key, key_t)
                try:
                    out[k] = self._value(r, w.elem, elem_t)
                except TypeError:
                    raise GobError(f"gob: map key {k!r} is not hashable here") from None
            return out
        raw = r.blob()  # GobEncoder / BinaryMarshaler / TextMarshaler: opaque
        if into is not None:
            raise _mismatch(w.name, into)
        return raw

    def _struct(self, r: _Reader, w: _Wire, into: GoType | None) -> dict:
        if into is not None and not isinstance(into, Struct):
            raise _mismatch(w.name, into)
        out: dict = {}
        num = -1
        while True:
            delta = r.uint()
            if delta == 0:
                break
            num += delta
            if num >= len(w.fields):
                raise GobError(f"gob: field number {num} out of range for {w.name}")
            name, ftid = w.fields[num]
            if into is None:
                out[name] = self._value(r, ftid, None)
            elif name in into.by_name:
                out[name] = self._value(r, ftid, into.by_name[name])
            else:
                self._value(r, ftid, None)  # a field the receiver lacks: dropped
        # every field, in declaration order; absent ones at their zero value
        if into is None:
            return {n: out[n] if n in out else self._zero_wire(t) for n, t in w.fields}
        return {n: out[n] if n in out else zero(t) for n, t in into.fields}

    def _zero_wire(self, tid: int, depth: int = 0) -> Any:
        basic = _BASIC.get(tid)
        if basic is not None:
            return zero(basic)
        w = self._wires.get(tid)
        if w is None or depth > 32:
            return None
        if w.kind == "struct":
            return {n: self._zero_wire(t, depth + 1) for n, t in w.fields}
        if w.kind == "slice":
            return []
        if w.kind == "array":
            return [self._zero_wire(w.elem, depth + 1) for _ in range(w.length)]
        if w.kind == "map":
            return {}
        return b""


def _basic(r: _Reader, t: _Basic) -> Any:
    if t is BOOL:
        return r.uint() != 0
    if t is INT:
        return r.sint()
    if t is UINT:
        return r.uint()
    if t is FLOAT:
        return float_from_bits(r.uint())
    if t is COMPLEX:
        re = float_from_bits(r.uint())
        return complex(re, float_from_bits(r.uint()))
    raw = r.blob()
    return raw.decode("utf-8", "surrogateescape") if t is STRING else raw


def _wire_from(w: dict, tid: int) -> _Wire:
    """A _Wire from a decoded wireType (exactly one member is set)."""
    if w.get("StructT") is not None:
        st = w["StructT"]
        fields = [(f["Name"], f["Id"]) for f in st["Field"]]
        return _Wire("struct", st["CommonType"]["Name"], fields=fields)
    if w.get("SliceT") is not None:
        st = w["SliceT"]
        return _Wire("slice", st["CommonType"]["Name"], elem=st["Elem"])
    if w.get("ArrayT") is not None:
        st = w["ArrayT"]
        return _Wire("array", st["CommonType"]["Name"], elem=st["Elem"], length=st["Len"])
    if w.get("MapT") is not None:
        st = w["MapT"]
        return _Wire("map", st["CommonType"]["Name"], key=st["Key"], elem=st["Elem"])
    for kind in (*_WIRE_KINDS[4:], "TextMarshalerT"):
        if w.get(kind) is not None:
            return _Wire(kind, w[kind]["CommonType"]["Name"])
    raise GobError(f"gob: type definition {tid} describes no type")


def _mismatch(wire_name: str, into: GoType) -> GobError:
    return GobError(f"gob: type mismatch: wire type {wire_name} into {into.name}")


def _done(r: _Reader) -> None:
    if r.pos != len(r.data):
        raise GobError(f"gob: {len(r.data) - r.pos} extra bytes after the value")


def encode(value: Any, gotype: GoType) -> bytes:
    """One value as a fresh stream (its type definitions included)."""
    return Encoder().encode(value, gotype)


def decode(data: bytes, into: GoType | None = None) -> Any:
    """The single value of a fresh stream."""
    dec = Decoder.from_bytes(data)
    value = dec.decode(into)
    try:
        dec._stream_uint()
    except EOFError:
        return value
    raise GobError("gob: data after the value")
