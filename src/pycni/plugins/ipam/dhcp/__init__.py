"""dhcp IPAM: addresses leased from a DHCP server by a long-running daemon.

One executable, as in the reference (plugins.md 4.3): `dhcp daemon [flags]`
is the lease keeper (daemon.py: one thread per lease, lease.py, running a
DHCPv4 client on a packet socket inside the container's netns, client.py and
packet.py); plain `dhcp` is the CNI plugin, a thin client that asks the
daemon over its unix socket (verbs.py: ADD and CHECK -> DHCP.Allocate, DEL
-> DHCP.Release). Both speak the reference's Go net/rpc + gob protocol
(gob.py, rpc.py, wire.py), so either side can be the Go binary.

skel imports verbs.py only when a verb runs; the daemon's modules are never
imported by a plugin process.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="pycni dhcp IPAM plugin", verbs="pycni.plugins.ipam.dhcp.verbs")


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "daemon":
        from pycni.plugins.ipam.dhcp.daemon import main as daemon_main

        sys.exit(daemon_main(sys.argv[2:]))
    plugin_main(PLUGIN)
