"""What the allocator needs of a database engine, and how one is chosen.

An engine opens the database (creating and migrating it if asked) and
hands out transactions. A write transaction holds the engine's write lock
from its start (SQLite: BEGIN IMMEDIATE), so the allocator's reads and
writes see one consistent pool. SQL is written with `?` placeholders and
portable types; an engine translates what it must.

Only `conf.ENGINES` names engines; each module there has
`open_engine(DatabaseConfig, create, migrate=True) -> Engine | None` (None:
the database does not exist and `create` is false, so there is nothing to
read or free). The plugin opens with `migrate`; `pycni ipam` opens without,
so that it can say which version it found before bringing it up to date
(`init`), or refuse to read a schema it does not know.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.sql.conf import DatabaseConfig


class Conflict(Exception):
    """A UNIQUE constraint refused a row: someone holds that address/block."""


class Tx:
    """One transaction. Subclasses implement the three statements."""

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def run(self, sql: str, params: tuple = ()) -> int:
        """Execute; the number of rows changed."""
        raise NotImplementedError

    def insert(self, sql: str, params: tuple = ()) -> int:
        """Insert one row; its id. Raises Conflict on a UNIQUE violation."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError


class Engine:
    """An open database."""

    def write(self) -> Tx:
        """A transaction that holds the write lock until commit/rollback."""
        raise NotImplementedError

    def read(self) -> Tx:
        """A read-only snapshot transaction."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        """The database's schema version; 0 when it has no tables of ours."""
        raise NotImplementedError

    def migrate(self) -> int:
        """Apply the missing migrations; the version reached. Refuses a
        schema newer than this pycni's (code 7, as the plugin does)."""
        raise NotImplementedError

    def integrity(self) -> list[str]:
        """The engine's own consistency findings (storage, foreign keys),
        one line each; [] when it finds nothing."""
        raise NotImplementedError


def open_engine(db: DatabaseConfig, create: bool, migrate: bool = True) -> Engine | None:
    from pycni.plugins.ipam.sql.conf import ENGINES

    module = __import__(ENGINES[db.engine], fromlist=["open_engine"])
    return module.open_engine(db, create, migrate)
