"""The SQLite engine: one database file per host, no server, no daemon.

Imports `_sqlite3`, the C module under the `sqlite3` package, directly: the
package also loads datetime and friends for its adapters, which this
plugin never uses (measured with `python -X importtime`; `_sqlite3` exists
and behaves alike on CPython 3.9-3.13). The connection runs in autocommit
mode (isolation_level None) and every transaction is explicit: BEGIN
IMMEDIATE takes the write lock up front, so two plugin processes never
both read a pool and then both write it; a busy database is waited for
(BUSY_TIMEOUT) and then reported as "try again later" (code 11). A
process killed mid-transaction leaves nothing: SQLite rolls the transaction
back from its journal.

The journal is a rollback journal kept in place (journal_mode PERSIST), not
a WAL: a DEL must succeed on a full disk, and a WAL needs a new -wal and
-shm file (an inode and pages) each time a process opens the database,
while a persistent journal is rewritten in the pages it already has, and a
DEL only frees pages of the database file. It is also the faster of the
two for one short transaction per process (no files created and removed
per open). synchronous FULL: a commit survives a power loss too.

The file is created 0600 in a directory created 0700 (SQLite gives its
-journal file the database file's mode).
"""

from __future__ import annotations

import _sqlite3
import os

from pycni.faultpoint import step
from pycni.plugins.ipam.sql.engine import Conflict, Engine, Tx
from pycni.plugins.ipam.sql.schema import MIGRATIONS, newer_error
from pycni.spec.errors import (
    ERR_IO_FAILURE,
    ERR_TRY_AGAIN_LATER,
    CNIError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.sql.conf import DatabaseConfig

BUSY_TIMEOUT = 10.0


def db_error(path: str, err: Exception) -> CNIError:
    """A database failure as a CNI error: busy/locked is worth a retry."""
    text = str(err)
    if isinstance(err, _sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return CNIError(
            ERR_TRY_AGAIN_LATER,
            f"sql: database {path} is busy: {text}",
            "try again later",
        )
    return CNIError(ERR_IO_FAILURE, f"sql: database {path}: {text}")


class SqliteTx(Tx):
    __slots__ = ("conn", "path")

    def __init__(self, conn, path: str) -> None:
        self.conn = conn
        self.path = path

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except _sqlite3.Error as err:
            raise db_error(self.path, err)

    def run(self, sql: str, params: tuple = ()) -> int:
        try:
            return self.conn.execute(sql, params).rowcount
        except _sqlite3.Error as err:
            raise db_error(self.path, err)

    def insert(self, sql: str, params: tuple = ()) -> int:
        try:
            return self.conn.execute(sql, params).lastrowid
        except _sqlite3.IntegrityError as err:
            if "UNIQUE" in str(err):
                raise Conflict(str(err))
            raise db_error(self.path, err)
        except _sqlite3.Error as err:
            raise db_error(self.path, err)

    def commit(self) -> None:
        self.run("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except _sqlite3.Error:
                pass  # closing the connection rolls back too


class SqliteEngine(Engine):
    __slots__ = ("conn", "path")

    def __init__(self, conn, path: str) -> None:
        self.conn = conn
        self.path = path

    def _begin(self, how: str) -> SqliteTx:
        tx = SqliteTx(self.conn, self.path)
        tx.run(how)
        return tx

    def write(self) -> Tx:
        return self._begin("BEGIN IMMEDIATE")

    def read(self) -> Tx:
        return self._begin("BEGIN")

    def close(self) -> None:
        self.conn.close()

    def schema_version(self) -> int:
        tx = self.read()
        try:
            return schema_version(tx)
        finally:
            tx.rollback()

    def migrate(self) -> int:
        return migrate(self)

    def integrity(self) -> list[str]:
        """PRAGMA integrity_check (pages, indexes, UNIQUE/NOT NULL) and
        PRAGMA foreign_key_check (rows naming a missing parent)."""
        found = []
        tx = self.read()
        try:
            for (line,) in tx.rows("PRAGMA integrity_check"):
                if line != "ok":
                    found.append(f"sqlite integrity_check: {line}")
            for table, rowid, parent, _ in tx.rows("PRAGMA foreign_key_check"):
                found.append(
                    f"sqlite foreign_key_check: {table} row {rowid} refers to a missing "
                    f"{parent} row"
                )
        finally:
            tx.rollback()
        return found


def open_engine(db: DatabaseConfig, create: bool, migrate: bool = True) -> SqliteEngine | None:
    """Open (and with `create`, create) the database and (with `migrate`)
    bring its schema up to date; None if it does not exist and `create` is
    false."""
    path = db.path
    if not os.path.exists(path):
        if not create:
            return None
        _create_file(path)
    try:
        conn = _sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        # per connection; also turns a WAL database of an earlier pycni back
        conn.execute("PRAGMA journal_mode = PERSIST")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except _sqlite3.Error as err:
        raise db_error(path, err)
    engine = SqliteEngine(conn, path)
    if not migrate:
        return engine
    try:
        engine.migrate()
    except BaseException:
        conn.close()
        raise
    return engine


def _create_file(path: str) -> None:
    parent = os.path.dirname(path)
    try:
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except OSError as err:
        raise CNIError(ERR_IO_FAILURE, f"sql: cannot create database {path}: {err.strerror}")


def schema_version(tx: Tx) -> int:
    """The database's schema version; 0 for a database without our tables."""
    found = tx.rows(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", ("schema_version",)
    )
    if not found:
        return 0
    row = tx.rows("SELECT MAX(version) FROM schema_version")
    return int(row[0][0] or 0)


def migrate(engine: SqliteEngine, migrations: list[list[str]] | None = None) -> int:
    """Apply the missing forward migrations in one write transaction.

    A read first: an up-to-date database (every call but the first) costs
    no write lock. Returns the version the database is at.
    """
    steps = MIGRATIONS if migrations is None else migrations
    latest = len(steps)
    tx = engine.read()
    try:
        current = schema_version(tx)
    finally:
        tx.rollback()
    if current == latest:
        return current
    _check_not_newer(engine.path, current, latest)
    tx = engine.write()
    try:
        current = schema_version(tx)  # another process may have migrated meanwhile
        _check_not_newer(engine.path, current, latest)
        if current < latest:
            if current == 0:
                tx.run("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                tx.run("INSERT INTO schema_version (version) VALUES (0)")
            for statements in steps[current:]:
                for sql in statements:
                    tx.run(sql)
            tx.run("UPDATE schema_version SET version = ?", (latest,))
            step("sql.migrate.commit")
        tx.commit()
    finally:
        tx.rollback()
    return latest


def _check_not_newer(path: str, current: int, latest: int) -> None:
    if current > latest:
        raise newer_error(path, current, latest)
