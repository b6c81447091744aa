"""pycni's built-in default network: used when no config dir is given."""

from __future__ import annotations

import json

DEFAULT_NAME = "pycni"
DEFAULT_BRIDGE = "pycni0"
DEFAULT_SUBNET = "198.18.0.0/24"


def default_network_bytes(data_dir: str | None = None) -> bytes:
    """A bridge + host-local + portmap conflist (a runtime passes port
    mappings as the `portMappings` capability); `data_dir` overrides
    host-local's store."""
    ipam: dict = {"type": "host-local", "ranges": [[{"subnet": DEFAULT_SUBNET}]]}
    if data_dir:
        ipam["dataDir"] = data_dir
    conf = {
        "cniVersion": "1.1.0",
        "name": DEFAULT_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": DEFAULT_BRIDGE,
                "isGateway": True,
                "isDefaultGateway": True,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(conf, indent=2).encode()


def loopback_network_bytes() -> bytes:
    """What containerd and CRI-O run for every sandbox to bring `lo` up."""
    return json.dumps(
        {"cniVersion": "1.1.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}
    ).encode()


def default_network(data_dir: str | None = None):
    from pycni.spec.config import network_config_list_from_bytes

    return network_config_list_from_bytes(default_network_bytes(data_dir))


def loopback_network():
    from pycni.spec.config import network_config_list_from_bytes

    return network_config_list_from_bytes(loopback_network_bytes())
