"""Fixtures for the host-local tests: a data dir, a netns path, a runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycni.skel.testing import PluginRunner

from support.host_local import PLUGIN


@pytest.fixture(scope="session")
def hl_netns(session_netns_factory) -> str:
    """Any netns other than the test's own: host-local never enters it, but
    skel refuses CNI_NETNS equal to the plugin's own namespace on ADD/DEL."""
    return session_netns_factory("hl").path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def runner(hl_netns: str) -> PluginRunner:
    return PluginRunner(PLUGIN, netns=hl_netns, container_id="ctr1", ifname="eth0")
