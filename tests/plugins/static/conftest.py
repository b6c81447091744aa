"""Fixtures of the static IPAM tests: a netns path and runners for both plugin sets."""

from __future__ import annotations

import os

import pytest

from pycni.skel.testing import PluginRunner

from support.static import GO_STATIC, PLUGIN


@pytest.fixture(scope="session")
def st_netns(session_netns_factory) -> str:
    """Any netns other than the test's own: static never enters it, but skel
    refuses CNI_NETNS equal to the plugin's own namespace on ADD/DEL."""
    return session_netns_factory("st").path


@pytest.fixture
def runner(st_netns: str) -> PluginRunner:
    return PluginRunner(PLUGIN, netns=st_netns, container_id="ctr1", ifname="eth0")


@pytest.fixture
def go_runner(st_netns: str) -> PluginRunner:
    if not os.access(GO_STATIC, os.X_OK):
        pytest.skip(f"Go reference plugin {GO_STATIC} not installed")
    return PluginRunner(str(GO_STATIC), netns=st_netns, container_id="ctr1", ifname="eth0")
