"""Fixtures for the tap tests: namespaces named "hd-..."."""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "hd"}


@pytest.fixture(autouse=True)
def _in_sandbox(host_ns):
    """Plugins run from a sandbox host netns: a mistake cannot touch the real one."""
    yield
