"""The tap plugin: a persistent tap device in the container.

A drop-in for the reference `tap` (plugins.md 3.9): `mac`, `mtu`, `owner`,
`group`, `multiQueue`, `selinuxContext`, `bridge` (a bridge inside the
container netns the tap becomes a port of), optional IPAM, the MAC from
CNI_ARGS or runtimeConfig. The tap is made through /dev/net/tun ioctls
opened inside the container netns (no `ip tuntap` process), with the tun
flags each of the reference's two creation paths gives it. Beyond the
reference: `selinuxContext` is ignored on a system without SELinux, a
failed ADD leaves neither the tap nor the address behind, and bad keys
are config errors naming the key.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI tap plugin (pycni)", verbs="pycni.plugins.main.tap.verbs")


def main() -> None:
    plugin_main(PLUGIN)
