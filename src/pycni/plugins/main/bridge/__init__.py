"""The bridge plugin: a veth pair per container, the host end on a Linux bridge.

A drop-in for the reference `bridge` (plugins.md 3.1): same config keys, same
kernel objects, same result. Beyond the reference: an ADD that fails leaves
nothing behind (the veth pair, the IPAM reservation and the masquerade and
spoof-check rules it added are removed again), DEL also cleans masquerade
and spoof-check rules when the netns is already gone, GC removes this
network's stale masquerade rules and is forwarded to IPAM, STATUS is
forwarded to IPAM, and errors name the object and namespace involved.

`conf` decodes the config, `links` holds the kernel steps of the bridge and
its ports, `verbs` the verbs, `check` CHECK.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI bridge plugin (pycni)", verbs="pycni.plugins.main.bridge.verbs")


def main() -> None:
    plugin_main(PLUGIN)
