"""host-local IPAM: addresses from local range sets, one file per address.

A drop-in replacement for the reference plugin: same configuration, same
results and the same on-disk store (see store.py), so the Go plugin and this
one can share a data directory. Beyond the reference: an ADD is
all-or-nothing (a failure releases exactly what that ADD reserved), CHECK
verifies that every range set holds an address of the attachment, GC
releases the reservations of attachments that are no longer valid, and
STATUS fails (code 50) when a range set is exhausted.

Modules: verbs.py (the verbs), config.py (configuration), allocator.py
(ranges, range sets, iteration), store.py (files and locking), dns.py
(resolv.conf). skel imports verbs.py only when a verb runs, so VERSION and
the about text cost nothing.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="pycni host-local IPAM plugin", verbs="pycni.plugins.ipam.host_local.verbs")


def main() -> None:
    plugin_main(PLUGIN)
