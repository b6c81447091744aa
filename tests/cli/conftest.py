"""Fixtures of the CLI tests: test plugins in CNI_PATH, a clean cnitool env."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(plugin_dir, cni_dirs, monkeypatch, tmp_path):
    """The environment of a cnitool-style run: NETCONFPATH, CNI_PATH, no stray vars."""
    monkeypatch.setenv("CNI_PATH", str(plugin_dir))
    for key in (
        "CNI_ARGS",
        "CAP_ARGS",
        "CNI_IFNAME",
        "TESTPLUGIN_VERSIONS",
        "TESTPLUGIN_NO_VERSION",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return cni_dirs
