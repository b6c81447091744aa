"""Fixtures of the runtime tests: installed test plugins, a log, a CNIConfig."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rt_helpers import install_plugins


@pytest.fixture
def plugin_dir(cni_dirs) -> Path:
    """cni_dirs["bin"] with the test plugin installed under its type names."""
    return install_plugins(cni_dirs["bin"])


@pytest.fixture
def plugin_log(tmp_path) -> Path:
    return tmp_path / "plugin-log.jsonl"


@pytest.fixture
def cni(plugin_dir, cni_dirs):
    from pycni.runtime import CNIConfig

    return CNIConfig(path=[str(plugin_dir)], cache_dir=str(cni_dirs["cache"]), timeout=30)
