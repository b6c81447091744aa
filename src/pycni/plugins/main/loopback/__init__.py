"""The loopback plugin: bring `lo` up in the container (plugins.md 3.7).

CNI_IFNAME is ignored, the interface is always `lo`. ADD sets it up and
returns its first IPv4 and IPv6 address (or passes a prevResult through
unchanged); DEL sets it down and succeeds without a netns or when the netns
is gone; CHECK verifies it is up.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI loopback plugin (pycni)", verbs="pycni.plugins.main.loopback.verbs")


def main() -> None:
    plugin_main(PLUGIN)
