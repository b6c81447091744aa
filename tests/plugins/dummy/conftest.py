"""Fixtures for the dummy tests: namespaces named "hd-..." (test_dummy.py runs
every test from a sandbox host netns: its pytestmark)."""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "hd"}
