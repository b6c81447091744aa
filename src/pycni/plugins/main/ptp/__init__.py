"""The ptp plugin: a routed veth pair per container, no bridge.

A drop-in for the reference `ptp` (plugins.md 3.2): IPAM first, then a veth
pair whose container end carries the IPAM addresses with every route,
same-subnet peers included, via the gateway as an on-link /32 (/128) host
route; the host end carries the gateway address and a host route to each
container address. Beyond the reference: an ADD that fails leaves nothing
behind (veth pair, IPAM reservation, masquerade rules), DEL succeeds
without a netns, an interface or IPAM and removes the masquerade rules also
when the interface is gone, GC removes this network's stale masquerade
rules and is forwarded to IPAM, and config errors are code 7 naming the key.

`conf` decodes the config, `links` holds the kernel steps, `verbs` the verbs.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI ptp plugin (pycni)", verbs="pycni.plugins.main.ptp.verbs")


def main() -> None:
    plugin_main(PLUGIN)
