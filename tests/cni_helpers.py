"""CNI test data shared across test folders: a bridge network's config and
what its host-local store holds.

Imported like `sandbox` (tests/ is on sys.path, see conftest.py).
"""

from __future__ import annotations

from pathlib import Path


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
