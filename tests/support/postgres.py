"""The tests' PostgreSQL server is the cluster demo's (pycni.cli.pgserver)."""

from pycni.cli.pgserver import PG_BIN, PORT, TRUSTED, PgServer, available

__all__ = ["PG_BIN", "PORT", "TRUSTED", "PgServer", "available"]
