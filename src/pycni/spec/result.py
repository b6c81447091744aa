"""CNI results of every spec version, in one model.

A Result holds the superset of all versions (the 1.1.0 fields); parsing any
version fills it and printing any version projects it, so the conversion
matrix of the spec is a set of projections instead of 42 converters.  The
version a result was parsed as (or created for) is kept in `cni_version`
because two of Go's conversion rules depend on where a result came from:
0.1.0/0.2.0 results keep the extended route fields and may hold no IP,
while a result of a later version loses them (and fails without IPs) when
it is printed as 0.1.0/0.2.0.

Parsing follows Go's typed decoding: keys match case-insensitively, `null`
means "not set", unknown keys are dropped, and addresses are stored in Go's
canonical text (host bits kept, IPv6 compressed lower-case).  Printing
follows Go's JSON shapes and key order for each version.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_DECODING_FAILURE, ERR_INCOMPATIBLE_CNI_VERSION, CNIError
from pycni.spec.ipnet import go_cidr, go_ip
from pycni.spec.jsonutil import ci_get, go_dumps, go_loads, go_quote, json_kind
from pycni.spec.version import ALL, CURRENT

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import TypeVar

    from typing_extensions import Self

    T = TypeVar("T")

# Result type ("family") of each version Go can create a result for.
_FAMILY = {
    "": "020",
    "0.1.0": "020",
    "0.2.0": "020",
    "0.3.0": "040",
    "0.3.1": "040",
    "0.4.0": "040",
    "1.0.0": "100",
    "1.1.0": "100",
}
# Go's %v of each family's supportedVersions, for the family-check message.
_FAMILY_VERSIONS = {"020": "[ 0.1.0 0.2.0]", "040": "[0.3.0 0.3.1 0.4.0]", "100": "[1.0.0 1.1.0]"}

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class _Value:
    """Equality, repr and a shallow copy over __slots__, so results compare by
    content (subclasses with list fields override copy)."""

    __slots__: tuple[str, ...] = ()

    def copy(self) -> Self:
        new = object.__new__(type(self))  # already canonical: skip re-parsing
        for slot in self.__slots__:
            setattr(new, slot, getattr(self, slot))
        return new

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__)
        return f"{type(self).__name__}({fields})"


def _cidr(text: str) -> str:
    try:
        ip, prefix, _family = go_cidr(text)
    except ValueError as err:
        raise CNIError(ERR_DECODING_FAILURE, str(err))
    return f"{ip}/{prefix}"


def _gateway(text: str | None) -> str | None:
    if not text:
        return None  # Go's net.IP decodes "" as no address
    try:
        return go_ip(text)[0]
    except ValueError as err:
        raise CNIError(ERR_DECODING_FAILURE, str(err))


class Interface(_Value):
    """An interface the plugin created or touched; `sandbox` is the netns
    path for container interfaces and empty for host ones."""

    __slots__ = ("mac", "mtu", "name", "pci_id", "sandbox", "socket_path")

    def __init__(
        self,
        name: str,
        mac: str = "",
        sandbox: str = "",
        mtu: int = 0,
        socket_path: str = "",
        pci_id: str = "",
    ) -> None:
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.sandbox = sandbox
        self.socket_path = socket_path
        self.pci_id = pci_id


class IPConfig(_Value):
    """An address (with the host bits, e.g. "10.1.0.5/16"); `interface` is an
    index into Result.interfaces, where 0 is a valid index."""

    __slots__ = ("address", "gateway", "interface")

    def __init__(
        self, address: str, gateway: str | None = None, interface: int | None = None
    ) -> None:
        self.address = _cidr(address)
        self.gateway = _gateway(gateway)
        self.interface = interface

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4

    @property
    def ip(self) -> str:
        return self.address.rpartition("/")[0]

    @property
    def prefixlen(self) -> int:
        return int(self.address.rpartition("/")[2])


class Route(_Value):
    """A route for the container interface; `table` and `scope` are None when
    unset because 0 is a meaningful value for both."""

    __slots__ = ("advmss", "dst", "gw", "mtu", "priority", "scope", "table")

    def __init__(
        self,
        dst: str,
        gw: str | None = None,
        mtu: int = 0,
        advmss: int = 0,
        priority: int = 0,
        table: int | None = None,
        scope: int | None = None,
    ) -> None:
        self.dst = _cidr(dst)
        self.gw = _gateway(gw)
        self.mtu = mtu
        self.advmss = advmss
        self.priority = priority
        self.table = table
        self.scope = scope

    @property
    def family(self) -> int:
        return 6 if ":" in self.dst else 4

    # The widest value the kernel keeps for each numeric key.
    LIMITS = (
        ("mtu", 0xFFFFFFFF),
        ("advmss", 0xFFFFFFFF),
        ("priority", 0xFFFFFFFF),
        ("table", 0xFFFFFFFF),
        ("scope", 0xFF),
    )

    def range_problem(self) -> str:
        """Which key the kernel cannot take, worded for an error; "" if none.

        JSON allows any integer, Go's int is 64 bits wide, the kernel takes
        32 (8 for scope): caught here so the error names the key."""
        for key, top in self.LIMITS:
            value = getattr(self, key)
            if value is not None and not 0 <= value <= top:
                return f'"{key}" {value} is out of range (0 to {top})'
        return ""

    def _to_dict(self, extended: bool) -> dict:
        out: dict = {"dst": self.dst}
        if self.gw:
            out["gw"] = self.gw
        if extended:
            if self.mtu:
                out["mtu"] = self.mtu
            if self.advmss:
                out["advmss"] = self.advmss
            if self.priority:
                out["priority"] = self.priority
            if self.table is not None:
                out["table"] = self.table
            if self.scope is not None:
                out["scope"] = self.scope
        return out


class DNS(_Value):
    """Resolver settings; every field is optional."""

    __slots__ = ("domain", "nameservers", "options", "search")

    def __init__(
        self,
        nameservers: list[str] | None = None,
        domain: str = "",
        search: list[str] | None = None,
        options: list[str] | None = None,
    ) -> None:
        self.nameservers = nameservers if nameservers is not None else []
        self.domain = domain
        self.search = search if search is not None else []
        self.options = options if options is not None else []

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def copy(self) -> DNS:
        return DNS(list(self.nameservers), self.domain, list(self.search), list(self.options))

    def _to_dict(self) -> dict:
        out: dict = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out


class Result(_Value):
    """A plugin's ADD result; see the module docstring for the model."""

    __slots__ = ("cni_version", "dns", "interfaces", "ips", "routes")

    def __init__(
        self,
        cni_version: str = CURRENT,
        interfaces: list[Interface] | None = None,
        ips: list[IPConfig] | None = None,
        routes: list[Route] | None = None,
        dns: DNS | None = None,
    ) -> None:
        self.cni_version = cni_version
        self.interfaces = interfaces if interfaces is not None else []
        self.ips = ips if ips is not None else []
        self.routes = routes if routes is not None else []
        self.dns = dns if dns is not None else DNS()

    def copy(self) -> Result:
        return Result(
            self.cni_version,
            [i.copy() for i in self.interfaces],
            [i.copy() for i in self.ips],
            [r.copy() for r in self.routes],
            self.dns.copy(),
        )

    @classmethod
    def from_dict(cls, d: dict, version: str | None = None) -> Result:
        """Go's create.Create(version, d): `version` picks the result type
        (None: d's own cniVersion, "" or missing meaning 0.1.0) and d's own
        cniVersion must belong to that type."""
        if not isinstance(d, dict):
            raise _type_error(d, None, "", "types.Result")
        own = ci_get(d, "cniVersion")
        if own is None:
            own = ""
        if not isinstance(own, str):
            err = _type_error(own, "", "cniVersion", "string")
            prefix = "decoding version from network config: " if version is None else ""
            raise CNIError(err.code, prefix + err.msg)
        if version is None:
            version = own or "0.1.0"
        family = _FAMILY.get(version)
        if family is None:
            raise CNIError(
                ERR_INCOMPATIBLE_CNI_VERSION, f"unsupported CNI result version {go_quote(version)}"
            )
        if _FAMILY.get(own) != family:
            raise CNIError(
                ERR_DECODING_FAILURE,
                f"result type supports {_FAMILY_VERSIONS[family]} but unmarshalled "
                f"CNIVersion is {go_quote(own)}",
            )
        result = cls(own or "0.1.0")
        if family == "020":
            _parse_020(d, result)
        else:
            _parse_modern(d, result, family == "100")
        result.dns = _parse_dns(d, "Result")
        return result

    @classmethod
    def from_json(cls, data: bytes | str, version: str | None = None) -> Result:
        """Parse a result document; `null` is an empty object, as in Go."""
        try:
            d = go_loads(data)
        except ValueError as err:
            prefix = "decoding version from network config: " if version is None else ""
            raise CNIError(ERR_DECODING_FAILURE, f"{prefix}{err}")
        return cls.from_dict({} if d is None else d, version)  # type: ignore[arg-type]

    def to_dict(self, version: str | None = None) -> dict:
        """The JSON object of this result printed as `version` (None: its own
        version; "": 0.1.0), converted as Go's GetAsVersion does."""
        source = self.cni_version or CURRENT
        target = source if version is None else version or "0.1.0"
        if source not in ALL or target not in ALL:
            raise CNIError(
                ERR_INCOMPATIBLE_CNI_VERSION,
                f"no converter for CNI result version {source} to {target}",
            )
        family = _FAMILY[target]
        if family == "020":
            return self._to_020(target, _FAMILY[source] == "020")
        v1 = family == "100"
        out: dict = {"cniVersion": target}
        if self.interfaces:
            out["interfaces"] = [_interface_dict(i, v1) for i in self.interfaces]
        if self.ips:
            out["ips"] = [_ip_dict(i, v1) for i in self.ips]
        if self.routes:
            out["routes"] = [r._to_dict(True) for r in self.routes]
        if not v1 or not self.dns.is_empty():
            out["dns"] = self.dns._to_dict()
        return out

    def _to_020(self, target: str, from_020: bool) -> dict:
        """ip4/ip6 hold the first address of each family.  A later-version
        result keeps only dst/gw of each route and needs an address; a
        0.1.0/0.2.0 result is copied whole (its routes never dropped)."""
        blocks: dict[int, dict] = {}
        for ipc in self.ips:
            if ipc.family not in blocks:
                block: dict = {"ip": ipc.address}
                if ipc.gateway:
                    block["gateway"] = ipc.gateway
                blocks[ipc.family] = block
        if not blocks and not from_020:
            raise CNIError(ERR_INCOMPATIBLE_CNI_VERSION, "cannot convert: no valid IP addresses")
        for route in self.routes:
            owner = blocks.get(route.family)
            if owner is None and from_020 and blocks:
                owner = next(iter(blocks.values()))
            if owner is not None:
                owner.setdefault("routes", []).append(route._to_dict(from_020))
        out: dict = {"cniVersion": target}
        if 4 in blocks:
            out["ip4"] = blocks[4]
        if 6 in blocks:
            out["ip6"] = blocks[6]
        out["dns"] = self.dns._to_dict()
        return out

    def to_json(self, version: str | None = None) -> str:
        """Printed as Go's Result.Print does: 4-space indent, no newline."""
        return go_dumps(self.to_dict(version))


