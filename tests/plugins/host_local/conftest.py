"""Fixtures for the host-local tests: a data dir, a netns path, a runner."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from host_local_helpers import PLUGIN

from pycni.skel.testing import PluginRunner


@pytest.fixture(scope="session")
def hl_netns() -> Iterator[str]:
    """Any netns other than the test's own: host-local never enters it, but
    skel refuses CNI_NETNS equal to the plugin's own namespace on ADD/DEL."""
    from sandbox import Netns

    ns = Netns("hl")
    yield ns.path
    ns.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def runner(hl_netns: str) -> PluginRunner:
    return PluginRunner(PLUGIN, netns=hl_netns, container_id="ctr1", ifname="eth0")
