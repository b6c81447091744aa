"""Fixtures of the sbr tests: namespaces named sbr-*, the Go reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.sbr import GO_SBR


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "sbr"}


@pytest.fixture
def go_sbr(root) -> str:
    """/usr/lib/cni/sbr (Debian's 1.1.1 build), or skip."""
    if not os.access(GO_SBR, os.X_OK):
        pytest.skip(f"Go reference plugin {GO_SBR} not installed")
    return str(Path(GO_SBR))
