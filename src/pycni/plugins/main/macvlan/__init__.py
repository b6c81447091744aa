"""The macvlan plugin: a macvlan of a host interface as the container's interface.

A drop-in for the reference `macvlan` (plugins.md 3.3): keys master (the
default-route interface when empty), mode (bridge, private, vepa,
passthru), mtu, mac (and CNI_ARGS MAC and runtimeConfig.mac), bcqueuelen,
linkInContainer, ipam (none: an L2 interface, just set up), dns. Beyond the
reference: an ADD that fails after creating the macvlan deletes it again,
also when IPAM failed (the reference leaves it behind), and a bad master,
mode, MTU or MAC is a config error naming the key before anything changes.

`conf` decodes the config, `verbs` holds the verbs; the shared story of
stacked links is pycni.plugins.pkg.sublink.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI macvlan plugin (pycni)", verbs="pycni.plugins.main.macvlan.verbs")


def main() -> None:
    plugin_main(PLUGIN)
