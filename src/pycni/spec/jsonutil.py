"""Go-compatible JSON and text helpers.

CNI documents are produced and consumed by Go programs (libcni, the reference
plugins), so pycni reads and writes them the way Go's encoding/json does:
struct fields match keys case-insensitively, `null` means "not set", strings
escape <, > and & and keep other non-ASCII text, and results are indented
with four spaces.  IP addresses use Go's net.IP text forms.

`json` and `_socket` are imported inside the functions that need them so
that importing this module costs nothing.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from _json import make_scanner

# Go escapes these even though JSON does not require it (HTML safety and
# JavaScript line terminators); matching it keeps output byte-identical.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def fold_key(key: str) -> str:
    """Case folding as Go's JSON field matching does it for ASCII field names.

    Go folds the Kelvin sign to k (lower() does too) and the long s to s
    (lower() does not), so both can spell an ASCII key.
    """
    return key.lower().replace("\u017f", "s")


def ci_get(d: dict, key: str, default: object = None) -> object:
    """`d[key]` matched like a Go struct field: the exact key, else the first
    key equal to it ignoring case.

    Go decodes `{"Type": "bridge"}` into a field tagged "type", so pycni must
    read configs and results the same way or it would disagree with Go
    plugins about what a document says.
    """
    if key in d:
        return d[key]
    folded = fold_key(key)
    for k, value in d.items():
        if fold_key(k) == folded:
            return value
    return default


def go_dumps(obj: object, indent: bool = True) -> str:
    """JSON text as Go's json.MarshalIndent(obj, "", "    ") (or json.Marshal
    when `indent` is false) prints it, without a trailing newline.

    Built on the C `_json` module: importing the `json` package pulls in `re`
    and `enum`, about 7 ms of every plugin exec.
    """
    from _json import encode_basestring

    parts: list[str] = []
    _encode(obj, parts, "\n" if indent else None, encode_basestring)
    text = "".join(parts)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            # Lone surrogates (from "\udXXX" escapes) cannot be written as
            # UTF-8; Go replaces them with U+FFFD when it decodes.
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    for char, escape in _GO_ESCAPES:
        if char in text:
            text = text.replace(char, escape)
    return text


def _encode(root: object, out: list[str], newline: str | None, quote) -> None:
    """json.dumps(ensure_ascii=False, allow_nan=False, indent=4 or compact).

    Iterative, with a stack of pending work instead of recursion, so that
    any depth Go accepts (10000) encodes: each item is (is_text, value,
    newline of the value's level).
    """
    todo: list = [(False, root, newline)]
    while todo:
        is_text, obj, nl = todo.pop()
        if is_text or isinstance(obj, str):
            out.append(obj if is_text else quote(obj))
        elif obj is None:
            out.append("null")
        elif obj is True:
            out.append("true")
        elif obj is False:
            out.append("false")
        elif isinstance(obj, int):
            out.append(int.__repr__(obj))
        elif isinstance(obj, float):
            if obj != obj or obj in (float("inf"), float("-inf")):
                raise ValueError("Out of range float values are not JSON compliant")
            out.append(float.__repr__(obj))
        elif isinstance(obj, (dict, list, tuple)):
            if not obj:
                out.append("{}" if isinstance(obj, dict) else "[]")
                continue
            inner = None if nl is None else nl + "    "
            lead = "" if inner is None else inner
            work: list = []
            if isinstance(obj, dict):
                sep = ":" if inner is None else ": "
                for i, (key, value) in enumerate(obj.items()):
                    if not isinstance(key, str):
                        if key is None or isinstance(key, (bool, int, float)):
                            key = _key_text(key)
                        else:
                            raise TypeError(
                                "keys must be str, int, float, bool or None, "
                                f"not {type(key).__name__}"
                            )
                    work.append((True, ("," if i else "") + lead + quote(key) + sep, None))
                    work.append((False, value, inner))
                opening, closing = "{", "}"
            else:
                for i, value in enumerate(obj):
                    work.append((True, ("," if i else "") + lead, None))
                    work.append((False, value, inner))
                opening, closing = "[", "]"
            work.append((True, ("" if nl is None else nl) + closing, None))
            out.append(opening)
            todo.extend(reversed(work))
        else:
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _key_text(key: object) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return int.__repr__(key) if isinstance(key, int) else float.__repr__(key)


def _reject_constant(name: str) -> object:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


class _ScanContext:
    """What `_json.make_scanner` reads from json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)


