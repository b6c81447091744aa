"""Fixtures of the ptp tests: namespaces named pt-*, the test thread in a
sandbox host netns, a CNI_PATH with pycni's host-local."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.plugin_dirs import write_launcher
from support.ptp import Net


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "pt"}


@pytest.fixture
def cni_path(tmp_path: Path) -> list[str]:
    """A CNI_PATH with an executable `host-local` launching pycni's host-local."""
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
def net(host_ns, data_dir, cni_path) -> Net:
    return Net(data_dir, cni_path)
