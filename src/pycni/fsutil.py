"""File-system helpers shared by layers that may not import each other
(the runtime's cache and the plugins' stores): make_dirs, write_atomic,
remove_file; imports only os."""

from __future__ import annotations

import os


def make_dirs(path: str, mode: int) -> None:
    """mkdir -p with `mode` for every folder created, as Go's os.MkdirAll
    (os.makedirs gives the intermediate ones the default mode). A component
    that exists but is no folder raises NotADirectoryError naming it."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise NotADirectoryError(20, "Not a directory", folder)
        except NotADirectoryError:
            raise NotADirectoryError(20, "Not a directory", os.path.dirname(folder))


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically: write `<path>.tmp` (`mode`),
    fsync, rename. The temp name is fixed so that a later run can remove one
    a killed writer left; on failure it is removed and the error raised."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        remove_file(tmp)
        raise


def remove_file(path: str) -> None:
    """Remove a file; one that is already gone is fine (other errors raise)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
