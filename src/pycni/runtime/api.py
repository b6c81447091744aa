"""CNIConfig: the libcni runtime API (ADD/CHECK/DEL/GC/STATUS over lists).

Behaviour is libcni's (see the reference, section 5), with these choices:

* every operation takes the locks of `pycni.runtime.lock` (GC exclusive
  against ADD/CHECK/DEL, one operation per container at a time) unless the
  CNIConfig is built with `locking=False`;
* a per-plugin-call timeout (`timeout=` seconds) kills hung plugins;
* the cache is written atomically (`pycni.runtime.cache`);
* `del_network` (single plugin) tolerates an unreadable cache like
  `del_network_list` does (libcni's DelNetwork fails instead);
* network name, container ID and ifname must be usable as file name parts
  for every cache operation (libcni would build paths from them unchecked).

Errors are `CNIError`s; a plugin's code, msg and details are kept, wrapped
with libcni's prefixes (`plugin type="bridge" name="x" failed (add): ...`).
"""

from __future__ import annotations

import os

from pycni import invoke
from pycni.invoke import UntypedError, go_quote, wrap_error
from pycni.runtime import cache
from pycni.runtime.cache import DEFAULT_CACHE_DIR, Attachment
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.config import NetworkConfigList, PluginConfig
    from pycni.spec.result import Result

__all__ = ["Attachment", "CNIConfig", "RuntimeConf"]


class RuntimeConf:
    """The arguments of one attachment operation (libcni's RuntimeConf).

    `args` is the ordered list of (key, value) pairs that becomes CNI_ARGS;
    `capability_args` maps capability names to their runtime values.
    `cache_dir` is the deprecated per-call cache directory.
    """

    __slots__ = ("args", "cache_dir", "capability_args", "container_id", "ifname", "netns")

    def __init__(
        self,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: list | tuple | None = None,
        capability_args: dict | None = None,
        cache_dir: str = "",
    ) -> None:
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = [(str(k), str(v)) for k, v in (args or ())]
        self.capability_args = dict(capability_args or {})
        self.cache_dir = cache_dir

    def copy(self, **changes: object) -> RuntimeConf:
        new = RuntimeConf(
            self.container_id,
            self.netns,
            self.ifname,
            self.args,
            self.capability_args,
            self.cache_dir,
        )
        for key, value in changes.items():
            setattr(new, key, value)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuntimeConf):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"RuntimeConf(container_id={self.container_id!r}, netns={self.netns!r}, "
            f"ifname={self.ifname!r}, args={self.args!r}, "
            f"capability_args={self.capability_args!r})"
        )


