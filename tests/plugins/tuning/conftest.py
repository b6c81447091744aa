"""Fixtures for the tuning plugin tests.

Each kernel test runs inside a sandbox host netns (`host_ns`); the
container (`ct`) is a netns holding the veth `eth0` that tuning changes,
its peer inside too. Namespaces are named "tun-...".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.tuning import make_container


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "tun"}


@pytest.fixture
def ct(host_ns, netns_factory):
    return make_container(netns_factory)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Where the backups go; not created: ADD creates it (mode 0600)."""
    return tmp_path / "tuning"
