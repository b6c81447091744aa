"""Fixtures every plugin folder shares: a CNI_PATH that runs pycni's
host-local (for the plugins that delegate IPAM to it), a host-local data
dir, and the sublink plugins' uplink. A folder's conftest.py overrides a
fixture of the same name (host_local's data_dir, tuning's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.plugin_dirs import write_launcher


@pytest.fixture
def cni_path(tmp_path: Path) -> list[str]:
    """A CNI_PATH with an executable `host-local` launching pycni's host-local."""
    bindir = tmp_path / "cnibin"
    bindir.mkdir()
    write_launcher(bindir / "host-local", "pycni.plugins.ipam.host_local")
    return [str(bindir)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """host-local's dataDir, inside the test's tmp_path (gone with it)."""
    d = tmp_path / "ipam"
    d.mkdir()
    return d


@pytest.fixture
def uplink(host_ns) -> str:
    """The sandbox host's veth `mvup0` (the default route's interface) that
    macvlan, ipvlan and vlan stack their links on (support.sublink)."""
    from support.sublink import UPLINK, make_uplink

    make_uplink()
    return UPLINK
