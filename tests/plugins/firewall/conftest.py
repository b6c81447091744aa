"""Fixtures for the firewall plugin tests.

Each kernel test runs inside a sandbox host netns (`host_ns`), where the
plugin's iptables and nftables rules go; the container netns (`ct`) only
gives CNI_NETNS a value different from the plugin's own namespace.
Namespaces are named "fw-...".
"""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "fw"}


@pytest.fixture
def ct(host_ns, netns_factory):
    return netns_factory("ct")
