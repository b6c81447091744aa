"""Fixtures for the bridge plugin tests.

Every kernel test runs with the test thread in a sandbox host netns
(`host_ns`), so the plugin processes it starts create their bridge, veths,
sysctls and nftables/iptables rules there; containers are `netns_factory()`
namespaces. cni_path (an executable `host-local` that runs pycni's
host-local) and data_dir come from tests/plugins/conftest.py.
"""

from __future__ import annotations

import secrets

import pytest

from support.bridge import Net


@pytest.fixture
def brname() -> str:
    """A bridge name unique per test, short enough for "<br>.<vlan>"."""
    return "pyb" + secrets.token_hex(3)


@pytest.fixture
def net(host_ns, brname, data_dir, cni_path) -> Net:
    return Net(brname, data_dir, cni_path)
