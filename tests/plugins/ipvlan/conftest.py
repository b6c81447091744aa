"""Fixtures of the ipvlan plugin tests: namespaces named mv-* (shared with
macvlan, ipvlan and vlan: support.sublink); cni_path, data_dir and the
sandbox `uplink` to stack ipvlans on come from tests/plugins/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "mv"}
