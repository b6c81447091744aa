"""The host-device plugin: move an existing host interface into the container.

A drop-in for the reference `host-device` (plugins.md 3.6). The device is
selected by `device`, `hwaddr`, `kernelpath`, `pciBusID` or the runtime's
`deviceID`, moved into the container netns and renamed to CNI_IFNAME in one
RTM_SETLINK, with its host name kept in the link's ifalias (what the Go
plugin reads, so either implementation can DEL the other's attachment).
A device bound to a userspace (DPDK) driver is not moved. DEL moves it back
under its host name and clears the alias. Beyond the reference: DEL
succeeds when the netns is gone (a physical device the kernel handed back
to this namespace gets its name back) and when run twice, and a failed ADD
puts the device back with its name, alias and up state.

`conf` decodes the config and finds the device, `move` moves it in and
out, `verbs` holds the verbs.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(
    about="CNI host-device plugin (pycni)", verbs="pycni.plugins.main.host_device.verbs"
)


def main() -> None:
    plugin_main(PLUGIN)
