"""Fixtures of the sql IPAM tests: a database path, a netns path, a runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycni.skel.testing import PluginRunner

from support.sql_ipam import PLUGIN


@pytest.fixture(scope="session")
def sq_netns(session_netns_factory) -> str:
    """Any netns other than the test's own: sql never enters it, but skel
    refuses CNI_NETNS equal to the plugin's own namespace on ADD/DEL."""
    return session_netns_factory("pysq").path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ipam.db"


@pytest.fixture
def runner(sq_netns: str) -> PluginRunner:
    return PluginRunner(PLUGIN, netns=sq_netns, container_id="pysq-c1", ifname="eth0")