def parse_prev_result(conf: dict) -> Result | None:
    """The `prevResult` of a plugin config, parsed as the config's version
    (Go's version.ParsePrevResult); a prevResult without a cniVersion is
    taken to be in the config's version.  None when there is none."""
    raw = ci_get(conf, "prevResult")
    if raw is None:
        return None
    try:
        if not isinstance(raw, dict):
            raise _type_error(raw, "PluginConf", "prevResult", "map[string]interface {}")
        conf_version = ci_get(conf, "cniVersion")
        if conf_version is None:
            conf_version = ""
        if not isinstance(conf_version, str):
            raise _type_error(conf_version, "PluginConf", "cniVersion", "string")
        own = ci_get(raw, "cniVersion")
        if own is None or own == "":
            raw = {**raw, "cniVersion": conf_version}
        return Result.from_dict(raw, conf_version)
    except CNIError as err:
        raise CNIError(err.code, "could not parse prevResult: " + err.msg, err.details)


# -- printing helpers ---------------------------------------------------------------------


def _interface_dict(i: Interface, v1: bool) -> dict:
    """0.3.0-0.4.0 interfaces have no mtu, socketPath or pciID."""
    out: dict = {"name": i.name}
    if i.mac:
        out["mac"] = i.mac
    if v1 and i.mtu:
        out["mtu"] = i.mtu
    if i.sandbox:
        out["sandbox"] = i.sandbox
    if v1 and i.socket_path:
        out["socketPath"] = i.socket_path
    if v1 and i.pci_id:
        out["pciID"] = i.pci_id
    return out


