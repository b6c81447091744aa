"""Fixtures for the bandwidth plugin tests.

Every kernel test runs with the test thread in a sandbox host netns
(`host_ns`, named bw-host-<hex>); `att` is a veth pair made there by hand,
its container end `eth0` in a `bw-ct-<hex>` netns, standing in for the
interface plugin the bandwidth plugin is chained after.
"""

from __future__ import annotations

import pytest

from support.bandwidth import Attachment


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "bw"}


@pytest.fixture
def att(host_ns, container_ns) -> Attachment:
    return Attachment(container_ns)
