"""Fixtures of the CLI tests: test plugins in CNI_PATH, a clean cnitool env."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "runtime"))

from rt_helpers import install_plugins


@pytest.fixture
def cli(cni_dirs, monkeypatch, tmp_path):
    """The environment of a cnitool-style run: NETCONFPATH, CNI_PATH, no stray vars."""
    install_plugins(cni_dirs["bin"])
    monkeypatch.setenv("CNI_PATH", str(cni_dirs["bin"]))
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