def _ip_dict(ipc: IPConfig, v1: bool) -> dict:
    """0.3.0-0.4.0 IPs lead with their "version"."""
    out: dict = {} if v1 else {"version": str(ipc.family)}
    if ipc.interface is not None:
        out["interface"] = ipc.interface
    out["address"] = ipc.address
    if ipc.gateway:
        out["gateway"] = ipc.gateway
    return out


# -- parsing helpers ----------------------------------------------------------------------


def _type_error(value: object, struct: str | None, field: str, go_type: str) -> CNIError:
    """Go's UnmarshalTypeError text."""
    where = f"Go struct field {struct}.{field}" if struct is not None else "Go value"
    return CNIError(
        ERR_DECODING_FAILURE,
        f"json: cannot unmarshal {json_kind(value)} into {where} of type {go_type}",
    )


def _get(d: dict, key: str, struct: str, kind: type[T], go_type: str) -> T | None:
    """d's `key` (case-insensitive) checked against a Go type; None if absent or null."""
    value = ci_get(d, key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _type_error(value, struct, key, go_type)
    if kind is int and not _INT_MIN <= value <= _INT_MAX:  # type: ignore[operator]
        raise _type_error(float(value), struct, key, go_type)  # type: ignore[arg-type]
    return value


def _str(d: dict, key: str, struct: str) -> str:
    return _get(d, key, struct, str, "string") or ""


def _int(d: dict, key: str, struct: str) -> int | None:
    return _get(d, key, struct, int, "int")


def _list(d: dict, key: str, struct: str, kind: type, go_type: str) -> list:
    """d's `key` as a new list of `kind` items (Go's []go_type); [] if absent or null."""
    items = _get(d, key, struct, list, f"[]{go_type}") or []
    for item in items:
        if not isinstance(item, kind):
            raise _type_error(item, struct, key, go_type)
    return list(items)


def _objects(d: dict, key: str, struct: str, go_type: str) -> list[dict]:
    return _list(d, key, struct, dict, go_type)


def _strings(d: dict, key: str, struct: str) -> list[str]:
    return _list(d, key, struct, str, "string")


def _required(d: dict, key: str, struct: str) -> str:
    """An address field: Go would print a zero address as "<nil>", so pycni
    rejects a missing one instead."""
    value = _str(d, key, struct)
    if not value and ci_get(d, key) is None:
        raise CNIError(ERR_DECODING_FAILURE, f'missing required field "{key}" in {struct}')
    return value


def _parse_route(d: dict) -> Route:
    return Route(
        _required(d, "dst", "route"),
        _str(d, "gw", "route"),
        _int(d, "mtu", "route") or 0,
        _int(d, "advmss", "route") or 0,
        _int(d, "priority", "route") or 0,
        _int(d, "table", "route"),
        _int(d, "scope", "route"),
    )


def _parse_dns(d: dict, struct: str) -> DNS:
    value = _get(d, "dns", struct, dict, "types.DNS")
    if not value:
        return DNS()
    return DNS(
        _strings(value, "nameservers", "DNS"),
        _str(value, "domain", "DNS"),
        _strings(value, "search", "DNS"),
        _strings(value, "options", "DNS"),
    )


def _parse_020(d: dict, result: Result) -> None:
    """ip4 then ip6, each with its routes; the family of an address decides
    where it is printed, whatever slot it came in."""
    for key in ("ip4", "ip6"):
        block = _get(d, key, "Result", dict, "types020.IPConfig")
        if block is None:
            continue
        result.ips.append(
            IPConfig(
                _required(block, "ip", "ipConfig"),
                _str(block, "gateway", "ipConfig"),
            )
        )
        for route in _objects(block, "routes", "ipConfig", "types.Route"):
            result.routes.append(_parse_route(route))


def _parse_modern(d: dict, result: Result, v1: bool) -> None:
    """0.3.0-1.1.0 shapes; 0.x interfaces have no mtu/socketPath/pciID and
    Go drops them, and the 0.x `version` of an IP is derived from the
    address, so it is only type-checked."""
    for i in _objects(d, "interfaces", "Result", "Interface"):
        iface = Interface(
            _str(i, "name", "Interface"),
            _str(i, "mac", "Interface"),
            _str(i, "sandbox", "Interface"),
        )
        if v1:
            iface.mtu = _int(i, "mtu", "Interface") or 0
            iface.socket_path = _str(i, "socketPath", "Interface")
            iface.pci_id = _str(i, "pciID", "Interface")
        result.interfaces.append(iface)
    for ipc in _objects(d, "ips", "Result", "IPConfig"):
        if not v1:
            _str(ipc, "version", "ipConfig")
        result.ips.append(
            IPConfig(
                _required(ipc, "address", "ipConfig"),
                _str(ipc, "gateway", "ipConfig"),
                _int(ipc, "interface", "ipConfig"),
            )
        )
    for route in _objects(d, "routes", "Result", "types.Route"):
        result.routes.append(_parse_route(route))
