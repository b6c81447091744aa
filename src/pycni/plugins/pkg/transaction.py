"""ADD is all or nothing: an undo stack run in reverse when the ADD fails."""

from __future__ import annotations

from pycni.kernel.netlink import NetlinkError
from pycni.plugins.pkg.errors import kernel_error, warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Literal


class Undo:
    """Undo steps of an ADD in reverse order when it fails.

    push() registers a step once its effect exists; run() executes them all
    (each failure is reported on stderr, the rest still run); commit() drops
    them when the ADD succeeded.
    """

    __slots__ = ("_steps",)

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable, tuple]] = []

    def push(self, what: str, fn: Callable, *args) -> None:
        self._steps.append((what, fn, args))

    def commit(self) -> None:
        self._steps.clear()

    def run(self) -> None:
        while self._steps:
            what, fn, args = self._steps.pop()
            try:
                fn(*args)
            except BaseException as err:  # keep undoing the rest
                warn(f"rollback: {what} failed: {err}")


class add_transaction:  # lower case: it reads as a statement, `with add_transaction(...)`
    """`with add_transaction("bridge ADD") as undo:` -- push an undo step
    after each change; any exception runs them in reverse, and a bare
    netlink error is worded as "<what> failed: <reason>".

    A class, not @contextmanager: `contextlib` and what it imports cost a
    plugin process about 4 ms."""

    __slots__ = ("undo", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self.undo = Undo()

    def __enter__(self) -> Undo:
        return self.undo

    def __exit__(self, kind, err, tb) -> Literal[False]:
        if err is None:
            self.undo.commit()
            return False
        self.undo.run()
        if isinstance(err, NetlinkError):
            raise kernel_error(f"{self.what} failed", err) from err
        return False
