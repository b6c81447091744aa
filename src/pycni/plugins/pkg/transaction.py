"""ADD is all or nothing: an undo stack run in reverse when the ADD fails."""

from __future__ import annotations

from contextlib import contextmanager

from pycni.kernel.netlink import NetlinkError
from pycni.plugins.pkg.errors import kernel_error, warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterator


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


@contextmanager
def add_transaction(what: str) -> Iterator[Undo]:
    """`with add_transaction("bridge ADD") as undo:` -- push an undo step
    after each change; any exception runs them in reverse, and a bare
    netlink error is worded as "<what> failed: <reason>"."""
    undo = Undo()
    try:
        yield undo
    except NetlinkError as err:
        undo.run()
        raise kernel_error(f"{what} failed", err) from err
    except BaseException:
        undo.run()
        raise
    undo.commit()
