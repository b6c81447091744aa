"""Fixtures for the tap tests: namespaces named "hd-..." (test_tap.py runs
every test from a sandbox host netns: its pytestmark)."""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "hd"}
