"""Fixtures for the kernel-layer tests.

Every test that touches the kernel runs inside the sandbox namespaces of
support/fixtures.py (`host_ns`, `netns_factory`); nothing here touches the
real host namespace.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from pycni.kernel.netlink import RtNetlink

from support.netlink import FakeSocket


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
