"""Fixtures for the kernel-layer tests.

Every test that touches the kernel runs inside the sandbox namespaces of
tests/conftest.py (`host_ns`, `netns_factory`); nothing here touches the real
host namespace.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from nlfake import FakeSocket

from pycni.kernel.netlink import RtNetlink


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")


@pytest.fixture
def nl(root, host_ns) -> Iterator[RtNetlink]:
    """An RtNetlink socket in the sandbox host netns the test thread is in."""
    with RtNetlink() as sock:
        yield sock


@pytest.fixture
def ifname():
    """Unique interface names (<= 15 chars): ifname("br") -> "pycbr1a2b3c"."""

    def make(tag: str = "if") -> str:
        return f"pyc{tag[:5]}{secrets.token_hex(3)}"

    return make


@pytest.fixture
def fake():
    """(RtNetlink over a FakeSocket, the FakeSocket)."""
    sock = FakeSocket()
    return RtNetlink._with_socket(sock), sock
