"""Loading network configurations from a directory (libcni's conf.go).

`load_network_conf(dir, name)` is libcni's LoadNetworkConf: every `.conflist`
in the directory, sorted by path, is parsed (with its sibling plugin folder)
and the first whose name matches wins -- any broken conflist aborts the
lookup, as in libcni. Then the deprecated single-plugin `.conf`/`.json` files
are tried and a match is up-converted to a one-plugin list.

`load_all_networks(dir)` is for listing: every config file with its parsed
list or the error that makes it unusable.

Unlike libcni, names that are FIFOs, sockets or devices are skipped without
being opened (libcni blocks forever reading a FIFO); a failed lookup names
them.
"""

from __future__ import annotations

import os

from pycni.invoke import UntypedError
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


class NotRegularFile(UntypedError):
    """A config file name that is a FIFO, socket or device: skipped, never opened
    (reading a FIFO would block, and libcni would hang on it)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file: skipped")
        self.path = path
        self.kind = kind


def conf_files(directory: str, extensions: list[str] | tuple[str, ...]) -> list[str]:
    """libcni's ConfFiles (sorted): the files whose extension is one of `extensions`.

    Directories (also through a symlink) are left out, and so are FIFOs,
    sockets and devices (see `scan_conf_files`). A missing directory gives an
    empty list; other errors raise.
    """
    return scan_conf_files(directory, extensions)[0]


def scan_conf_files(
    directory: str, extensions: list[str] | tuple[str, ...]
) -> tuple[list[str], list[NotRegularFile]]:
    """`conf_files` and the files it skipped as not regular, both sorted.

    Only stat() is used to tell: nothing is opened. A name whose stat fails
    (a dangling symlink, a symlink loop) is kept, so that reading it reports
    the error and stops a lookup, as in libcni.
    """
    import stat

    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return [], []
    except OSError as err:
        raise UntypedError(f"open {directory}: {_strerror(err)}")
    out = []
    skipped = []
    for entry in entries:
        name = entry.name
        dot = name.rfind(".")
        if dot < 0 or name[dot:] not in extensions:
            continue
        path = os.path.join(directory, name)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            out.append(path)
            continue
        if stat.S_ISDIR(mode):
            continue
        if stat.S_ISREG(mode):
            out.append(path)
        else:
            skipped.append(NotRegularFile(path, _file_kind(mode)))
    out.sort()
    skipped.sort(key=lambda err: err.path)
    return out, skipped


def _file_kind(mode: int) -> str:
    import stat

    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def _read(path: str) -> bytes:
    # O_NONBLOCK: a FIFO put in the file's place after the scan must not
    # block the open.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise UntypedError(f"error reading {path}: open {path}: {_strerror(err)}")
    with open(fd, "rb") as f:
        import stat

        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, _file_kind(mode))
        try:
            return f.read()
        except OSError as err:
            raise UntypedError(f"error reading {path}: read {path}: {_strerror(err)}")


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
    return _load_conf(directory, name, *scan_conf_files(directory, (".conf", ".json")))


def _load_conf(
    directory: str, name: str, files: list[str], skipped: list[NotRegularFile]
) -> PluginConfig:
    if not files:
        raise _noted(NoConfigsFoundError(directory), skipped)
    for path in files:
        plugin = plugin_conf_from_bytes(_read(path))
        if plugin.name == name:
            return plugin
    raise _noted(NotFoundError(directory, name), skipped)


def _noted(err: CNIError, skipped: list[NotRegularFile]) -> CNIError:
    """`err` with a note naming the files skipped as not regular (they may be
    why the network was not found)."""
    if skipped:
        names = ", ".join(f"{os.path.basename(s.path)} ({s.kind[2:]})" for s in skipped)
        err.msg += f" (skipped, not regular files: {names})"
    return err


def list_from_conf(plugin: PluginConfig) -> NetworkConfigList:
    """libcni's ConfListFromConf: a one-plugin list named after the plugin."""
    from pycni.spec import config

    return _call(config.list_from_single_conf, plugin)


def load_network_conf(directory: str, name: str) -> NetworkConfigList:
    """libcni's LoadNetworkConf: the network `name` from `directory`.

    Raises NoConfigsFoundError, NotFoundError, or the error of the first
    conflist (or single config) that does not parse.
    """
    files, skipped = scan_conf_files(directory, (".conflist",))
    for path in files:
        net = network_conf_from_file(path)
        if net.name == name:
            return net
    singles, single_skipped = scan_conf_files(directory, (".conf", ".json"))
    skipped = sorted(skipped + single_skipped, key=lambda err: err.path)
    try:
        plugin = _load_conf(directory, name, singles, skipped)
    except NoConfigsFoundError:
        if files:
            raise _noted(NotFoundError(directory, name), skipped) from None
        raise
    return list_from_conf(plugin)


def load_all_networks(directory: str) -> list[tuple[str, NetworkConfigList | CNIError]]:
    """Every config file of `directory` with its network or the error that breaks it.

    Order is lookup order (conflists, then `.conf`/`.json`, each sorted). A
    network whose name is not valid (it names files) counts as broken. Files
    that are not regular (FIFOs, ...) come with a `NotRegularFile`, in their
    place in the order, though lookups skip them.
    Raises only if the directory cannot be listed.
    """
    out: list[tuple[str, NetworkConfigList | CNIError]] = []
    for extensions, load in (
        ((".conflist",), network_conf_from_file),
        ((".conf", ".json"), lambda path: list_from_conf(plugin_conf_from_bytes(_read(path)))),
    ):
        files, skipped = scan_conf_files(directory, extensions)
        group: list[tuple[str, NetworkConfigList | CNIError]] = [(s.path, s) for s in skipped]
        for path in files:
            try:
                group.append((path, load(path)))
            except CNIError as err:
                group.append((path, err))
        group.sort(key=lambda item: item[0])
        out += group
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
