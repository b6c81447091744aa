"""The CNI runtime library, the equivalent of Go's libcni.

    from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

    net = load_network_conf("/etc/cni/net.d", "mynet")
    cni = CNIConfig(path=["/opt/cni/bin"], cache_dir="/var/lib/cni", timeout=30)
    rt = RuntimeConf("ctr1", "/run/netns/ctr1", "eth0")
    result = cni.add_network_list(net, rt)
    cni.del_network_list(net, rt)

Names are loaded on first use: plugins import `pycni.invoke` to
delegate, and must not pay for the rest.
"""

from __future__ import annotations

_EXPORTS = {
    "CNIConfig": "api",
    "RuntimeConf": "api",
    "Attachment": "cache",
    "load_network_conf": "loader",
    "load_all_networks": "loader",
    "network_conf_from_file": "loader",
    "network_conf_from_bytes": "loader",
    "NotFoundError": "loader",
    "NoConfigsFoundError": "loader",
    "PluginTimeoutError": "pycni.invoke",
    "UntypedError": "pycni.invoke",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pycni.runtime' has no attribute {name!r}")
    if "." not in module:
        module = f"pycni.runtime.{module}"
    mod = __import__(module, fromlist=[name])
    value = getattr(mod, name)
    globals()[name] = value
    return value
