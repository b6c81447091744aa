"""Fixtures of the ptp tests: namespaces named pt-*, the test thread in a
sandbox host netns, a CNI_PATH with pycni's host-local (cni_path and
data_dir: tests/plugins/conftest.py)."""

from __future__ import annotations

import pytest

from support.ptp import Net


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "pt"}


@pytest.fixture
def net(host_ns, data_dir, cni_path) -> Net:
    return Net(data_dir, cni_path)
