"""Network configuration lists, plugin configurations and request building.

The rules and messages are libcni's (NetworkConfFromBytes,
NetworkPluginConfFromBytes, ConfListFromConf, InjectConf, buildOneConfig),
with two deliberate additions: the network name is validated when a list is
loaded (it becomes a file name in the cache and the drop-in folder), and a
plugin `type` (and `ipam.type`) may not contain a path separator (it names
an executable in CNI_PATH).

Request configs are the plugin object with keys injected; every other key is
passed through unchanged and in its original order.
"""

from __future__ import annotations

from pycni.spec import validate
from pycni.spec.errors import ERR_DECODING_FAILURE, ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.jsonutil import ci_get, fold_key, go_dumps, go_loads, go_quote, go_type, json_kind
from pycni.spec.version import select

_LIST = "error parsing configuration list: "
_PLUGIN = "error parsing configuration: "

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import TypeVar

    from pycni.spec.result import Result

    T = TypeVar("T")

VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


class PluginConfig:
    """One plugin object of a list.  `raw` is the whole object, unknown keys
    included, because runtimes must pass them on unchanged."""

    __slots__ = ("capabilities", "cni_version", "name", "raw", "raw_bytes", "type")

    def __init__(self, raw: dict, raw_bytes: bytes) -> None:
        """Use plugin_config_from_bytes; this trusts `raw` to be checked."""
        self.raw = raw
        self.raw_bytes = raw_bytes
        self.type: str = ci_get(raw, "type") or ""  # type: ignore[assignment]
        self.name: str = ci_get(raw, "name") or ""  # type: ignore[assignment]
        self.cni_version: str = ci_get(raw, "cniVersion") or ""  # type: ignore[assignment]
        self.capabilities: dict[str, bool] = ci_get(raw, "capabilities") or {}  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PluginConfig(type={self.type!r}, name={self.name!r})"


class NetworkConfigList:
    """A network: its plugins in execution order and the version the runtime
    selected from `cniVersion`/`cniVersions`.  `raw_bytes` are the original
    bytes, which the result cache stores as `config`."""

    __slots__ = (
        "cni_version",
        "cni_versions",
        "disable_check",
        "disable_gc",
        "load_only_inlined_plugins",
        "name",
        "plugins",
        "raw_bytes",
    )

    def __init__(
        self,
        name: str,
        cni_version: str,
        raw_bytes: bytes,
        cni_versions: list[str] | None = None,
        disable_check: bool = False,
        disable_gc: bool = False,
        load_only_inlined_plugins: bool = False,
        plugins: list[PluginConfig] | None = None,
    ) -> None:
        self.name = name
        self.cni_version = cni_version
        self.cni_versions = cni_versions if cni_versions is not None else []
        self.disable_check = disable_check
        self.disable_gc = disable_gc
        self.load_only_inlined_plugins = load_only_inlined_plugins
        self.plugins = plugins if plugins is not None else []
        self.raw_bytes = raw_bytes

    def __repr__(self) -> str:
        return (
            f"NetworkConfigList(name={self.name!r}, cni_version={self.cni_version!r}, "
            f"plugins={self.plugins!r})"
        )


