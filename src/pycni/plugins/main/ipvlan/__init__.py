"""The ipvlan plugin: an ipvlan of a host interface (sharing its MAC) in the container.

A drop-in for the reference `ipvlan` (plugins.md 3.4): keys master (the
default-route interface when empty, or, chained without master, the single
named interface of prevResult), mode (l2, l3, l3s), mtu, linkInContainer,
ipam (or, chained without one, prevResult's IPs), dns; and, beyond the
reference (its issue #1032), `flag`: bridge (default), private or vepa.
Beyond the reference: a failed ADD deletes the link again, config errors
are found before anything changes, and a kernel without ipvlan gives an
error naming CONFIG_IPVLAN.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI ipvlan plugin (pycni)", verbs="pycni.plugins.main.ipvlan.verbs")


def main() -> None:
    plugin_main(PLUGIN)
