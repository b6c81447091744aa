"""Fixtures of the PostgreSQL engine tests: one server per session (a
fresh database per test), and a private server per test for outages."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import PgServer, available

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory) -> Iterator[Path]:
    """An initdb'd, stopped cluster that servers are copied from."""
    reason = available()
    if reason:
        pytest.skip(reason)
    server = PgServer.create(start=False)
    try:
        yield server.data
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def pg_server(pg_template: Path) -> Iterator[PgServer]:
    """The session's server; tests share it, each in its own database."""
    server = PgServer.create(template=pg_template)
    try:
        server.create_role("pypg_cni", "pypg-secret")
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database owned by the password role; its dsn."""
    name = f"pypg_{next(_names)}"
    pg_server.create_database(name, owner="pypg_cni")
    try:
        yield pg_server.dsn(user="pypg_cni", dbname=name, password="pypg-secret")
    finally:
        if pg_server.running:
            pg_server.drop_database(name)


@pytest.fixture
def pg_private(pg_template: Path) -> Iterator[PgServer]:
    """A server of the test's own, to stop, kill and restart."""
    server = PgServer.create(template=pg_template)
    try:
        server.create_role("pypg_cni", "pypg-secret")
        server.create_database("pypg", owner="pypg_cni")
        yield server
    finally:
        server.destroy()
