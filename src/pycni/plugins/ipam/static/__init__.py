"""static IPAM: the addresses, routes and DNS a config (or runtime) names.

A drop-in replacement for the reference plugin: `ipam.addresses`, `routes`
and `dns`, CNI_ARGS `IP`/`GATEWAY`, `args.cni.ips` and `runtimeConfig.ips`
with the reference's precedence. Nothing is allocated, so DEL, GC and
STATUS have nothing to do. Beyond the reference: a gateway that does not
parse or is of the other family than its address is refused when the
config is read, naming the key, instead of surfacing as a kernel error in
the interface plugin.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="pycni static IPAM plugin", verbs="pycni.plugins.ipam.static.verbs")


def main() -> None:
    plugin_main(PLUGIN)
