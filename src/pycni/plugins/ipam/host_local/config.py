"""host-local configuration: the reference's LoadIPAMConfig, with clear errors.

Keys match case-insensitively and `null` means "not set", as with Go's
decoder. The final list of range sets is `runtimeConfig.ipRanges`, then the
legacy `ipam.subnet` range, then `ipam.ranges`; a set's index in that list
names its `last_reserved_ip.<index>` file. Requested addresses come from
CNI_ARGS `IP`, `args.cni.ips` and `runtimeConfig.ips`, in that order (the
CNI_ARGS one is ignored when `args.cni.ips` is given, as the conventions
require). The sql IPAM plugin takes the same keys: it reads them through
`string_key`, `object_key`, `requested_ips` and `range_sets`, so both
plugins answer a bad range or address with the same error.
"""

from __future__ import annotations

from pycni.plugins.ipam.host_local.store import DEFAULT_DATA_DIR
from pycni.plugins.pkg.ipamconf import ipam_section, parse_routes
from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.ipnet import parse_addr
from pycni.spec.jsonutil import ci_get, get_list, json_kind

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.host_local.allocator import Range, RangeSet
    from pycni.spec.result import Route

# The ranges' types (`allocator`) are imported where ranges are parsed: a
# DEL reads only the name and dataDir (`load_store`).

_RANGE_IPS = ("rangeStart", "rangeEnd", "gateway")


class IPAMConfig:
    """A validated host-local configuration."""

    __slots__ = (
        "cni_version",
        "data_dir",
        "name",
        "range_sets",
        "requested",
        "resolv_conf",
        "routes",
    )

    def __init__(self, name: str, data_dir: str, cni_version: str = "") -> None:
        self.name = name
        self.data_dir = data_dir
        self.cni_version = cni_version
        self.resolv_conf = ""
        self.routes: list[Route] = []
        self.range_sets: list[RangeSet] = []
        self.requested: list[tuple[int, int]] = []

    def __repr__(self) -> str:
        return (
            f"IPAMConfig(name={self.name!r}, data_dir={self.data_dir!r}, "
            f"range_sets={self.range_sets!r}, requested={self.requested!r})"
        )


def _invalid(msg: str) -> CNIError:
    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg)


def string_key(ipam: dict, key: str) -> str:
    value = ci_get(ipam, key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"invalid ipam.{key}: expected a string, got {json_kind(value)}")
    return value or ""


def load_store(conf: dict) -> IPAMConfig:
    """Only what the store needs (network name, dataDir): enough for DEL
    and GC, which must work even if the ranges of a config went bad."""
    ipam = ipam_section(conf)
    data_dir = string_key(ipam, "dataDir") or DEFAULT_DATA_DIR
    if "\0" in data_dir:
        raise _invalid("invalid ipam.dataDir: contains a NUL character")
    if not data_dir.startswith("/"):
        # The reference resolves it against whatever directory the runtime
        # happened to exec the plugin in: a store that moves between calls.
        raise _invalid(f"invalid ipam.dataDir {data_dir!r}: it must be an absolute path")
    name = ci_get(conf, "name")
    if not isinstance(name, str) or not name:
        raise _invalid("missing network name")
    version = ci_get(conf, "cniVersion")
    return IPAMConfig(name, data_dir, version if isinstance(version, str) else "")


def load(conf: dict, cni_args: str = "", cni_version: str | None = None) -> IPAMConfig:
    """The full configuration of ADD, CHECK and STATUS; raises CNIError."""
    cfg = load_store(conf)
    ipam = ipam_section(conf)
    if cni_version is not None:
        cfg.cni_version = cni_version
    cfg.resolv_conf = string_key(ipam, "resolvConf")
    cfg.routes = parse_routes(ipam)
    runtime = object_key(conf, "runtimeConfig")
    cfg.requested = requested_ips(conf, runtime, cni_args)
    cfg.range_sets = range_sets(ipam, runtime, cfg.cni_version or "0.1.0")
    return cfg


