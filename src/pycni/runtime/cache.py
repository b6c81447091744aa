"""The result cache, byte-compatible with Go libcni.

One file per attachment, `<cacheDir>/results/<network>-<containerID>-<ifname>`,
holding a `cniCacheV1` record as Go's `json.Marshal` writes it (compact, struct
field order, map keys sorted, `<>&` escaped):

    {"kind":"cniCacheV1","containerId":...,"config":<base64 of the list bytes>,
     "ifName":...,"networkName":...,"netns":...,"cniArgs":[["K","V"]],
     "capabilityArgs":{...},"result":{...}}

(`netns`, `cniArgs`, `capabilityArgs` and `result` are left out when empty.)
Directories are created 0700, files 0600. Unlike libcni the file is written
atomically: a temporary file in the same directory, fsync'ed, then renamed
over the final name, so a crash never leaves a 0-byte cache (issue #1055).
Files that are not a `cniCacheV1` record are read as a legacy cache: a bare
result.
"""

from __future__ import annotations

import os

from pycni import fsutil
from pycni.faultpoint import step
from pycni.invoke import UntypedError
from pycni.spec.errors import CNIError

KIND = "cniCacheV1"
NAME_MAX = 255  # bytes in one file name, on every Linux file system a cache lives on
DEFAULT_CACHE_DIR = "/var/lib/cni"


