"""The backup of a link's attributes: `<dataDir>/<containerID>_<ifname>.json`.

The file is the reference's, byte for byte (json.MarshalIndent with a
one-space indent, keys mac, promisc, mtu, allmulti, txQLen, only those
configured, no trailing newline, mode 0600 in a directory created 0600), so
the Go plugin's DEL restores from a backup pycni wrote and the other way
round.

pycni adds a GC marker, `<dataDir>/pycni-gc/<network>/<containerID>_<ifname>`
(empty): the backup's name does not say which network wrote it, and the
folder is shared by every network using the default dataDir, so GC may
only remove backups its own network's ADD recorded. The reference never
lists dataDir, so the extra folder is invisible to it.
"""

from __future__ import annotations

import os

from pycni.faultpoint import step
from pycni.fsutil import make_dirs, remove_file, write_atomic
from pycni.spec.jsonutil import ci_get, go_dumps, go_loads

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.link import Link
    from pycni.plugins.meta.tuning.conf import TuningConf

GC_DIR = "pycni-gc"
# (key, type): the fields of the reference's configToRestore, in its order.
FIELDS = (("mac", str), ("promisc", bool), ("mtu", int), ("allmulti", bool), ("txQLen", int))


def path_of(data_dir: str, container_id: str, ifname: str) -> str:
    return os.path.join(data_dir, f"{container_id}_{ifname}.json")


def marker_of(data_dir: str, network: str, container_id: str, ifname: str) -> str:
    return os.path.join(data_dir, GC_DIR, network, f"{container_id}_{ifname}")


def snapshot(link: Link, conf: TuningConf) -> dict:
    """The current values of the attributes `conf` changes (what DEL puts
    back). As in the reference, an empty MAC and an MTU of 0 are left out."""
    saved: dict = {}
    if conf.mac and link.mac:
        saved["mac"] = link.mac
    if conf.promisc:
        saved["promisc"] = link.promisc
    if conf.mtu and link.mtu:
        saved["mtu"] = link.mtu
    if conf.allmulti is not None:
        from pycni.kernel.link import IFF_ALLMULTI  # loaded by the ADD that calls this

        saved["allmulti"] = bool(link.flags & IFF_ALLMULTI)
    if conf.txqlen is not None:
        saved["txQLen"] = link.txqlen
    return saved


def encode(saved: dict) -> bytes:
    """json.MarshalIndent(configToRestore, "", " ") of the reference."""
    lines = [f' "{key}": {go_dumps(saved[key], indent=False)}' for key, _ in FIELDS if key in saved]
    if not lines:
        return b"{}"
    return ("{\n" + ",\n".join(lines) + "\n}").encode()


def decode(data: bytes) -> dict | None:
    """The attributes a backup holds, as the reference reads them (keys
    matched case-insensitively; "" / 0 / null mean not saved); None when the
    file is not a valid backup."""
    try:
        doc = go_loads(data)
    except ValueError:
        return None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        return None
    saved: dict = {}
    for key, kind in FIELDS:
        value = ci_get(doc, key)
        if value is None:
            continue
        if type(value) is not kind:
            return None
        if value == "" or (key == "mtu" and value == 0):
            continue
        saved[key] = value
    return saved


def tmp_of(path: str) -> str:
    """The temp file of write() (fsutil.write_atomic's name)."""
    return path + ".tmp"


def read(path: str) -> bytes | None:
    """The file's bytes; None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write(path: str, data: bytes) -> None:
    """Replace `path` atomically (temp file `<path>.tmp`, fsync, rename),
    mode 0600; its folder is created 0600 when missing, as the reference
    does. The temp name is fixed so that DEL can remove one a killed ADD
    left (the runtime never runs two ADDs of one attachment at once)."""
    make_dirs(os.path.dirname(path), 0o600)
    step("tuning.backup.write")
    write_atomic(path, data)


def write_marker(path: str) -> None:
    make_dirs(os.path.dirname(path), 0o700)
    step("tuning.backup.marker")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def remove(path: str) -> None:
    """Remove a file; one that is already gone is fine."""
    remove_file(path)


def put_back(path: str, old: bytes | None) -> None:
    """Undo write(): the previous content again, or no file."""
    if old is None:
        remove(path)
    else:
        write(path, old)
