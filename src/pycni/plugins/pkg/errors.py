"""Errors as values: kernel failures worded once, steps annotated, failures collected."""

from __future__ import annotations

import sys

from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Literal


def kernel_error(what: str, err: BaseException, code: int = errors.ERR_INTERNAL) -> CNIError:
    """A CNIError for a failed kernel step: "<what>: <reason>"."""
    if isinstance(err, CNIError):
        return err
    text = str(err)
    ext = getattr(err, "ext_msg", "")
    if ext and ext not in text:
        text = f"{text} ({ext})"
    return CNIError(code, f"{what}: {text}")


def warn(msg: str) -> None:
    """A note on stderr (the runtime logs it); never fails the operation."""
    try:
        sys.stderr.write(msg.rstrip("\n") + "\n")
    except OSError:
        pass


class annotate:  # lower case: it reads as a statement, `with annotate("..."):`
    """Prefix the errors of a step: `with annotate("failed to set %s up", name):`.

    A CNIError keeps its code and details; an OSError (a kernel failure)
    becomes one through `kernel_error`. The original is kept as `__cause__`.
    """

    __slots__ = ("what",)

    def __init__(self, what: str, *args: object) -> None:
        self.what = what % args if args else what

    def __enter__(self) -> annotate:
        return self

    def __exit__(self, kind, err, tb) -> Literal[False]:
        if err is None:
            return False
        if isinstance(err, CNIError):
            raise CNIError(err.code, f"{self.what}: {err.msg}", err.details) from err
        if isinstance(err, OSError):
            raise kernel_error(self.what, err) from err
        return False


class Failures:
    """Collects the failures of steps that must all run (DEL, GC) and raises
    them together: one is raised as it is, several as one CNIError with the
    first one's code and every message."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[CNIError] = []

    def add(self, err: CNIError) -> None:
        self.errors.append(err)

    def attempt(self, fn: Callable, *args: object, what: str = "") -> object:
        """Run `fn(*args)`; a CNIError or OSError is recorded (prefixed by `what`)."""
        try:
            return fn(*args)
        except CNIError as err:
            self.add(CNIError(err.code, f"{what}: {err.msg}", err.details) if what else err)
        except OSError as err:
            self.add(kernel_error(what or "kernel operation failed", err))
        return None

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        first = self.errors[0]
        raise CNIError(first.code, "; ".join(str(e) for e in self.errors))
