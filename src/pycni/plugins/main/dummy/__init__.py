"""The dummy plugin: a `dummy` link in the container, addressed by IPAM.

A drop-in for the reference `dummy` (plugins.md 3.8): IPAM is required,
the link is created directly under CNI_IFNAME inside the container netns,
and the result keeps the IPAM plugin's DNS. Beyond the reference: a kernel
without dummy links gives an error naming CONFIG_DUMMY, a failed ADD
leaves neither the link nor the address behind, and DEL succeeds when the
netns or the link is gone.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI dummy plugin (pycni)", verbs="pycni.plugins.main.dummy.verbs")


def main() -> None:
    plugin_main(PLUGIN)
