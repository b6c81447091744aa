"""CNI_ARGS parsing: Go's types.LoadArgs for plugins, cnitool's rule for runtimes.

A plugin declares the keys it understands and their kinds; every other key
is an error unless `IgnoreUnknown` is true somewhere in the string, which
runtimes such as Kubernetes always send because they pass the same CNI_ARGS
to every plugin of a chain.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INVALID_ENVIRONMENT_VARIABLES, CNIError
from pycni.spec.ipnet import go_ip, parse_mac
from pycni.spec.jsonutil import go_quote
from pycni.spec.version import go_quote_list

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

_VAR = "CNI_ARGS"
_IGNORE_UNKNOWN = "IgnoreUnknown"


def _error(msg: str) -> CNIError:
    return CNIError(ERR_INVALID_ENVIRONMENT_VARIABLES, msg, _VAR)


def _parse_bool(value: str) -> bool:
    """Go's UnmarshallableBool: 1/true/0/false in any case."""
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError(f"boolean unmarshal error: invalid input {lowered}")


def _parse_ip(value: str) -> str | None:
    return go_ip(value)[0] if value else None


def _parse_mac_arg(value: str) -> str | None:
    return parse_mac(value) if value else None


# Converters per field kind.  An empty IP or MAC gives None (the key is
# dropped): Go's net.IP text unmarshaler and the plugins reading a MAC treat
# an empty value as not given.
_CONVERTERS: dict[str, Callable[[str], object]] = {
    "str": str,
    "bool": _parse_bool,
    "ip": _parse_ip,
    "mac": _parse_mac_arg,
}


def load_args(cni_args: str, fields: dict[str, str]) -> dict[str, object]:
    """Parse "K1=V1;K2=V2" into the declared keys (Go's types.LoadArgs).

    `fields` maps each key, matched exactly, to "str", "bool", "ip" (checked
    and canonicalised) or "mac".  `IgnoreUnknown` is always known (a bool).
    Raises CNIError(4, ..., "CNI_ARGS") with Go's messages.
    """
    out: dict[str, object] = {}
    if not cni_args:
        return out
    unknown: list[str] = []
    for pair in cni_args.split(";"):
        kv = pair.split("=")
        if len(kv) != 2:
            raise _error(f"ARGS: invalid pair {go_quote(pair)}")
        key, value = kv
        kind = "bool" if key == _IGNORE_UNKNOWN else fields.get(key)
        if kind is None:
            unknown.append(pair)
            continue
        convert = _CONVERTERS.get(kind)
        if convert is None:  # a programming error in `fields`, not bad input
            raise ValueError(f"unknown CNI_ARGS field kind {kind!r} for {key}")
        try:
            converted = convert(value)
        except ValueError as err:
            raise _error(f"ARGS: error parsing value of pair {go_quote(pair)}: {err}")
        if converted is None:
            out.pop(key, None)
        else:
            out[key] = converted
    if unknown and not out.get(_IGNORE_UNKNOWN, False):
        raise _error(f"ARGS: unknown args {go_quote_list(unknown)}")
    return out


def parse_cnitool_args(cni_args: str) -> list[tuple[str, str]]:
    """A runtime's CNI_ARGS as ordered pairs (cnitool's rule: both parts of
    every pair non-empty); "" is no pairs."""
    pairs: list[tuple[str, str]] = []
    if not cni_args:
        return pairs
    for pair in cni_args.split(";"):
        kv = pair.split("=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise CNIError(
                ERR_INVALID_ENVIRONMENT_VARIABLES, f"invalid CNI_ARGS pair {go_quote(pair)}"
            )
        pairs.append((kv[0], kv[1]))
    return pairs
