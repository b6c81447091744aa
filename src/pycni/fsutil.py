"""File-system helpers shared by layers that may not import each other
(the runtime's cache and the plugins' stores); imports only os."""

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
