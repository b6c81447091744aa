"""Fixtures of the fault-matrix tests: a pycflt host netns the test thread
runs in, container netns, plugin launchers of this checkout."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from faultkit import Netns, install_launchers
from sandbox import entered


@pytest.fixture
def flt_netns() -> Iterator:
    created: list[Netns] = []

    def make(tag: str) -> Netns:
        ns = Netns(tag)
        created.append(ns)
        return ns

    yield make
    for ns in reversed(created):
        ns.close()


@pytest.fixture
def flt_host(flt_netns) -> Iterator[Netns]:
    """A sandbox host netns (pycflt-host-*) that the test thread runs inside."""
    ns = flt_netns("host")
    with entered(ns):
        yield ns


@pytest.fixture
def flt_bin(tmp_path: Path) -> Path:
    return install_launchers(tmp_path / "bin")
