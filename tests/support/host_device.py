"""Helpers of the host-device tests (tests/plugins/host_device): make the
"host device" (one end of a veth pair in the sandbox host, never a device
of the real host), run a plugin (Go's or ours, optionally with a sysfs of
the sandbox mounted over /sys, for `kernelpath`), read the kernel state back.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from pycni.skel.testing import Outcome, run_plugin

from support.sandbox import ip, ip_json

PLUGIN = "pycni.plugins.main.host_device"
GO = "/usr/lib/cni/host-device"
DEV = "hdv0"
MAC = "02:00:5e:48:44:01"
IFNAME = "net1"
NETWORK = "hdnet"


class HD:
    """Helpers bound to one test's namespaces and temporary folder; the
    test thread is in the sandbox host netns."""

    def __init__(self, netns_factory, tmp_path: Path) -> None:
        self.netns_factory = netns_factory
        self.tmp = tmp_path
        self.container_id = "hd-" + secrets.token_hex(4)
        #: the plugin's state folder (`dataDir`), never the host's /run/cni
        self.data_dir = tmp_path / "hdstate"

    def state_file(self, ifname: str = IFNAME) -> Path:
        from pycni.plugins.main.host_device import state

        return Path(state.path_of(self.container_id, ifname, str(self.data_dir)))

    def device(self, name: str = DEV, mac: str = MAC, up: bool = True) -> None:
        """A veth `name` (peer `<name>p`) in the sandbox host."""
        ip("link", "add", name, "address", mac, "type", "veth", "peer", "name", name + "p")
        if up:
            ip("link", "set", name, "up")

    def container(self, tag: str = "ct"):
        return self.netns_factory(tag)

    def conf(self, side: str = "py", version: str = "1.0.0", ipam: bool = False, **keys) -> dict:
        """A host-device config; `ipam` adds host-local with a data dir per `side`."""
        c: dict = {
            "cniVersion": version,
            "name": NETWORK,
            "type": "host-device",
            "dataDir": str(self.data_dir),
        }
        if ipam:
            c["ipam"] = {
                "type": "host-local",
                "subnet": "198.18.40.0/24",
                # with "gw": Go 1.1.1's CHECK cannot match a route without one
                "routes": [{"dst": "198.19.0.0/16", "gw": "198.18.40.1"}],
                "dataDir": str(self.tmp / f"ipam-{side}"),
            }
        c.update(keys)
        return c

    def run(
        self,
        command: str,
        conf: dict,
        ct,
        plugin: str = PLUGIN,
        ifname: str = IFNAME,
        sysfs: bool = False,
        netns: str | None = None,
        args: str = "",
        path: str = "/usr/lib/cni",
        env: dict | None = None,
    ) -> Outcome:
        if sysfs:
            plugin = self._with_sysfs(plugin)
        return run_plugin(
            plugin,
            command,
            conf,
            netns=netns if netns is not None else ct.path,
            container_id=self.container_id,
            ifname=ifname,
            args=args,
            path=[path],
            env=env,
        )

    def _with_sysfs(self, plugin: str) -> str:
        """A wrapper that runs `plugin` in a private mount namespace with a
        sysfs of the sandbox netns on /sys (the real /sys shows the real
        host's devices)."""
        if os.sep in plugin:
            real = [plugin]
        else:
            real = [sys.executable, "-c", f"from {plugin} import main; main()"]
        script = self.tmp / ("sysfs-" + os.path.basename(plugin).replace(".", "-"))
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in real)
        script.write_text(
            "#!/bin/sh\nexec unshare -m --propagation private sh -c "
            "'mount -t sysfs none /sys && exec \"$@\"' sh " + quoted + "\n"
        )
        script.chmod(0o755)
        return str(script)

    @staticmethod
    def link(name: str, ct=None) -> dict | None:
        """What we compare of link `name` in ct (or the sandbox host); None if absent."""
        try:
            links = ip_json("-d", "link", "show", "dev", name, netns=ct.name if ct else None)
        except RuntimeError:
            return None
        if not links:
            return None
        link = links[0]
        return {
            "name": link["ifname"],
            "mac": link["address"],
            "up": "UP" in link["flags"],
            "alias": link.get("ifalias", ""),
            "mtu": link["mtu"],
        }

    @staticmethod
    def addrs(name: str, ct) -> list[str]:
        out = []
        for link in ip_json("addr", "show", "dev", name, netns=ct.name):
            for a in link.get("addr_info", []):
                if a.get("scope") == "global":
                    out.append(f"{a['local']}/{a['prefixlen']}")
        return sorted(out)

    @staticmethod
    def routes(ct) -> list[str]:
        return sorted(
            r["dst"] for r in ip_json("route", "show", netns=ct.name) if r.get("dst") != "default"
        )

    @staticmethod
    def normalize(result: dict | None, ct) -> dict | None:
        from support.differential import normalize

        return normalize(result, ct.path)

    def reservations(self, side: str = "py") -> list[str]:
        folder = self.tmp / f"ipam-{side}" / NETWORK
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.name[0].isdigit())