class Attachment:
    """A cached attachment (libcni's NetworkAttachment)."""

    __slots__ = (
        "capability_args",
        "cni_args",
        "config",
        "container_id",
        "ifname",
        "netns",
        "network",
    )

    def __init__(
        self,
        container_id: str,
        network: str,
        ifname: str,
        config: bytes,
        netns: str = "",
        cni_args: list | None = None,
        capability_args: dict | None = None,
    ) -> None:
        self.container_id = container_id
        self.network = network
        self.ifname = ifname
        self.config = config
        self.netns = netns
        self.cni_args = cni_args
        self.capability_args = capability_args

    def __repr__(self) -> str:
        return (
            f"Attachment(container_id={self.container_id!r}, network={self.network!r}, "
            f"ifname={self.ifname!r}, netns={self.netns!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attachment):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def file_path(cache_dir: str, network: str, container_id: str, ifname: str) -> str:
    """`<cacheDir>/results/<network>-<containerID>-<ifname>` (libcni's getCacheFilePath)."""
    if not network or not container_id or not ifname:
        raise UntypedError(
            f'cache file path requires network name ("{network}"), container ID '
            f'("{container_id}"), and interface name ("{ifname}")'
        )
    for part in (network, container_id, ifname):
        if "/" in part or os.sep in part or "\0" in part or part in (".", ".."):
            raise UntypedError(f"invalid cache file name component {part!r}")
    name = f"{network}-{container_id}-{ifname}"
    if len(os.fsencode(name)) > NAME_MAX:
        raise CNIError(
            7,
            f"the cache file name {name!r} is {len(os.fsencode(name))} bytes, over the "
            f"{NAME_MAX} a file name may have: shorten the network name or the container ID",
        )
    return os.path.join(cache_dir or DEFAULT_CACHE_DIR, "results", name)


def encode(
    container_id: str,
    config: bytes,
    ifname: str,
    network: str,
    netns: str = "",
    cni_args: list | tuple | None = None,
    capability_args: dict | None = None,
    result: dict | None = None,
) -> bytes:
    """A cniCacheV1 record, byte for byte as Go's json.Marshal(&cachedInfo) writes it."""
    import binascii

    parts = [
        '{"kind":',
        go_json(KIND),
        ',"containerId":',
        go_json(container_id),
        ',"config":"',
        binascii.b2a_base64(config or b"", newline=False).decode(),
        '"',
        ',"ifName":',
        go_json(ifname),
        ',"networkName":',
        go_json(network),
    ]
    if netns:
        parts += [',"netns":', go_json(netns)]
    if cni_args:
        parts += [',"cniArgs":', go_json([[str(k), str(v)] for k, v in cni_args])]
    if capability_args:
        parts += [',"capabilityArgs":', go_json(capability_args)]
    if result:
        parts += [',"result":', go_json(result)]
    parts.append("}")
    return "".join(parts).encode()


def go_json(value: object) -> str:
    """Go's json.Marshal of a generic value: compact, map keys sorted, `<>&` escaped."""
    from pycni.spec.jsonutil import go_dumps

    return go_dumps(_sorted(value), indent=False)


def _sorted(value: object) -> object:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def decode(data: bytes) -> dict | None:
    """Parse a cniCacheV1 record into a dict with Python values; None if it is not one.

    Keys: kind, containerId, config (bytes), ifName, networkName, netns,
    cniArgs (list of (k, v) tuples or None), capabilityArgs (dict or None),
    result (dict or None). Go matches the keys case-insensitively; so do we.
    """
    from pycni.spec.jsonutil import go_loads

    try:
        doc = go_loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    try:
        rec = _fields(doc)
    except (TypeError, ValueError):
        return None
    if rec["kind"] != KIND:
        return None
    return rec


_FIELDS = (
    "kind",
    "containerId",
    "config",
    "ifName",
    "networkName",
    "netns",
    "cniArgs",
    "capabilityArgs",
    "result",
)


def _fields(doc: dict) -> dict:
    """Unmarshal into the cachedInfo shape; TypeError/ValueError where Go's would fail."""
    import binascii

    lower: dict = {}
    for key, value in doc.items():
        lower.setdefault(key.lower(), value)
    rec: dict = {}
    for name in _FIELDS:
        value = doc[name] if name in doc else lower.get(name.lower())
        if name in ("kind", "containerId", "ifName", "networkName", "netns"):
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise TypeError(name)
        elif name == "config":
            if value is None:
                value = None
            elif isinstance(value, str):
                value = binascii.a2b_base64(value.encode("ascii")) if value else b""
            else:
                raise TypeError(name)
        elif name == "cniArgs":
            if value is not None:
                if not isinstance(value, list):
                    raise TypeError(name)
                pairs = []
                for item in value:
                    if (
                        not isinstance(item, list)
                        or len(item) > 2
                        or not all(isinstance(x, str) for x in item)
                    ):
                        raise TypeError(name)
                    item = [*item, "", ""][:2]
                    pairs.append((item[0], item[1]))
                value = pairs
        elif value is not None and not isinstance(value, dict):  # capabilityArgs, result
            raise TypeError(name)
        rec[name] = value
    return rec


def write(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same dir, fsync, rename)."""
    directory = os.path.dirname(path)
    step("runtime.cache.write")
    make_dirs(directory)
    # The temporary name does not grow with the final one: any name that fits
    # the file system as a cache file can be written through it.
    tmp = os.path.join(directory, f"{_tmp_prefix(path)}{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        step("runtime.cache.rename")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def make_dirs(directory: str, mode: int = 0o700) -> None:
    """fsutil.make_dirs (Go's MkdirAll), failing as libcni words it."""
    try:
        fsutil.make_dirs(directory, mode)
    except NotADirectoryError as err:
        raise UntypedError(f"{err.filename} is not a directory")


def read(path: str) -> bytes | None:
    """The file's bytes, None if it cannot be read (libcni ignores read errors)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _tmp_prefix(path: str) -> str:
    """`.pycni-<crc32 of the file name, 8 hex>-`, shared by the temporaries of
    one cache file: its delete() finds those a writer killed before the rename left."""
    import binascii

    return f".pycni-{binascii.crc32(os.fsencode(os.path.basename(path))):08x}-"


def delete(path: str) -> None:
    """Remove the cache file and the temporaries left for it (the caller
    holds the container lock, so no live writer of this file owns one)."""
    step("runtime.cache.delete")
    try:
        os.unlink(path)
    except IsADirectoryError:  # an empty directory at the file's name goes too
        try:
            os.rmdir(path)
        except OSError:
            pass
    except OSError:
        pass
    directory, prefix = os.path.dirname(path), _tmp_prefix(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def add(
    cache_dir: str,
    network: str,
    container_id: str,
    ifname: str,
    config: bytes,
    netns: str = "",
    cni_args: list | tuple | None = None,
    capability_args: dict | None = None,
    result: dict | None = None,
) -> str:
    """Write the record of a successful ADD; returns the file path."""
    path = file_path(cache_dir, network, container_id, ifname)
    write(
        path,
        encode(container_id, config, ifname, network, netns, cni_args, capability_args, result),
    )
    return path


def load_result(data: bytes):
    """The cached Result of a record or of a legacy bare-result cache file.

    Raises CNIError (invalid JSON, empty file, unknown version).
    """
    from pycni.spec.result import Result

    rec = decode(data)
    try:
        if rec is None:
            return Result.from_json(data)
        return Result.from_dict(rec["result"] or {})
    except CNIError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise UntypedError(str(err))


def list_attachments(cache_dir: str, container_id: str = "") -> list[Attachment]:
    """libcni's GetCachedAttachments: every readable cniCacheV1 record, by file name.

    A missing results directory gives an empty list.
    """
    directory = os.path.join(cache_dir or DEFAULT_CACHE_DIR, "results")
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    out = []
    part = f"-{container_id}-"
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            continue  # our temporary files
        if container_id:
            pos = name.find(part)
            if pos <= 0 or pos + len(part) >= len(name):
                continue
        data = read(os.path.join(directory, name))
        if data is None:
            continue
        rec = decode(data)
        if rec is None:
            continue
        if container_id and rec["containerId"] != container_id:
            continue
        if not rec["ifName"] or not rec["networkName"]:
            continue
        out.append(
            Attachment(
                rec["containerId"],
                rec["networkName"],
                rec["ifName"],
                rec["config"],
                rec["netns"],
                rec["cniArgs"],
                rec["capabilityArgs"],
            )
        )
    return out
