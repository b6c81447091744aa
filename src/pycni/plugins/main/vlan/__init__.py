"""The vlan plugin: an 802.1Q VLAN link of a host interface in the container.

A drop-in for the reference `vlan` (plugins.md 3.5): keys master
(required), vlanId (0-4094), mtu (at most the master's), linkInContainer,
ipam (required), dns. Beyond the reference: DEL succeeds when the master is
gone (the reference's loadConf fails it), a failed ADD deletes the link
again, config errors are found before anything changes, and a kernel
without 802.1Q gives an error naming CONFIG_VLAN_8021Q.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI vlan plugin (pycni)", verbs="pycni.plugins.main.vlan.verbs")


def main() -> None:
    plugin_main(PLUGIN)