class CNIConfig:
    """Runs plugins found in `path` and keeps their results in `cache_dir`.

    Without `cache_dir`, the deprecated `RuntimeConf.cache_dir` is used, then
    /var/lib/cni (libcni's order).

    `timeout` (seconds, None for none) bounds every single plugin call; on
    expiry the plugin is killed and `invoke.PluginTimeoutError` raised.
    `stderr` receives the stderr of plugins that succeed (default
    sys.stderr). `locking=False` skips `pycni.runtime.lock`. `executor`
    finds and runs plugins (default `pycni.invoke.DEFAULT`: exec them).
    """

    def __init__(
        self,
        path: list[str] | tuple[str, ...] | str | None = None,
        cache_dir: str | None = None,
        timeout: float | None = None,
        stderr=None,
        locking: bool = True,
        executor: invoke.Executor | None = None,
    ) -> None:
        if isinstance(path, str):
            path = path.split(os.pathsep) if path else []
        self.path = list(path or [])
        self.cache_dir = cache_dir or ""
        self.timeout = timeout
        self.stderr = stderr
        self.locking = locking
        self.executor = executor or invoke.DEFAULT

    # -- plumbing ----------------------------------------------------------

    def _cache_dir(self, rt: RuntimeConf | None = None) -> str:
        if self.cache_dir:
            return self.cache_dir
        if rt is not None and rt.cache_dir:
            return rt.cache_dir
        return DEFAULT_CACHE_DIR

    def _lock(self, rt: RuntimeConf | None):
        """The operation lock: container + shared GC lock, or exclusive GC lock (rt None)."""
        from pycni.runtime import lock

        if not self.locking:
            return lock.NO_LOCK
        return lock.OperationLock(self._cache_dir(rt), rt.container_id if rt else None)

    def _env(self, command: str, rt: RuntimeConf | None) -> dict:
        path = os.pathsep.join(self.path)
        if rt is None:
            return invoke.plugin_env(command, path=path)
        return invoke.plugin_env(command, rt.container_id, rt.netns, rt.args, rt.ifname, path)

    def _exec(self, plugin_type: str, command: str, request: bytes, rt: RuntimeConf | None):
        path = self.executor.find_in_path(plugin_type, self.path)
        env = self._env(command, rt)
        return self.executor.exec_plugin(path, request, env, self.timeout, self.stderr)

    def _cache_path(self, name: str, rt: RuntimeConf) -> str:
        return cache.file_path(self._cache_dir(rt), name, rt.container_id, rt.ifname)

    def _cached_result(self, name: str, cni_version: str, rt: RuntimeConf) -> Result | None:
        """libcni's getCachedResult: None if there is no cache file, else the
        result converted to `cni_version` (errors raise)."""
        data = cache.read(self._cache_path(name, rt))
        if data is None:
            return None
        result = cache.load_result(data)
        try:
            return _as_version(result, cni_version)
        except CNIError as err:
            raise wrap_error(
                err, f'failed to convert cached result to config version "{cni_version}"'
            )

    def _cached_config(self, name: str, rt: RuntimeConf) -> tuple[bytes | None, RuntimeConf | None]:
        from pycni.spec.jsonutil import go_loads

        data = cache.read(self._cache_path(name, rt))
        if data is None:
            return None, None
        try:
            doc = go_loads(data)
            if not isinstance(doc, dict):
                raise ValueError(
                    "json: cannot unmarshal non-object into Go value of type libcni.cachedInfo"
                )
            rec = cache._fields(doc)
        except (ValueError, TypeError) as err:
            raise UntypedError(f'failed to unmarshal cached network "{name}" config: {err}')
        if rec["kind"] != cache.KIND:
            raise UntypedError(f'read cached network "{name}" config has wrong kind: {rec["kind"]}')
        new = rt.copy()
        if rec["cniArgs"] is not None:
            new.args = list(rec["cniArgs"])
        new.capability_args = dict(rec["capabilityArgs"] or {})
        return rec["config"], new

    def _prev_for_check(self, name: str, cni_version: str, rt: RuntimeConf) -> Result | None:
        """CHECK's prevResult: the cached result; an unreadable cache fails CHECK."""
        try:
            return self._cached_result(name, cni_version, rt)
        except CNIError as err:
            raise wrap_error(err, f'failed to get network "{name}" cached result')

    def _prev_for_del(self, name: str, cni_version: str, rt: RuntimeConf) -> Result | None:
        """DEL's prevResult (0.4.0 on): the cached result; an unreadable cache
        is removed and DEL goes on without one."""
        if not _gte(cni_version, "0.4.0"):
            return None
        try:
            return self._cached_result(name, cni_version, rt)
        except CNIError:
            self._cache_del(name, rt)
            return None

    def _cache_add(self, result: Result | None, config: bytes, name: str, rt: RuntimeConf) -> None:
        try:
            raw = result.to_dict(result.cni_version) if result is not None else None
            cache.add(
                self._cache_dir(rt),
                name,
                rt.container_id,
                rt.ifname,
                config,
                rt.netns,
                rt.args,
                rt.capability_args,
                raw,
            )
        except (CNIError, OSError, ValueError, TypeError) as err:
            raise wrap_error(err, f'failed to set network "{name}" cached result')

    def _cache_del(self, name: str, rt: RuntimeConf) -> None:
        try:
            path = self._cache_path(name, rt)
        except CNIError:
            return
        cache.delete(path)

    # -- one plugin ------------------------------------------------------------

    def _add_one(
        self, net: NetworkConfigList, plugin: PluginConfig, prev: Result | None, rt: RuntimeConf
    ) -> Result:
        path = self.executor.find_in_path(plugin.type, self.path)
        request = _attachment_request(net, plugin, prev, rt)
        env = self._env("ADD", rt)
        out = self.executor.exec_plugin(path, request, env, self.timeout, self.stderr)
        return invoke.result_from_output(request, out)

    def _run_one(
        self,
        command: str,
        net: NetworkConfigList,
        plugin: PluginConfig,
        prev: Result | None,
        rt: RuntimeConf,
    ) -> None:
        path = self.executor.find_in_path(plugin.type, self.path)
        request = _attachment_request(net, plugin, prev, rt)
        self.executor.exec_plugin(path, request, self._env(command, rt), self.timeout, self.stderr)

    # -- lists -------------------------------------------------------------

    def add_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        """ADD every plugin in order, chaining results; cache and return the last
        (None for a list without plugins, as libcni's nil result).

        Nothing is cached and nothing is undone if a plugin fails: the caller
        must DEL (the spec requires a DEL after a failed ADD as well).
        """
        with self._lock(rt):
            return self._add_list(net, rt)

    def _before_add(self, name: str, rt: RuntimeConf) -> None:
        """Fail now what would fail the cache write after the plugins ran: a
        container configured but not cached is one its runtime cannot DEL."""
        from pycni.spec import validate

        validate.container_id(rt.container_id)
        validate.network_name(name)
        validate.interface_name(rt.ifname)
        cache.make_dirs(os.path.dirname(self._cache_path(name, rt)))

    def _add_list(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        try:
            self._before_add(net.name, rt)
        except CNIError as err:  # Go checks in each plugin's ADD: worded as its failure
            if not net.plugins:
                raise
            raise wrap_error(err, f"plugin {describe(net.plugins[0])} failed (add)")
        result = None
        for plugin in net.plugins:
            try:
                result = self._add_one(net, plugin, result, rt)
            except CNIError as err:
                raise wrap_error(err, f"plugin {describe(plugin)} failed (add)")
        self._cache_add(result, net.raw_bytes, net.name, rt)
        return result

    def check_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """CHECK every plugin in order with the cached ADD result as prevResult."""
        _require_check(net.cni_version)
        if net.disable_check:
            return
        with self._lock(rt):
            cached = self._prev_for_check(net.name, net.cni_version, rt)
            for plugin in net.plugins:
                self._run_one("CHECK", net, plugin, cached, rt)

    def del_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """DEL every plugin in reverse order with the cached ADD result.

        An unreadable cache is removed and DEL goes on without prevResult; the
        cache is removed after success and kept when a plugin fails.
        """
        with self._lock(rt) as held:
            self._del_list(net, rt)
            held.remove_container_lock()

    def _del_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        cached = self._prev_for_del(net.name, net.cni_version, rt)
        for plugin in reversed(net.plugins):
            try:
                self._run_one("DEL", net, plugin, cached, rt)
            except CNIError as err:
                raise wrap_error(err, f"plugin {describe(plugin)} failed (delete)")
        self._cache_del(net.name, rt)

    def gc_network_list(
        self, net: NetworkConfigList, valid_attachments: list[tuple[str, str]] | None = None
    ) -> None:
        """GC: DEL cached attachments of `net` not in `valid_attachments`, then plugin GC.

        `valid_attachments` is a list of (container_id, ifname); None means
        "none given" (cnitool): every cached attachment of the network is
        stale and plugins get no valid-attachments key. Plugin GC runs for
        configs >= 1.1.0. All errors are collected and raised together.
        """
        if net.disable_gc:
            return
        with self._lock(None):
            errors: list[CNIError] = []
            try:
                attachments = self.get_cached_attachments("")
            except (CNIError, OSError):
                return  # libcni: a failed listing ends GC successfully
            valid = None
            if valid_attachments is not None:
                valid = {(str(c), str(i)) for c, i in valid_attachments}
            for att in attachments:
                if att.network != net.name:
                    continue
                if valid is not None and (att.container_id, att.ifname) in valid:
                    continue
                rt = RuntimeConf(
                    att.container_id,
                    att.netns,
                    att.ifname,
                    att.cni_args,
                    att.capability_args,
                    self._cache_dir(),
                )
                try:
                    self._del_list(net, rt)
                except CNIError as err:
                    errors.append(
                        wrap_error(
                            err, f"failed to delete stale attachment {rt.container_id} {rt.ifname}"
                        )
                    )
            if _gte(net.cni_version, "1.1.0", strict=False):
                from pycni.spec import config

                va = (
                    None
                    if valid_attachments is None
                    else [(str(c), str(i)) for c, i in valid_attachments]
                )
                for plugin in net.plugins:
                    try:
                        request = _request(config.build_gc_request, plugin, net, va)
                    except CNIError as err:
                        errors.append(
                            wrap_error(
                                err, f"failed to generate configuration to GC plugin {plugin.type}"
                            )
                        )
                        continue
                    try:
                        self._exec(plugin.type, "GC", request, None)
                    except CNIError as err:
                        errors.append(wrap_error(err, f"failed to GC plugin {plugin.type}"))
            if self.locking:
                from pycni.runtime import lock

                lock.prune_container_locks(self._cache_dir())
            if errors:
                raise join_errors(errors)

    def get_status_network_list(self, net: NetworkConfigList) -> None:
        """STATUS every plugin in order (>= 1.1.0); the first error is raised as is."""
        if not _gte(net.cni_version, "1.1.0", strict=False):
            return
        from pycni.spec import config

        for plugin in net.plugins:
            try:
                request = _request(config.build_status_request, plugin, net)
            except CNIError as err:
                raise wrap_error(
                    err, f"failed to generate configuration to get plugin STATUS {plugin.type}"
                )
            self._exec(plugin.type, "STATUS", request, None)

    def get_network_list_cached_result(
        self, net: NetworkConfigList, rt: RuntimeConf
    ) -> Result | None:
        """The cached ADD result in the list's version, None if nothing is cached."""
        return self._cached_result(net.name, net.cni_version, rt)

    def get_network_list_cached_config(
        self, net: NetworkConfigList, rt: RuntimeConf
    ) -> tuple[bytes | None, RuntimeConf | None]:
        """(cached config bytes, rt with the cached CNI_ARGS and capability args)."""
        return self._cached_config(net.name, rt)

    def get_cached_attachments(self, container_id: str = "") -> list[Attachment]:
        """Cached attachments (all, or of one container), in file name order."""
        return cache.list_attachments(self._cache_dir(), container_id)

    # -- single plugin (legacy) --------------------------------------------

    def add_network(self, plugin: PluginConfig, rt: RuntimeConf) -> Result:
        """ADD one plugin, named and versioned by its own config (libcni's AddNetwork)."""
        from pycni.runtime.loader import list_from_conf

        net = list_from_conf(plugin)
        with self._lock(rt):
            self._before_add(net.name, rt)
            result = self._add_one(net, plugin, None, rt)
            self._cache_add(result, plugin.raw_bytes, plugin.name, rt)
            return result

    def check_network(self, plugin: PluginConfig, rt: RuntimeConf) -> None:
        from pycni.runtime.loader import list_from_conf

        _require_check(plugin.cni_version)
        net = list_from_conf(plugin)
        with self._lock(rt):
            cached = self._prev_for_check(plugin.name, plugin.cni_version, rt)
            self._run_one("CHECK", net, plugin, cached, rt)

    def del_network(self, plugin: PluginConfig, rt: RuntimeConf) -> None:
        from pycni.runtime.loader import list_from_conf

        net = list_from_conf(plugin)
        with self._lock(rt) as held:
            cached = self._prev_for_del(plugin.name, plugin.cni_version, rt)
            self._run_one("DEL", net, plugin, cached, rt)
            self._cache_del(plugin.name, rt)
            held.remove_container_lock()

    def get_network_cached_result(self, plugin: PluginConfig, rt: RuntimeConf) -> Result | None:
        return self._cached_result(plugin.name, plugin.cni_version, rt)

    def get_network_cached_config(
        self, plugin: PluginConfig, rt: RuntimeConf
    ) -> tuple[bytes | None, RuntimeConf | None]:
        return self._cached_config(plugin.name, rt)

    # -- validation --------------------------------------------------------

    def validate_network_list(self, net: NetworkConfigList) -> list[str]:
        """Check every plugin exists and supports the list's version; return the
        capabilities enabled in any plugin (sorted). Errors of all plugins are
        collected (`[err1 err2]`)."""
        errors = []
        caps: set[str] = set()
        for plugin in net.plugins:
            try:
                self._validate_plugin(plugin.type, net.cni_version)
            except CNIError as err:
                errors.append(err)
            caps.update(_capabilities(plugin))
        if errors:
            raise _bracket(errors)
        return sorted(caps)

    def validate_network(self, plugin: PluginConfig) -> list[str]:
        self._validate_plugin(plugin.type, plugin.cni_version)
        return sorted(_capabilities(plugin))

    def _validate_plugin(self, plugin_type: str, expected: str) -> None:
        expected = expected or "0.1.0"
        supported = self.get_version_info(plugin_type)
        if expected not in supported:
            raise UntypedError(f'plugin {plugin_type} does not support config version "{expected}"')

    def get_version_info(self, plugin_type: str) -> list[str]:
        """The spec versions a plugin supports (runs its VERSION)."""
        path = self.executor.find_in_path(plugin_type, self.path)
        return invoke.get_version_info(path, self.timeout, self.executor)


# -- helpers -----------------------------------------------------------------


def describe(plugin: PluginConfig) -> str:
    """libcni's pluginDescription: `type="bridge" name="x"`."""
    out = f"type={go_quote(plugin.type or '')}"
    if plugin.name:
        out += f" name={go_quote(plugin.name)}"
    return out


def join_errors(errors: list[CNIError]) -> CNIError:
    """Go's errors.Join: one error stays itself; several become one, newline-joined.

    The joined error keeps the list in `.errors`.
    """
    if len(errors) == 1:
        err = errors[0]
        err.errors = list(errors)  # type: ignore[attr-defined]
        return err
    joined = UntypedError("\n".join(str(e) for e in errors))
    joined.errors = list(errors)  # type: ignore[attr-defined]
    return joined


def _bracket(errors: list[CNIError]) -> CNIError:
    err = UntypedError("[" + " ".join(str(e) for e in errors) + "]")
    err.errors = list(errors)  # type: ignore[attr-defined]
    return err


def _capabilities(plugin: PluginConfig) -> set[str]:
    caps = plugin.capabilities or {}
    return {name for name, on in caps.items() if on is True}


def _gte(version_str: str, minimum: str, strict: bool = True) -> bool:
    """version >= minimum; an unparsable version raises (strict) or counts as False."""
    from pycni.spec import version

    try:
        return version.gte(version_str, minimum)
    except ValueError as err:
        if strict:
            raise UntypedError(str(err))
        return False


def _require_check(cni_version: str) -> None:
    if not _gte(cni_version, "0.4.0"):
        raise UntypedError(
            f'configuration version "{cni_version}" does not support the CHECK command'
        )


def _as_version(result: Result, cni_version: str) -> Result:
    """The result converted to `cni_version` (GetAsVersion)."""
    if result.cni_version == cni_version:
        return result
    from pycni.spec.result import Result as _Result

    try:
        return _Result.from_dict(result.to_dict(cni_version), cni_version)
    except CNIError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise UntypedError(str(err))


def _attachment_request(
    net: NetworkConfigList, plugin: PluginConfig, prev: Result | None, rt: RuntimeConf
) -> bytes:
    """The stdin of an ADD, CHECK or DEL of one plugin of `net`."""
    from pycni.spec import config

    return _request(
        config.build_request, plugin, net, capability_args=rt.capability_args, prev_result=prev
    )


def _request(builder, *args, **kwargs) -> bytes:
    """Call a config.build_*_request function; always bytes, errors as CNIError."""
    try:
        out = builder(*args, **kwargs)
    except CNIError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise UntypedError(str(err))
    if isinstance(out, str):
        return out.encode()
    if isinstance(out, dict):
        from pycni.spec.jsonutil import go_dumps

        return go_dumps(out, indent=False).encode()
    return bytes(out)
