"""Fixtures of the sql daemon tests: a short temp dir (unix socket paths
are limited to 107 bytes), a netns path for skel, and a daemon."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.sql_daemon import SqlDaemon


@pytest.fixture(scope="session")
def sd_netns(session_netns_factory) -> str:
    """Any netns other than the test's own: sql never enters it, but skel
    refuses CNI_NETNS equal to the plugin's own namespace on ADD/DEL."""
    return session_netns_factory("pysd").path


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pysd-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(workdir: Path) -> Iterator[SqlDaemon]:
    d = SqlDaemon(workdir / "run" / "sql.sock")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def served(workdir: Path):
    """A daemon's Server and Service in this process (threads), for tests
    that need to reach inside: (socket path, server, service)."""
    from pycni.plugins.ipam.sql import daemon as sqld
    from pycni.plugins.pkg import unixdaemon

    path = workdir / "srv" / "sql.sock"
    listener = unixdaemon.listen(str(path))
    service = sqld.Service()
    server = sqld.Server(service, 8)
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield str(path), server, service
    finally:
        server.shutdown(10)
        thread.join(5)
        listener.close()
        service.close()