def object_key(d: dict, key: str) -> dict:
    value = ci_get(d, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"invalid {key}: expected an object, got {json_kind(value)}")
    return value


# -- requested addresses --------------------------------------------------------------------


def parse_requested(text: object, where: str) -> tuple[int, int]:
    """An "ip" or "ip/prefix" request (only the address counts)."""
    from pycni.spec.ipnet import IPNet

    if not isinstance(text, str):
        raise _invalid(f"invalid {where}: expected an IP address string, got {json_kind(text)}")
    try:
        if "/" in text:
            net = IPNet.parse(text)
            return parse_addr(net.ip_str)
        return parse_addr(text)
    except ValueError:
        raise _invalid(f"invalid {where}: invalid IP address {text}")


def _ip_list(d: dict, key: str, where: str) -> list[tuple[int, int]]:
    try:
        items = get_list(d, key) or []
    except CNIError as err:
        raise _invalid(f"invalid {where}: {err.msg}")
    return [parse_requested(item, f"{where}[{i}]") for i, item in enumerate(items)]


def requested_ips(conf: dict, runtime: dict, cni_args: str) -> list[tuple[int, int]]:
    from_args: list[tuple[int, int]] = []
    args = ci_get(conf, "args")
    # Parts of `args` a plugin does not understand are to be ignored.
    cni = ci_get(args, "cni") if isinstance(args, dict) else None
    if isinstance(cni, dict):
        from_args = _ip_list(cni, "ips", "args.cni.ips")
    from_env: list[tuple[int, int]] = []
    if cni_args:
        from_env = _cni_args_ip(cni_args)
    requested: list[tuple[int, int]] = []
    for addr in [
        *(from_env if not from_args else ()),
        *from_args,
        *_ip_list(runtime, "ips", "runtimeConfig.ips"),
    ]:
        if addr not in requested:
            requested.append(addr)
    return requested


def _cni_args_ip(cni_args: str) -> list[tuple[int, int]]:
    """CNI_ARGS `IP`, "ip" or "ip/prefix" like the reference's ip.IP (so the
    field is read as a string: the "ip" kind takes no prefix)."""
    from pycni.spec.args import load_args
    from pycni.spec.errors import ERR_INVALID_ENVIRONMENT_VARIABLES

    value = load_args(cni_args, {"IP": "str"}).get("IP")
    if not value:
        return []
    try:
        return [parse_requested(value, "CNI_ARGS IP")]
    except CNIError:
        raise CNIError(
            ERR_INVALID_ENVIRONMENT_VARIABLES,
            f'ARGS: error parsing value of pair "IP={value}": invalid IP address {value}',
            "CNI_ARGS",
        )


# -- ranges ---------------------------------------------------------------------------------


def range_sets(ipam: dict, runtime: dict, cni_version: str) -> list[RangeSet]:
    from pycni.plugins.ipam.host_local.allocator import RangeError, RangeSet

    sources: list[tuple[str, object]] = []
    runtime_sets = ci_get(runtime, "ipRanges")
    if runtime_sets is not None:
        sources.extend(_set_list(runtime_sets, "runtimeConfig.ipRanges"))
    if ci_get(ipam, "subnet") is not None:
        sources.append(("ipam", [ipam]))
    configured = ci_get(ipam, "ranges")
    if configured is not None:
        sources.extend(_set_list(configured, "ipam.ranges"))
    if not sources:
        raise _invalid("no IP ranges specified")
    sets = []
    for idx, (where, ranges) in enumerate(sources):
        try:
            if not isinstance(ranges, list):
                raise RangeError(f"{where}: expected a list of ranges, got {json_kind(ranges)}")
            sets.append(
                RangeSet(
                    [
                        _range(r, where if where == "ipam" else f"{where}[{i}]")
                        for i, r in enumerate(ranges)
                    ]
                )
            )
        except RangeError as err:
            raise _invalid(f"invalid range set {idx}: {err}")
    if _families_limited(cni_version) and (
        sum(s.family == 4 for s in sets) > 1 or sum(s.family == 6 for s in sets) > 1
    ):
        raise _invalid(f"CNI version {cni_version} does not support more than 1 address per family")
    for i, s1 in enumerate(sets):
        for j in range(i + 1, len(sets)):
            if s1.overlaps(sets[j]):
                raise _invalid(f"range set {i} overlaps with {j}")
    return sets


