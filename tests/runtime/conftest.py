"""Fixtures of the runtime tests: a plugin log, a CNIConfig on plugin_dir."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def plugin_log(tmp_path) -> Path:
    return tmp_path / "plugin-log.jsonl"


@pytest.fixture
def cni(plugin_dir, cni_dirs):
    from pycni.runtime import CNIConfig

    return CNIConfig(path=[str(plugin_dir)], cache_dir=str(cni_dirs["cache"]), timeout=30)
