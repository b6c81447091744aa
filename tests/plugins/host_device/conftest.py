"""Fixtures for the host-device tests.

The test thread runs in a sandbox host netns (`host_ns`); namespaces are
named "hd-...". `hd` holds the helpers (support.host_device.HD).
"""

from __future__ import annotations

import pytest

from support.host_device import HD


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "hd"}


@pytest.fixture
def hd(host_ns, netns_factory, tmp_path):
    return HD(netns_factory, tmp_path)