def _load(data: bytes | str, prefix: str) -> object:
    try:
        obj = go_loads(data)
    except ValueError as err:
        raise CNIError(ERR_DECODING_FAILURE, f"{prefix}{err}")
    return {} if obj is None else obj  # Go decodes null into a map or struct as a no-op


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def network_config_list_from_bytes(data: bytes | str) -> NetworkConfigList:
    """libcni's NetworkConfFromBytes (no drop-in folder: that is the loader's)."""
    raw = _load(data, _LIST)
    if not isinstance(raw, dict):
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG,
            f"{_LIST}json: cannot unmarshal {json_kind(raw)} into Go value of type "
            "map[string]interface {}",
        )
    if "name" not in raw:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{_LIST}no name")
    name = raw["name"]
    if not isinstance(name, str):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{_LIST}invalid name type {go_type(name)}")
    validate.network_name(name)
    # None would mean "absent" to select(); a JSON null is a wrong type in libcni.
    for key in ("cniVersion", "cniVersions"):
        if key in raw and raw[key] is None:
            what = "cniVersion type" if key == "cniVersion" else "type for cniVersions:"
            raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{_LIST}invalid {what} <nil>")
    try:
        cni_version = select(raw.get("cniVersion"), raw.get("cniVersions"))
    except ValueError as err:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{_LIST}{err}")
    net = NetworkConfigList(
        name,
        cni_version,
        _as_bytes(data),
        raw.get("cniVersions"),
        _read_bool(raw, "disableCheck"),
        _read_bool(raw, "disableGC"),
        _read_bool(raw, "loadOnlyInlinedPlugins"),
    )
    if "plugins" not in raw:
        if net.load_only_inlined_plugins:
            raise CNIError(
                ERR_INVALID_NETWORK_CONFIG,
                f"{_LIST}`loadOnlyInlinedPlugins` is true, and no 'plugins' key",
            )
        return net
    plugins = raw["plugins"]
    if not isinstance(plugins, list):
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG, f"{_LIST}invalid 'plugins' type {go_type(plugins)}"
        )
    if not plugins:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{_LIST}no plugins in list")
    for i, obj in enumerate(plugins):
        raw_bytes = go_dumps(obj, indent=False).encode()
        try:
            net.plugins.append(_plugin_from_obj({} if obj is None else obj, raw_bytes))
        except CNIError as err:
            raise CNIError(err.code, f"failed to parse plugin config {i}: {err.msg}", err.details)
    return net


def _read_bool(raw: dict, key: str) -> bool:
    """libcni's readBool: a JSON bool or "true"/"false" in any case."""
    value = raw.get(key, False)
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG, f"{_LIST}invalid type {go_type(value)} for {key}"
        )
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG, f"{_LIST}invalid value {go_quote(lowered)} for {key}"
        )
    return lowered == "true"


def plugin_config_from_bytes(data: bytes | str) -> PluginConfig:
    """libcni's NetworkPluginConfFromBytes: a JSON object with a `type`."""
    return _plugin_from_obj(_load(data, _PLUGIN), _as_bytes(data))


def _plugin_from_obj(obj: object, raw_bytes: bytes) -> PluginConfig:
    """Check what Go's types.PluginConf decoding checks, plus the `type` names."""
    if not isinstance(obj, dict):
        raise _wrong(obj, None, "types.PluginConf")
    for key in ("cniVersion", "name", "type"):
        _check(obj, key, str, "string")
    capabilities = _check(obj, "capabilities", dict, "map[string]bool")
    for cap, on in (capabilities or {}).items():
        if not isinstance(on, bool) and on is not None:
            raise _wrong(on, f"capabilities.{cap}", "bool")
    ipam = _check(obj, "ipam", dict, "types.IPAM")
    if ipam:
        _check(ipam, "type", str, "string", "ipam.")
    dns = _check(obj, "dns", dict, "types.DNS")
    if dns:
        _check(dns, "domain", str, "string", "dns.")
        for key in ("nameservers", "search", "options"):
            for item in _check(dns, key, list, "[]string", "dns.") or ():
                if not isinstance(item, str):
                    raise _wrong(item, f"dns.{key}", "string")
    _check(obj, "prevResult", dict, "map[string]interface {}")
    key = VALID_ATTACHMENTS_KEYS[0]  # Go's PluginConf knows only the new name
    for item in _check(obj, key, list, "[]types.GCAttachment") or ():
        if not isinstance(item, dict):
            raise _wrong(item, key, "types.GCAttachment")
        for field in ("containerID", "ifname"):
            _check(item, field, str, "string", f"{key}.")
    plugin = PluginConfig(obj, raw_bytes)
    if not plugin.type:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{_PLUGIN}missing 'type'")
    _check_executable_name(plugin.type, "type")
    if ipam:
        _check_executable_name(ci_get(ipam, "type") or "", "ipam.type")  # type: ignore[arg-type]
    return plugin


def _check(d: dict, key: str, kind: type[T], go_name: str, path: str = "") -> T | None:
    value = ci_get(d, key)
    if value is not None and not isinstance(value, kind):
        raise _wrong(value, path + key, go_name)
    return value


