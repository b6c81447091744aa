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

Concurrency: SQLite's write transaction holds the whole database, so the
lock hooks of Tx (lock_node, lock_pool) are no-ops there. PostgreSQL runs
writers side by side (READ COMMITTED): the allocator takes a per-(pool,
node) lock for the common path and the pool lock only to claim or borrow
a block; a transaction that loses a race the database detects (a
serialization failure, a deadlock, a UNIQUE or foreign-key race) is run
again from scratch by `Engine.transaction`, so write work must go through
it and have no effect outside its transaction.

Failures an engine reports as CNIError: code 11 (try again later) when the
database cannot be reached or is busy; then `Engine.broken` is true when
the connection is unusable, and a pool (the node daemon) must close the
engine rather than reuse it. `OutcomeUnknown` (code 11 too) is the
connection lost during COMMIT: the transaction may or may not have been
committed. For a DEL or GC re-running is enough (they are idempotent); for
an ADD, whose result the runtime never got, the caller should release the
attachment's leases (what cmd_del does) once the database answers again.
"""

from __future__ import annotations

from pycni.spec.errors import ERR_TRY_AGAIN_LATER, CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

    from pycni.plugins.ipam.sql.conf import DatabaseConfig


class Conflict(Exception):
    """A UNIQUE constraint refused a row: someone holds that address/block."""


class OutcomeUnknown(CNIError):
    """The connection broke during COMMIT: committed or not, nobody knows
    until the database answers again (see the module's docstring)."""

    def __init__(self, msg: str) -> None:
        super().__init__(ERR_TRY_AGAIN_LATER, msg, "try again later")


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

    def lock_node(self, pool: int, node: str) -> None:
        """Serialize with this node's other allocations in `pool` (no-op
        where the write transaction already holds the database)."""

    def lock_pool(self, pool: int) -> bool:
        """Serialize with every transaction that claims, borrows in or
        hands out blocks of `pool`. True when the lock may have waited for
        other writers, so that what was read before must be read again."""
        return False

    def lock_blocks(self, where: str, params: tuple = ()) -> None:
        """Lock the rows of `blocks` that `where` selects until the end of
        the transaction, so that whether a block is empty (and may be
        deleted) is decided by one transaction at a time: two DELs of a
        block's last two leases would otherwise each see the other's lease
        and both keep the block. A no-op where the write transaction
        already holds the database."""

    def run_guarded(self, sql: str, params: tuple = ()) -> int:
        """Execute a DELETE that a concurrent transaction's new reference
        may make violate a foreign key (a block that just got a lease):
        then it deletes nothing and returns 0 instead of failing."""
        return self.run(sql, params)


class Engine:
    """An open database."""

    #: the connection is unusable: close the engine, open a new one
    broken = False

    def transaction(self, work: Callable[[Tx], T], commit_step: str = "") -> T:
        """`work(tx)` in one write transaction, committed; its result.

        An engine may run `work` again in a fresh transaction when the
        database refused the first for a race with a concurrent one.
        `commit_step` names the faultpoint just before COMMIT."""
        from pycni.faultpoint import step

        tx = self.write()
        try:
            result = work(tx)
            if commit_step:
                step(commit_step)
            tx.commit()
            return result
        finally:
            tx.rollback()  # a no-op after commit

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


# Set by the node daemon (daemon.py): its engine pool, a callable with
# open_engine's signature whose engines' close() puts them back in the pool.
PROVIDER: Callable[[DatabaseConfig, bool, bool], Engine | None] | None = None


def open_engine(db: DatabaseConfig, create: bool, migrate: bool = True) -> Engine | None:
    provider = PROVIDER
    if provider is not None:
        return provider(db, create, migrate)
    return open_new(db, create, migrate)


def open_new(db: DatabaseConfig, create: bool, migrate: bool = True) -> Engine | None:
    """A new engine from the engine's module, whatever the provider."""
    from pycni.plugins.ipam.sql.conf import ENGINES

    try:
        module = __import__(ENGINES[db.engine], fromlist=["open_engine"])
    except ImportError as err:  # the driver, an optional dependency
        import sys

        from pycni.spec.errors import ERR_INTERNAL

        raise CNIError(
            ERR_INTERNAL,
            f"sql: the {db.engine} engine cannot load its driver ({err}) in {sys.executable}: "
            "install it for that interpreter (Debian: apt install python3-psycopg; "
            "pip: pip install 'pycni[postgres]')",
        )
    return module.open_engine(db, create, migrate)
