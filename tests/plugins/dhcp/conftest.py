"""Fixtures of the dhcp tests: one sandbox LAN with dnsmasq and one of our
daemons per module (support.dhcp_lan); every netns, process and file goes in
teardown."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.dhcp_lan import FAST, Daemon, Lan


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "dh"}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dh-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def lan(workdir: Path) -> Iterator[Lan]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed")
    lan = Lan(workdir)
    try:
        lan.start_dnsmasq()
        yield lan
    finally:
        lan.close()


@pytest.fixture(scope="module")
def daemon(lan: Lan, workdir: Path) -> Iterator[Daemon]:
    """Our daemon, shared by the module's tests."""
    d = Daemon(lan, workdir / "run" / "dhcp.sock", *FAST)
    yield d
    d.stop()