class Pairs(list):
    """A JSON object as `go_loads(..., pairs=True)` returns it: its (key,
    value) pairs in document order, repeated keys kept (Go's decoders can see
    them; a dict cannot)."""

    __slots__ = ()


class _PairsContext(_ScanContext):
    object_pairs_hook = Pairs  # type: ignore[assignment]


_scanner: make_scanner | None = None
_pairs_scanner: make_scanner | None = None
_WHITESPACE = " \t\n\r"


def go_loads(data: bytes | str, pairs: bool = False) -> object:
    """Parse JSON as strictly as Go: no NaN/Infinity, no BOM; invalid UTF-8 is
    replaced by U+FFFD rather than rejected.

    Raises ValueError with the json package's wording ("Expecting value:
    line 1 column 1 (char 0)"), and Go's "exceeded max depth" past 10000
    levels of nesting. With `pairs`, every object is a `Pairs` list instead
    of a dict, so that repeated keys can be found.
    """
    global _scanner, _pairs_scanner
    if _scanner is None:
        from _json import make_scanner

        # typeshed wants a make_scanner as the context; any object with its
        # attributes (json.JSONDecoder, _ScanContext) is what the C code reads.
        _scanner = make_scanner(_ScanContext())  # type: ignore[arg-type]
    scanner = _scanner
    if pairs:
        if _pairs_scanner is None:
            from _json import make_scanner

            _pairs_scanner = make_scanner(_PairsContext())  # type: ignore[arg-type]
        scanner = _pairs_scanner
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8", "replace")
    start = len(data) - len(data.lstrip(_WHITESPACE))
    try:
        obj, end = scanner(data, start)
    except StopIteration as err:
        raise ValueError(_position("Expecting value", data, err.value))
    except RecursionError:
        obj, end = _scan_deep(data, start, Pairs if pairs else dict)
    except SystemError:
        # The C scanner builds its error from json.decoder only when that is
        # already imported; on this (rare) path, let the json package say it.
        import json

        return json.loads(
            data, parse_constant=_reject_constant, object_pairs_hook=Pairs if pairs else None
        )
    if data[end:].strip(_WHITESPACE):
        raise ValueError(
            _position(
                "Extra data", data, end + len(data[end:]) - len(data[end:].lstrip(_WHITESPACE))
            )
        )
    return obj


# Go's encoding/json refuses documents nested deeper than this.
MAX_DEPTH = 10000


