"""The dhcp IPAM keys, decoded once for the plugin and once for the daemon.

The plugin checks the configuration before it calls the daemon, so a bad key
is a CNI error 7 naming the key and the value (the daemon, which the Go
plugin also calls, checks it again and answers the same text as an RPC
error). Keys, all under `ipam` (plugins.md 4.3): `daemonSocketPath`,
`request` [{option, skipDefault}], `provide` [{option, value, fromArg}] and
`priority`. Pure Python, no heavy import: the plugin process loads it.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INVALID_ENVIRONMENT_VARIABLES, CNIError
from pycni.spec.jsonutil import ci_get, get_bool, get_dict, get_int, get_list, get_str

DEFAULT_SOCKET_PATH = "/run/cni/dhcp.sock"

#: option names of the reference's table (options.go); any other option is
#: given by its decimal code
OPTION_NAMES = {
    "dhcp-client-identifier": 61,
    "subnet-mask": 1,
    "routers": 3,
    "host-name": 12,
    "user-class": 77,
    "vendor-class-identifier": 60,
}
#: the Parameter Request List unless an entry of `request` has skipDefault
DEFAULT_REQUEST = (3, 1)
#: an option's length is one byte
MAX_VALUE = 255
#: codes a `provide` entry cannot carry: pad and end have no length byte, and
#: the message type is what the client is doing
_NOT_PROVIDABLE = {0: "pad", 53: "DHCP message type", 255: "end"}


def _invalid(msg: str) -> CNIError:
    from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG

    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg)


def parse_option(text: object, key: str) -> int:
    """An option name of the table or a decimal code 0-255 (strconv.ParseUint
    base 10, 8 bits); anything else is error 7 naming `key` and the value."""
    if not isinstance(text, str):
        raise _invalid(f'"{key}": cannot unmarshal {text!r} into Go value of type string')
    code = OPTION_NAMES.get(text)
    if code is not None:
        return code
    if text.isdigit() and text.isascii() and int(text) <= 255:
        return int(text)
    raise _invalid(
        f'"{key}": unknown DHCP option {text!r}: give one of '
        f"{', '.join(sorted(OPTION_NAMES))} or a decimal option code 0-255"
    )


class Provide:
    """One `provide` entry: an option sent to the server."""

    __slots__ = ("code", "from_arg", "key", "name", "value")

    def __init__(self, code: int, name: str, value: bytes, from_arg: str, key: str) -> None:
        self.code = code
        self.name = name
        self.value = value
        self.from_arg = from_arg
        self.key = key


class DHCPConf:
    """The network name and the `ipam` keys of one configuration."""

    __slots__ = ("name", "priority", "provide", "request", "socket_path")

    name: str
    socket_path: str
    provide: list[Provide]
    request: list[int]
    priority: int

    def __init__(self, conf: dict) -> None:
        self.name = get_str(conf, "name")
        ipam = get_dict(conf, "ipam") or {}
        self.socket_path = _str(ipam, "daemonSocketPath") or DEFAULT_SOCKET_PATH
        self.priority = _priority(ipam)
        self.provide = _provide(ipam)
        self.request = _request(ipam)

    def options(self, cni_args: str) -> list[tuple[int, bytes]]:
        """The options every DISCOVER and REQUEST carries besides the client
        ID: the `provide` values (a `fromArg` key present in CNI_ARGS wins
        over `value`; a later entry for a code wins), then the Parameter
        Request List (option 55) when it is not empty."""
        args = _cni_args(cni_args)
        out: dict[int, bytes] = {}
        for p in self.provide:
            if p.value:
                out[p.code] = p.value
            if p.from_arg and p.from_arg in args:
                value = args[p.from_arg].encode("utf-8", "surrogateescape")
                if len(value) > MAX_VALUE:
                    raise CNIError(
                        ERR_INVALID_ENVIRONMENT_VARIABLES,
                        f"value too long for option {p.name!r} from CNI_ARGS {p.from_arg!r}: "
                        f"{len(value)} bytes (at most {MAX_VALUE})",
                        "CNI_ARGS",
                    )
                out[p.code] = value
        options = list(out.items())
        if self.request:
            options.append((55, bytes(self.request)))
        return options


def _prefixed(err: CNIError, where: str) -> CNIError:
    """A getter's '"key": ...' error with the key's place: '"ipam.key": ...'."""
    return _invalid(f'"{where}.{err.msg[1:]}')


def _str(d: dict, key: str) -> str:
    try:
        return get_str(d, key)
    except CNIError as err:
        raise _prefixed(err, "ipam") from None


def _priority(ipam: dict) -> int:
    try:
        value = get_int(ipam, "priority")
    except CNIError as err:
        raise _prefixed(err, "ipam") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise _invalid(f'"ipam.priority": {value} is out of range (0 to {0xFFFFFFFF})')
    return value


def _entries(ipam: dict, key: str) -> list[dict]:
    try:
        items = get_list(ipam, key) or []
    except CNIError as err:
        raise _prefixed(err, "ipam") from None
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _invalid(f'"ipam.{key}[{i}]": {item!r} is not an object')
    return items


def _field(item: dict, key: str, where: str, kind: str = "str") -> object:
    try:
        if kind == "bool":
            return get_bool(item, key)
        return get_str(item, key)
    except CNIError as err:
        raise _prefixed(err, where) from None


def _provide(ipam: dict) -> list[Provide]:
    out = []
    for i, item in enumerate(_entries(ipam, "provide")):
        where = f"ipam.provide[{i}]"
        name = str(_field(item, "option", where))
        code = parse_option(name, f"{where}.option")
        if code in _NOT_PROVIDABLE:
            raise _invalid(
                f'"{where}.option": option {code} ({_NOT_PROVIDABLE[code]}) cannot be provided'
            )
        value = str(_field(item, "value", where)).encode("utf-8", "surrogateescape")
        if len(value) > MAX_VALUE:
            raise _invalid(
                f'"{where}.value": value too long for option {name!r}: '
                f"{len(value)} bytes (at most {MAX_VALUE})"
            )
        from_arg = str(_field(item, "fromArg", where))
        out.append(Provide(code, name, value, from_arg, where))
    return out


def _request(ipam: dict) -> list[int]:
    codes: list[int] = []
    skip_default = False
    for i, item in enumerate(_entries(ipam, "request")):
        where = f"ipam.request[{i}]"
        if _field(item, "skipDefault", where, "bool"):
            skip_default = True
        name = ci_get(item, "option")
        if name is None or name == "":
            continue
        code = parse_option(name, f"{where}.option")
        if code not in codes:
            codes.append(code)
    if not skip_default:
        codes.extend(c for c in DEFAULT_REQUEST if c not in codes)
    return codes


def _cni_args(cni_args: str) -> dict[str, str]:
    """CNI_ARGS as the reference's prepareOptions reads it: "K=V" pairs split
    on ";", the value after the first "=", pairs without "=" ignored."""
    out = {}
    for pair in cni_args.split(";") if cni_args else ():
        key, sep, value = pair.partition("=")
        if sep:
            out[key] = value
    return out


def client_id(container_id: str, network: str, ifname: str) -> str:
    """The lease key and (after a type byte 0) option 61: the reference's
    `<containerID>/<network>/<ifname>`, cut to 254 bytes as Go cuts it."""
    raw = f"{container_id}/{network}/{ifname}".encode("utf-8", "surrogateescape")
    return raw[:254].decode("utf-8", "surrogateescape")
