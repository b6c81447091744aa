"""The sbr (source-based routing) meta plugin (plugins.md 5.5).

Chained after an interface plugin, it makes traffic from each address of
CNI_IFNAME leave through that interface: a rule `from <ip> lookup <table>`
per address, and (without a configured `table`) the interface's routes moved
from the main table into a fresh table per address. DEL removes the rules
whose source is an address of the interface; CHECK, GC and STATUS succeed.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI sbr plugin (pycni)", verbs="pycni.plugins.meta.sbr.verbs")


def main() -> None:
    plugin_main(PLUGIN)