def _scan_deep(s: str, pos: int, new_object: type = dict) -> tuple[object, int]:
    """Parse the JSON value at `pos` without recursion, for documents nested
    deeper than the C scanner goes (about 1000 levels); up to Go's limit.
    Objects are `new_object()`: dicts, or `Pairs`.

    Scalars (strings, numbers, literals) are still read by the C scanner.
    """
    from _json import scanstring

    assert _scanner is not None  # go_loads made it before calling this
    n = len(s)
    stack: list[list] = []  # open containers: [list or dict, key pending in a dict]

    def skip(p: int) -> int:
        while p < n and s[p] in _WHITESPACE:
            p += 1
        return p

    def key_at(p: int) -> tuple[str, int]:
        if s[p : p + 1] != '"':
            raise ValueError(_position("Expecting property name enclosed in double quotes", s, p))
        key, p = scanstring(s, p + 1, True)
        p = skip(p)
        if s[p : p + 1] != ":":
            raise ValueError(_position("Expecting ':' delimiter", s, p))
        return key, skip(p + 1)

    while True:
        pos = skip(pos)
        char = s[pos : pos + 1]
        if char in ("[", "{"):
            if len(stack) >= MAX_DEPTH:
                raise ValueError("exceeded max depth")
            pos = skip(pos + 1)
            empty = "]" if char == "[" else "}"
            if s[pos : pos + 1] == empty:
                value: object = [] if char == "[" else new_object()
                pos += 1
            elif char == "[":
                stack.append([[], None])
                continue
            else:
                key, pos = key_at(pos)
                stack.append([new_object(), key])
                continue
        else:
            try:
                value, pos = _scanner(s, pos)
            except StopIteration as err:
                raise ValueError(_position("Expecting value", s, err.value))
        while True:  # hand the value to its container; close what ends here
            if not stack:
                return value, pos
            frame = stack[-1]
            container = frame[0]
            if type(container) is list:
                container.append(value)
            elif type(container) is dict:
                container[frame[1]] = value
            else:
                container.append((frame[1], value))
            pos = skip(pos)
            char = s[pos : pos + 1]
            if char == ",":
                pos = skip(pos + 1)
                if type(container) is not list:
                    frame[1], pos = key_at(pos)
                break
            if char == ("]" if type(container) is list else "}"):
                stack.pop()
                value = container
                pos += 1
                continue
            raise ValueError(_position("Expecting ',' delimiter", s, pos))


def _position(msg: str, text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return f"{msg}: line {line} column {col} (char {pos})"


def go_quote(s: str) -> str:
    """Go's strconv.Quote (the %q verb): printable text kept, the rest escaped."""
    out = ['"']
    for c in s:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        elif c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        else:
            code = ord(c)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_type(value: object) -> str:
    """Go's %T of a value decoded into interface{} (numbers are float64)."""
    if value is None:
        return "<nil>"
    return _GO_TYPES.get(type(value), type(value).__name__)


_GO_TYPES = {
    bool: "bool",
    int: "float64",
    float: "float64",
    str: "string",
    list: "[]interface {}",
    dict: "map[string]interface {}",
}


def json_kind(value: object) -> str:
    """How Go's UnmarshalTypeError names a JSON value ("number 1.5" for a
    number that does not fit an integer)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return f"number {value!r}"
    return _JSON_KINDS.get(type(value), "value")


_JSON_KINDS = {int: "number", str: "string", list: "array", dict: "object"}


def _typed(d: dict, key: str, default: object, ok: type, go_name: str) -> object:
    """`d[key]` (Go key matching) if it has the type, `default` if absent or null."""
    value = ci_get(d, key)
    if value is None:
        return default
    if not isinstance(value, ok) or (ok is int and isinstance(value, bool)):
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG,
            f'"{key}": cannot unmarshal {json_kind(value)} into Go value of type {go_name}',
        )
    return value


def get_bool(d: dict, key: str, default: bool = False) -> bool:
    """A boolean config key; the string "true" is an error, as in Go."""
    return _typed(d, key, default, bool, "bool")  # type: ignore[return-value]


def get_int(d: dict, key: str, default: int = 0) -> int:
    """An integer config key; 1.5 or 1e3 are errors, as in Go."""
    return _typed(d, key, default, int, "int")  # type: ignore[return-value]


def get_str(d: dict, key: str, default: str = "") -> str:
    """A string config key; a number is an error, as in Go."""
    return _typed(d, key, default, str, "string")  # type: ignore[return-value]


def get_list(d: dict, key: str, default: list | None = None) -> list | None:
    """A list config key (items unchecked: their meaning is the caller's)."""
    return _typed(d, key, default, list, "[]interface {}")  # type: ignore[return-value]


def get_dict(d: dict, key: str, default: dict | None = None) -> dict | None:
    """An object config key, such as `ipam` or `runtimeConfig`."""
    return _typed(d, key, default, dict, "map[string]interface {}")  # type: ignore[return-value]
