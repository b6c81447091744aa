"""Fixtures of the real-runtime tests: podman and containerd running on a
plugin dir of pycni's plugins (Go stand-ins for the types pycni does not
ship yet), each test in a sandbox host netns ("rt-host-*") and a private
mount namespace, with every path the runtime writes in a temp dir.

Each test runs twice: `pycni`, and `go` (the Go reference plugins only),
the control that tells a pycni failure from a harness or kernel limit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import rt_containerd
import rt_image
import rt_podman
from rt_plugins import PLUGIN_SETS, PluginDir, make_plugin_dir, missing_go


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "rt"}


@pytest.fixture(scope="session")
def rt_images(tmp_path_factory) -> dict[str, Path]:
    """The busybox image: rootfs tarball and OCI archive, built once."""
    if why := rt_image.busybox_missing():
        pytest.skip(why)
    d = tmp_path_factory.mktemp("rt-image")
    rootfs = rt_image.rootfs_tar(d / "rootfs.tar")
    return {"rootfs": rootfs, "oci": rt_image.oci_archive(rootfs, d / "oci.tar")}


@pytest.fixture
def rt_workdir() -> Iterator[Path]:
    """A short temp dir (unix socket paths must stay under 108 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="rt-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=PLUGIN_SETS)
def plugin_set(request) -> str:
    return request.param


def _plugins(work: Path, plugin_set: str, types: tuple[str, ...]) -> PluginDir:
    if absent := missing_go(types):
        pytest.skip(f"Go reference plugins missing in /usr/lib/cni: {absent}")
    return make_plugin_dir(work / "bin", plugin_set, types)


#: podman probes once per session whether this machine can run a container
_PODMAN_PROBE: dict[str, str | None] = {}


@pytest.fixture
def podman(host_ns, rt_workdir, rt_images, plugin_set) -> Iterator[rt_podman.Podman]:
    """A private podman with the busybox image imported; `plugins` attribute:
    the PluginDir it runs."""
    if why := rt_podman.missing():
        pytest.skip(why)
    plugins = _plugins(rt_workdir, plugin_set, rt_podman.NEEDED_TYPES)
    pm = rt_podman.Podman(rt_workdir / "podman", plugins)
    try:
        pm("import", str(rt_images["rootfs"]), rt_podman.IMAGE)
        if "verdict" not in _PODMAN_PROBE:
            # no network plugin involved: a failure here is the machine's
            probe = pm(
                *pm.run_args("--rm", "--network", "none", rt_podman.IMAGE, "true"), check=False
            )
            _PODMAN_PROBE["verdict"] = probe.stderr.strip() if probe.returncode else None
        if _PODMAN_PROBE["verdict"]:
            pytest.skip(f"podman cannot run a container here: {_PODMAN_PROBE['verdict']}")
        yield pm
    finally:
        pm.close()


_CTR_PROBE: dict[str, str | None] = {}


@pytest.fixture
def containerd(host_ns, rt_workdir, rt_images, plugin_set) -> Iterator[rt_containerd.Containerd]:
    """A private containerd with the busybox image imported; `conf_dir` is
    what ctr sees as /etc/cni/net.d, `plugins` the PluginDir it runs."""
    if why := rt_containerd.missing():
        pytest.skip(why)
    plugins = _plugins(rt_workdir, plugin_set, ("bridge", "host-local", "portmap", "loopback"))
    conf_dir = rt_workdir / "net.d"
    conf_dir.mkdir()
    ctrd = rt_containerd.Containerd(rt_workdir / "containerd", plugins, conf_dir)
    try:
        ctrd.ctr("image", "import", str(rt_images["oci"]))
        if "verdict" not in _CTR_PROBE:
            argv = ["run", "--rm", "--null-io", "--cgroup", f"/{ctrd.cgroup}/probe"]
            probe = ctrd.ctr(*argv, rt_containerd.IMAGE, "probe", "true", check=False)
            _CTR_PROBE["verdict"] = (
                (probe.stdout + probe.stderr).strip() if probe.returncode else None
            )
        if _CTR_PROBE["verdict"]:
            pytest.skip(f"containerd cannot run a container here: {_CTR_PROBE['verdict']}")
        yield ctrd
    finally:
        ctrd.close()
