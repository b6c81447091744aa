"""Rootful podman 4.3 on its CNI backend, private to one test.

All of podman's state is in the test's temp dir: storage (--root,
--runroot, driver vfs), libpod's tmp dir, the network config dir, the
events log; the plugin dir is `cni_plugin_dirs`. What podman 4.3 does not
let us move (libcni's cache and host-local's store under /var/lib/cni, the
image blob cache /var/lib/containers/cache, netns files under /run/netns,
the shm lock) is hidden by the private mount namespace (rt_mountns).
Containers run in a cgroup of their own (`--cgroup-parent`), removed after.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
from pathlib import Path

from rt_mountns import MountNamespace
from rt_plugins import PluginDir
from rt_state import remove_cgroup

IMAGE = "localhost/rt-busybox:latest"
#: what a podman bridge network's conflist runs (containers/common v0.50)
NEEDED_TYPES = ("bridge", "host-local", "portmap", "firewall", "tuning", "loopback")


def missing() -> str | None:
    for tool in ("podman", "conmon", "runc", "nsenter", "unshare"):
        if not shutil.which(tool):
            return f"{tool} not installed (Debian packages podman, runc, util-linux: make deps)"
    return None


def _ulimit(kind: int, want: int) -> str:
    """podman asks for the highest limits by default, which fails without
    CAP_SYS_RESOURCE (as in this workplace's VMs): ask for no more than
    the hard limit we have."""
    _, hard = resource.getrlimit(kind)
    value = want if hard == resource.RLIM_INFINITY else min(want, hard)
    return f"{value}:{value}"


def containers_conf(work: Path, plugin_dir: Path) -> str:
    nofile = _ulimit(resource.RLIMIT_NOFILE, 1024)
    nproc = _ulimit(resource.RLIMIT_NPROC, 4096)
    return f"""\
[containers]
default_ulimits = ["nofile={nofile}", "nproc={nproc}"]
log_driver = "k8s-file"

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugin_dir}"]
network_config_dir = "{work / "netconf"}"
default_subnet = "198.19.199.0/24"

[engine]
# crun 1.8 refuses hybrid (v1 + v2) cgroup hosts; runc takes them
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{work / "libpod"}"
image_copy_tmp_dir = "{work / "tmp"}"
volume_path = "{work / "volumes"}"
"""


class Podman:
    """podman with a private config, storage and mount namespace."""

    def __init__(self, work: Path, plugins: PluginDir) -> None:
        self.work = work
        self.plugins = plugins
        for d in ("root", "runroot", "libpod", "tmp", "netconf", "volumes", "cni", "containers"):
            (work / d).mkdir(parents=True, exist_ok=True)
        self.cni_dir = work / "cni"
        self.netconf = work / "netconf"
        self.cgroup = f"rt-podman-{secrets.token_hex(4)}"
        (work / "containers.conf").write_text(containers_conf(work, plugins.path))
        (work / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{work / "runroot"}"\n'
            f'graphroot = "{work / "root"}"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(work / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"),
            "TMPDIR": str(work / "tmp"),
        }
        self.ns = MountNamespace(
            work / "mnt",
            {"/var/lib/cni": self.cni_dir, "/var/lib/containers": work / "containers"},
        )

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root", str(self.work / "root"),
            "--runroot", str(self.work / "runroot"),
            "--tmpdir", str(self.work / "libpod"),
            "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            *args,
        ]  # fmt: skip

    def __call__(self, *args: str, timeout: float = 60, check: bool = True):
        return self.ns.run(self.argv(*args), timeout=timeout, check=check, env=self.env)

    def run_args(self, *args: str) -> list[str]:
        """`podman run` arguments every test container gets."""
        return ["run", "--cgroup-parent", f"/{self.cgroup}", *args]

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", "--type", "container", name).stdout)[0]

    def close(self) -> None:
        """Remove every container and network, then what is left by force:
        processes in the test's cgroup, the cgroup, the mount namespace."""
        try:
            self("rm", "--all", "--force", "--time", "0", timeout=60, check=False)
            nets = self("network", "ls", "--quiet", check=False).stdout.split()
            for net in nets:
                if net != "podman":
                    self("network", "rm", "--force", net, check=False)
        except subprocess.TimeoutExpired:
            pass
        finally:
            remove_cgroup(self.cgroup)
            self.ns.close()
