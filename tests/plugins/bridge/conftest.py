"""Fixtures for the bridge plugin tests.

Every kernel test runs with the test thread in a sandbox host netns
(`host_ns`), so the plugin processes it starts create their bridge, veths,
sysctls and nftables/iptables rules there; containers are `netns_factory()`
namespaces. A CNI_PATH directory holds an executable `host-local` that runs
pycni's host-local.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from support.bridge import Net
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
    d = tmp_path / "ipam"
    d.mkdir()
    return d


@pytest.fixture
def brname() -> str:
    """A bridge name unique per test, short enough for "<br>.<vlan>"."""
    return "pyb" + secrets.token_hex(3)


@pytest.fixture
def net(host_ns, brname, data_dir, cni_path) -> Net:
    return Net(brname, data_dir, cni_path)
