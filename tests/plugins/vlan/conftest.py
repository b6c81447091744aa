"""Fixtures of the vlan plugin tests: the test thread runs in a sandbox
host netns (`host_ns`) with an uplink veth `mvup0` (the default route's
interface) to stack VLANs on; a CNI_PATH runs pycni's host-local."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.plugin_dirs import write_launcher
from support.sublink import make_uplink


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "mv"}


@pytest.fixture
def cni_path(tmp_path: Path) -> list[str]:
    bindir = tmp_path / "cnibin"
    bindir.mkdir()
    write_launcher(bindir / "host-local", "pycni.plugins.ipam.host_local")
    return [str(bindir)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ipam"
    d.mkdir()
    return d


@pytest.fixture
def uplink(host_ns) -> str:
    make_uplink()
    return "mvup0"
