"""Loading network configurations from a directory (libcni's conf.go).

`load_network_conf(dir, name)` is libcni's LoadNetworkConf: every `.conflist`
in the directory, sorted by path, is parsed (with its sibling plugin folder)
and the first whose name matches wins -- any broken conflist aborts the
lookup, as in libcni. Then the deprecated single-plugin `.conf`/`.json` files
are tried and a match is up-converted to a one-plugin list.

`load_all_networks(dir)` is for listing: every config file with its parsed
list or the error that makes it unusable.
"""

from __future__ import annotations

import os

from pycni.runtime.invoke import UntypedError
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.config import NetworkConfigList, PluginConfig

DEFAULT_CONF_DIR = "/etc/cni/net.d"


class NotFoundError(UntypedError):
    """No network of that name in the directory (libcni's NotFoundError)."""

    def __init__(self, directory: str, name: str) -> None:
        super().__init__(f'no net configuration with name "{name}" in {directory}')
        self.dir = directory
        self.name = name


class NoConfigsFoundError(UntypedError):
    """No configuration files at all (libcni's NoConfigsFoundError)."""

    def __init__(self, directory: str) -> None:
        super().__init__(f"no net configurations found in {directory}")
        self.dir = directory


def conf_files(directory: str, extensions: list[str] | tuple[str, ...]) -> list[str]:
    """libcni's ConfFiles (sorted): regular files whose extension is one of `extensions`.

    A missing directory gives an empty list; other errors raise.
    """
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except OSError as err:
        raise UntypedError(f"open {directory}: {_strerror(err)}")
    out = []
    for entry in entries:
        try:
            if entry.is_dir():
                continue
        except OSError:
            continue
        name = entry.name
        dot = name.rfind(".")
        if dot >= 0 and name[dot:] in extensions:
            out.append(os.path.join(directory, name))
    out.sort()
    return out


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise UntypedError(f"error reading {path}: open {path}: {_strerror(err)}")


def network_conf_from_bytes(data: bytes) -> NetworkConfigList:
    """libcni's NetworkConfFromBytes (no sibling folder)."""
    from pycni.spec import config

    return _call(config.network_config_list_from_bytes, data)


def plugin_conf_from_bytes(data: bytes) -> PluginConfig:
    """libcni's NetworkPluginConfFromBytes."""
    from pycni.spec import config

    return _call(config.plugin_config_from_bytes, data)


def network_plugin_confs_from_files(directory: str, network: str) -> list[PluginConfig]:
    """Plugins of the drop-in folder `<directory>/<network>/*.conf`, sorted by file name."""
    folder = os.path.join(directory, network)
    try:
        files = conf_files(folder, (".conf",))
    except CNIError as err:
        raise UntypedError(f"failed to read plugin config files in {folder}: {err}")
    return [plugin_conf_from_bytes(_read(f)) for f in files]


def network_conf_from_file(path: str) -> NetworkConfigList:
    """libcni's NetworkConfFromFile: parse a conflist and append its sibling folder."""
    net = network_conf_from_bytes(_read(path))
    if not net.load_only_inlined_plugins:  # the name was validated: a safe folder name
        extra = network_plugin_confs_from_files(os.path.dirname(path), net.name)
        if extra:
            net.plugins = [*net.plugins, *extra]
    if not net.plugins:
        raise UntypedError("no plugin configs found")
    return net


def load_conf(directory: str, name: str) -> PluginConfig:
    """libcni's deprecated LoadConf over `.conf` and `.json` single-plugin files."""
    files = conf_files(directory, (".conf", ".json"))
    if not files:
        raise NoConfigsFoundError(directory)
    for path in files:
        plugin = plugin_conf_from_bytes(_read(path))
        if plugin.name == name:
            return plugin
    raise NotFoundError(directory, name)


def list_from_conf(plugin: PluginConfig) -> NetworkConfigList:
    """libcni's ConfListFromConf: a one-plugin list named after the plugin."""
    from pycni.spec import config

    return _call(config.list_from_single_conf, plugin)


def load_network_conf(directory: str, name: str) -> NetworkConfigList:
    """libcni's LoadNetworkConf: the network `name` from `directory`.

    Raises NoConfigsFoundError, NotFoundError, or the error of the first
    conflist (or single config) that does not parse.
    """
    files = conf_files(directory, (".conflist",))
    for path in files:
        net = network_conf_from_file(path)
        if net.name == name:
            return net
    try:
        plugin = load_conf(directory, name)
    except NoConfigsFoundError:
        if files:
            raise NotFoundError(directory, name) from None
        raise
    return list_from_conf(plugin)


def load_all_networks(directory: str) -> list[tuple[str, NetworkConfigList | CNIError]]:
    """Every config file of `directory` with its network or the error that breaks it.

    Order is lookup order (conflists, then `.conf`/`.json`, each sorted). A
    network whose name is not valid (it names files) counts as broken.
    Raises only if the directory cannot be listed.
    """
    out: list[tuple[str, NetworkConfigList | CNIError]] = []
    for path in conf_files(directory, (".conflist",)):
        try:
            out.append((path, network_conf_from_file(path)))
        except CNIError as err:
            out.append((path, err))
    for path in conf_files(directory, (".conf", ".json")):
        try:
            out.append((path, list_from_conf(plugin_conf_from_bytes(_read(path)))))
        except CNIError as err:
            out.append((path, err))
    return out


def _call(func, arg):
    try:
        return func(arg)
    except CNIError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise UntypedError(str(err))


def _strerror(err: OSError) -> str:
    text = err.strerror or str(err)
    return text[:1].lower() + text[1:]