def _families_limited(cni_version: str) -> bool:
    """0.1.0 and 0.2.0 results hold one address per family."""
    from pycni.spec.version import gte

    try:
        return not gte(cni_version, "0.3.0")
    except ValueError:
        return True


def _set_list(value: object, where: str) -> list[tuple[str, object]]:
    if not isinstance(value, list):
        raise _invalid(f"invalid {where}: expected a list of range sets, got {json_kind(value)}")
    return [(f"{where}[{i}]", [] if s is None else s) for i, s in enumerate(value)]


# Blocks no container address can come from. A subnet reaching into one
# (0.0.0.0/0 hands out 0.0.0.2) is a mistake, not a pool; the reference
# accepts it. Class E (240.0.0.0/4) stays allowed: some clusters use it.
_UNASSIGNABLE = (
    ("0.0.0.0/8", '"this network"'),
    ("127.0.0.0/8", "loopback"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "limited broadcast address"),
    ("::/128", "unspecified address"),
    ("::1/128", "loopback"),
    ("ff00::/8", "multicast"),
)


def _unassignable(net) -> str:
    """The special block `net` reaches into, worded for an error; "" if none."""
    from pycni.spec.ipnet import IPNet

    for block, what in _UNASSIGNABLE:
        special = IPNet.parse(block)
        if special.overlaps(net):
            return f"{what} block {block}"
    return ""


def _range(obj: object, where: str) -> Range:
    """Decode and canonicalise one range object; raises RangeError."""
    from pycni.plugins.ipam.host_local.allocator import Range, RangeError
    from pycni.spec.ipnet import IPNet

    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise RangeError(f"{where}: expected a range object, got {json_kind(obj)}")
    subnet = ci_get(obj, "subnet")
    if subnet is None:
        raise RangeError(f"{where}: subnet is required")
    if not isinstance(subnet, str):
        raise RangeError(f"{where}: subnet must be a string, got {json_kind(subnet)}")
    try:
        net = IPNet.parse(subnet)
    except ValueError:
        raise RangeError(f"{where}: subnet {subnet} is not a valid CIDR")
    special = _unassignable(net)
    if special:
        raise RangeError(
            f"{where}: subnet {subnet} cannot be a container subnet: it includes the {special}"
        )
    addrs: list[tuple[int, int] | None] = []
    for key in _RANGE_IPS:
        value = ci_get(obj, key)
        if value is None or value == "":  # Go's net.IP reads "" as unset
            addrs.append(None)
            continue
        if not isinstance(value, str):
            raise RangeError(f"{where}: {key} must be a string, got {json_kind(value)}")
        try:
            addrs.append(parse_addr(value))
        except ValueError:
            raise RangeError(f"{where}: {key} {value} is not a valid IP")
    return Range.canonical(net, addrs[0], addrs[1], addrs[2])


def requests_per_set(
    range_sets: list[RangeSet], requested: list[tuple[int, int]]
) -> tuple[list[tuple[int, int] | None], list[tuple[int, int]]]:
    """One requested address per range set (None: allocate freely), taken
    in request order, and the requests that no set holds."""
    remaining = list(requested)
    wanted: list[tuple[int, int] | None] = []
    for rset in range_sets:
        pick = next((a for a in remaining if rset.contains(*a)), None)
        if pick is not None:
            remaining.remove(pick)
        wanted.append(pick)
    return wanted, remaining
