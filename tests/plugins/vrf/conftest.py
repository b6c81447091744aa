"""Fixtures of the vrf tests: namespaces named vr-*."""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "vr"}
