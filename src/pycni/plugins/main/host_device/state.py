"""What the host side looked like before ADD: `<dataDir>/<containerID>_<ifname>.json`.

The ifalias carries the host name (what the Go plugin reads); the rest of
the host-side state that a move into another netns loses, or that ADD
overwrites, is kept here so DEL can give it back: whether the device was
up, its own alias, and its MAC (to find a device the kernel handed back
after the container netns died, also without prevResult). Like tuning's
backups it lives under /run by default (`dataDir`): it describes this
boot only.

Best effort: an attachment without the file (made by the Go plugin, or the
file could not be written) is restored as the reference does, down and
without alias.
"""

from __future__ import annotations

import os

from pycni.faultpoint import step
from pycni.fsutil import make_dirs, remove_file, write_atomic
from pycni.spec.jsonutil import go_dumps, go_loads

STATE_DIR = "/run/cni/host-device"


def path_of(container_id: str, ifname: str, state_dir: str) -> str:
    return os.path.join(state_dir, f"{container_id}_{ifname}.json")


def save(path: str, name: str, mac: str, up: bool, alias: str) -> None:
    """Write atomically (temp file, fsync, rename), mode 0600."""
    make_dirs(os.path.dirname(path), 0o700)
    data = go_dumps({"name": name, "mac": mac, "up": up, "alias": alias}, indent=False)
    step("host-device.add.state")
    write_atomic(path, data.encode())


def load(path: str) -> dict | None:
    """The saved state; None when there is none or it is unreadable."""
    try:
        with open(path, "rb") as f:
            doc = go_loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return None
    return {
        "name": doc["name"],
        "mac": doc.get("mac") if isinstance(doc.get("mac"), str) else "",
        "up": doc.get("up") is True,
        "alias": doc.get("alias") if isinstance(doc.get("alias"), str) else "",
    }


def remove(path: str) -> None:
    """The state file, and the temp file of a save that was killed."""
    remove_file(path)
    remove_file(path + ".tmp")