def _wrong(value: object, field: str | None, go_name: str) -> CNIError:
    where = f"Go struct field PluginConf.{field}" if field is not None else "Go value"
    return CNIError(
        ERR_INVALID_NETWORK_CONFIG,
        f"{_PLUGIN}json: cannot unmarshal {json_kind(value)} into {where} of type {go_name}",
    )


def _check_executable_name(name: str, key: str) -> None:
    if "/" in name or "\\" in name:
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG,
            f"{_PLUGIN}invalid '{key}' {go_quote(name)}: a plugin name must not "
            "contain '/' or '\\'",
        )


def list_from_single_conf(plugin: PluginConfig) -> NetworkConfigList:
    """libcni's ConfListFromConf: a one-plugin list named after the plugin,
    with the plugin's cniVersion (the bytes are what the cache stores)."""
    raw = {"cniVersion": plugin.cni_version, "name": plugin.name, "plugins": [plugin.raw]}
    return network_config_list_from_bytes(go_dumps(raw, indent=False).encode())


def inject(raw: dict, keys: dict) -> dict:
    """libcni's InjectConf: `raw` with `keys` set, checked to still be a valid
    plugin config.  `raw` is not modified (the copy is shallow).

    An injected key is placed last when `raw` also holds a case variant of
    it, so Go plugins (last key wins) and pycni (exact key wins) both read
    the injected value.
    """
    out = dict(raw)
    for key, value in keys.items():
        if key == "":
            raise CNIError(ERR_INVALID_NETWORK_CONFIG, "keys cannot be empty")
        if value is None:
            raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"key '{key}' value must not be nil")
        folded = fold_key(key)
        if any(k != key and fold_key(k) == folded for k in out):
            out.pop(key, None)
        out[key] = value
    _plugin_from_obj(out, b"")
    return out


def _request(plugin: PluginConfig, net: NetworkConfigList, extra: dict) -> bytes:
    keys = {"name": net.name, "cniVersion": net.cni_version}
    keys.update(extra)
    return go_dumps(inject(plugin.raw, keys), indent=False).encode()


def build_request(
    plugin: PluginConfig,
    net: NetworkConfigList,
    *,
    capability_args: dict | None = None,
    prev_result: dict | Result | None = None,
) -> bytes:
    """The stdin of ADD, CHECK and DEL (libcni's buildOneConfig).

    `prev_result` is injected as given: a dict, or a Result printed in its
    own version (the caller converts it first where the spec says so).
    `runtimeConfig` holds the capability args of the capabilities the plugin
    declares true; when there are none, a static `runtimeConfig` of the file
    passes through, otherwise it is replaced whole.  `capabilities` stays in
    the request, as libcni keeps it and plugins may read it.
    """
    extra: dict = {}
    if prev_result is not None:
        extra["prevResult"] = (
            prev_result if isinstance(prev_result, dict) else prev_result.to_dict()
        )
    runtime_config = {
        cap: capability_args[cap]
        for cap, on in plugin.capabilities.items()
        if on is True and capability_args and cap in capability_args
    }
    if runtime_config:
        extra["runtimeConfig"] = runtime_config
    return _request(plugin, net, extra)


def build_gc_request(
    plugin: PluginConfig, net: NetworkConfigList, valid_attachments: list[tuple[str, str]] | None
) -> bytes:
    """The stdin of GC: the still-valid attachments under both key names
    libcni sends, or neither key when the runtime gave no list (None).  An
    empty list is sent as [] (libcni sends null; plugins treat both alike)."""
    extra: dict = {}
    if valid_attachments is not None:
        entries = [{"containerID": cid, "ifname": ifname} for cid, ifname in valid_attachments]
        for key in VALID_ATTACHMENTS_KEYS:
            extra[key] = entries
    return _request(plugin, net, extra)


def build_status_request(plugin: PluginConfig, net: NetworkConfigList) -> bytes:
    """The stdin of STATUS: only `name` and `cniVersion` are injected."""
    return _request(plugin, net, {})
