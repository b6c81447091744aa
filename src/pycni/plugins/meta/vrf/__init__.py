"""The vrf meta plugin (plugins.md 5.6): put CNI_IFNAME into a VRF.

Chained after an interface plugin: finds or creates the VRF `vrfname`
(routing table `table`, or the lowest one no other VRF of the netns uses)
in the container netns, enslaves the interface to it, keeps its global IPv6
addresses and moves its routes into the VRF's table; several interfaces
may share one VRF. DEL releases the interface and deletes the VRF with its
last member. Beyond the reference: a failed ADD is undone (the interface
leaves the VRF with its routes back in the main table, a VRF it created is
deleted), DEL succeeds when the netns or the interface is gone, a kernel
without VRF support is named as such, and config errors are code 7.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main
from pycni.spec.version import ALL

PLUGIN = Plugin(
    about="CNI vrf plugin (pycni)",
    supported=ALL[ALL.index("0.3.1") :],
    verbs="pycni.plugins.meta.vrf.verbs",
)


def main() -> None:
    plugin_main(PLUGIN)
