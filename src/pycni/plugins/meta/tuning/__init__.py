"""The tuning meta plugin: sysctls and link attributes of a container interface.

A drop-in for the reference `tuning` (plugins.md 5.4): the same keys
(`sysctl`, `mac`, `promisc`, `mtu`, `txQLen`, `allmulti`, `dataDir`,
`runtimeConfig.mac`, CNI_ARGS `MAC`, `args.cni.*`), the same sysctl
allow-list (/etc/cni/tuning/allowlist.conf) and the same backup file, so
either implementation's DEL restores what the other's ADD changed. Beyond
the reference: everything is validated before anything is touched, a failed
ADD puts the sysctls and link attributes back and removes its backup, DEL
also cleans up when the netns or the link is gone, GC removes this
network's backups of attachments that are no longer valid, and STATUS
answers.

`conf` decodes the config, `backup` holds the backup file, `verbs` the verbs.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(about="CNI tuning plugin (pycni)", verbs="pycni.plugins.meta.tuning.verbs")


def main() -> None:
    plugin_main(PLUGIN)
