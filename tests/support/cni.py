"""CNI test data shared across test folders: config builders (conflists,
test plugin configs, a bridge network on host-local) and readers of what
the plugins and the runtime leave on disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

# --- configs -------------------------------------------------------------------------------


def conflist(name: str, plugins: list[dict], version: str = "1.1.0", **extra: object) -> dict:
    doc: dict = {"cniVersion": version, "name": name, "plugins": plugins}
    doc.update(extra)
    return doc


def plugin(
    ptype: str = "testplugin", tag: str | None = None, log: Path | None = None, **extra: object
) -> dict:
    """A test plugin (support/testplugin.py) config object."""
    obj: dict = {"type": ptype}
    if tag:
        obj["tag"] = tag
    if log is not None:
        obj["log"] = str(log)
    obj.update(extra)
    return obj


def bridge_conflist(
    name: str,
    bridge: str,
    subnet: str,
    data_dir: Path | str,
    cni_version: str = "1.1.0",
    **ipam,
) -> dict:
    """A conflist of one gateway `bridge` plugin whose host-local IPAM (data in
    `data_dir`) hands out `subnet`; `ipam` adds keys to the IPAM config."""
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(data_dir),
                    "ranges": [[{"subnet": subnet}]],
                    **ipam,
                },
            }
        ],
    }


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


# --- what is left on disk ------------------------------------------------------------------


def reservations(data_dir: Path | str, network: str) -> list[str]:
    """The addresses host-local holds for `network` (file names in its store,
    sorted); [] when the store does not exist."""
    store = Path(data_dir) / network
    if not store.exists():
        return []
    return sorted(
        p.name
        for p in store.iterdir()
        if p.name != "lock" and not p.name.startswith("last_reserved")
    )


def read_log(path: Path) -> list[dict]:
    """The calls a test plugin logged (one JSON object per line)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cache_files(cache_dir: Path) -> list[str]:
    """The names of the runtime's cached results."""
    results = cache_dir / "results"
    if not results.is_dir():
        return []
    return sorted(p.name for p in results.iterdir())


def file_mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)
