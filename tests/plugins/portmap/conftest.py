"""Fixtures for the portmap plugin tests.

Each kernel test runs inside a sandbox host netns (`host_ns`) or, for the
differential tests, in twin sandbox host netns entered in turn; the rules
portmap programs go there. portmap never enters the container netns, so
most tests give CNI_NETNS a path that does not exist (`ct`); the traffic
tests make real containers with the bridge plugin. Namespaces are named
"pm-...", links "pm...".
"""

from __future__ import annotations

import pytest


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "pm"}


class GoneNetns:
    """A CNI_NETNS that does not exist: portmap must not need it."""

    path = "/run/netns/pm-gone"
    name = "pm-gone"


@pytest.fixture
def ct() -> GoneNetns:
    return GoneNetns()
