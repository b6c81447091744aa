"""The portmap plugin: host ports forwarded to the container (plugins.md 5.1).

A chained plugin: ADD installs DNAT (and hairpin/localhost masquerade)
rules for `runtimeConfig.portMappings` and passes prevResult through; DEL
removes this container's rules (also without mappings or prevResult);
CHECK verifies them; GC removes iptables chains of containers that are no
longer valid. Without a "backend" key, pycni uses the backend that the
backend-specific options (externalSetMarkChain, conditions) are written
for, else nftables when the kernel has nf_tables (the reference defaults
to iptables).
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI portmap plugin (pycni)", verbs="pycni.plugins.meta.portmap.verbs")


def main() -> None:
    plugin_main(PLUGIN)
