"""The fault matrix's namespaces are named pycflt-<tag>-<hex>, their lo left down."""

from __future__ import annotations

import pytest

from support.faults import PREFIX


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": PREFIX, "lo_up": False}
