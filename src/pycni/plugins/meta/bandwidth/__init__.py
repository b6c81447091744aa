"""The bandwidth meta plugin: shape a container's traffic with TBF qdiscs (plugins.md 5.2).

A drop-in for the reference `bandwidth` (1.1.1), chained after a plugin
that gives the container a veth (bridge, ptp): same keys and capability
(`runtimeConfig.bandwidth`), same kernel objects, same result. Rates are
bits/s and bursts bits; "ingress" is traffic into the container, "egress"
traffic from it.

* Ingress: a TBF (rate/8 bytes/s, burst/8 bytes, latency 25 ms) as root
  qdisc of the host veth, found as the peer of CNI_IFNAME inside the netns
  and matched by name against prevResult's host interfaces.
* Egress: an IFB `bwp<hash>` (("bwp" + hex SHA-512(network + containerID))[:15]),
  up, with the host veth's MTU and queue length 0; an ingress qdisc on the
  host veth whose u32 filter (prio 1, protocol all, classid 1:1, match
  everything) redirects every packet to the IFB with mirred -- twice, as
  the reference's netlink library installs it; the same TBF on the IFB. The
  IFB is appended to the result's interfaces.

Beyond the reference: a failed ADD leaves no qdisc and no IFB behind (the
reference leaves what it made before the failing step); rates under 8
bits/s and bursts lasting under a microsecond, which the kernel refuses,
are config errors (code 7) before anything is touched; without any
bandwidth and without prevResult ADD prints an empty result (the reference
crashes); CHECK looks at the root qdisc and the redirect filter rather than
at whatever qdisc the kernel lists first, and accepts the buffer as the
kernel caps it (bursts that last over 4.29 s fail the reference's CHECK);
DEL never fails on the bandwidth values (only the IFB's name matters) and
leaves a link of the IFB's name alone unless it is an IFB.

GC: the IFB's name hashes network name and container ID, so a name alone
cannot say which network an IFB belongs to. ADD therefore gives each IFB
the alias "pycni bandwidth <network>", and GC deletes the IFBs with this
network's alias whose name is not the hash of the network and a valid
attachment's container ID. IFBs without that alias -- made by the
reference plugin, or for a network whose name makes the alias longer than
the kernel's 255 bytes -- are never touched. Without
`cni.dev/valid-attachments` GC does nothing. STATUS always succeeds.

`shapedSubnets`/`unshapedSubnets` (an HTB variant merged after 1.1.1 and
reverted before 1.6.0) are unknown keys to 1.1.1, which ignores them: so
does this plugin, and it shapes all traffic of the veth.

`conf` decodes the config, `shaping` holds the kernel steps, `verbs` the
verbs; the qdisc and filter messages are pycni.kernel.tc's.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main
from pycni.spec.version import versions_from

PLUGIN = Plugin(
    about="CNI bandwidth plugin (pycni)",
    supported=versions_from("0.3.0"),
    verbs="pycni.plugins.meta.bandwidth.verbs",
)


def main() -> None:
    plugin_main(PLUGIN)
