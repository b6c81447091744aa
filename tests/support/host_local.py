"""Shared helpers of the host-local tests."""

from __future__ import annotations

import os
from pathlib import Path

PLUGIN = "pycni.plugins.ipam.host_local"
NET = "hlnet"


def make_conf(
    data_dir: Path | str,
    ranges: list | None = None,
    *,
    version: str = "1.1.0",
    name: str = NET,
    **ipam,
) -> dict:
    """A host-local network config with `ipam` keys; ranges default to one /24."""
    body = {"type": "host-local", "dataDir": str(data_dir)}
    if ranges is None and "subnet" not in ipam:
        ranges = [[{"subnet": "198.18.0.0/24"}]]
    if ranges is not None:
        body["ranges"] = ranges
    body.update(ipam)
    return {"cniVersion": version, "name": name, "type": "host-local", "ipam": body}


def store_files(data_dir: Path | str, name: str = NET) -> dict[str, bytes]:
    """name -> content of every file in the network's store directory."""
    d = Path(data_dir) / name
    if not d.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def reservations(data_dir: Path | str, name: str = NET) -> dict[str, bytes]:
    """Only the address files."""
    return {
        k: v
        for k, v in store_files(data_dir, name).items()
        if k != "lock" and not k.startswith(("last_reserved_ip.", "."))
    }


def mode(path: Path | str) -> int:
    return os.stat(path).st_mode & 0o777
