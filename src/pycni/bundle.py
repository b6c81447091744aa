"""One file holding the compiled code of an installed pycni, and the importer
that serves pycni's modules from it.

A plugin exec imports 30-55 pycni modules. Through the standard path finder
each costs a directory check, a stat of its source, an open, an fstat, a
read and a close, plus the import machinery's own Python around them: about
1.3 ms of a portmap ADD here, next to about 2 ms of unmarshalling that no
importer avoids. `pycni install` writes the compiled code of every module of
its private copy into `<lib>/pycni.bundle` (with the interpreter that runs
the plugins, whose marshal format it is), and the launcher (`pycni.launch`)
puts a `BundleFinder` first on `sys.meta_path`. A module then costs one stat
(its source still has the size and mtime recorded at install, else the
standard finder takes over) and one pread. The finder runs before `os` is
imported, and so uses `posix`.

File layout: `MAGIC`, the interpreter's bytecode magic number (4 bytes), the
index length (4 bytes, little-endian), the index (a marshalled dict: module
name -> (offset, length, is_package, source path, source mtime_ns, source
size)), then the marshalled code objects; offsets count from the end of the
index.
"""

import marshal
import posix
import sys

MAGIC = b"PYCNIB1\n"
FILE_NAME = "pycni.bundle"


def _interpreter_magic() -> bytes:
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


class BundleFinder:
    """A meta path finder and loader for the modules in one bundle file."""

    def __init__(self, fd: int, index: dict, base: int) -> None:
        self._fd = fd
        self._index = index
        self._base = base
        self._spec_type = sys.modules["_frozen_importlib"].ModuleSpec

    def find_spec(self, name: str, path=None, target=None):
        entry = self._index.get(name)
        if entry is None:
            return None
        _offset, _length, is_package, source, mtime_ns, size = entry
        try:
            st = posix.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None  # edited since install: the standard finder compiles it
        spec = self._spec_type(name, self, origin=source, is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [source.rpartition("/")[0]]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        offset, length = self._index[module.__spec__.name][:2]
        code = marshal.loads(posix.pread(self._fd, length, self._base + offset))
        exec(code, module.__dict__)


def held_fds() -> set[int]:
    """The files that active bundle finders read from: a process that closes
    the descriptors it inherited (the fork server) must keep these."""
    return {f._fd for f in sys.meta_path if isinstance(f, BundleFinder)}


def activate(path: str) -> bool:
    """Serve pycni's modules from the bundle at `path`; False (and nothing
    changed) when it is missing, unreadable or for another interpreter."""
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = posix.pread(fd, len(MAGIC) + 8, 0)
        magic = _interpreter_magic()
        if len(head) != len(MAGIC) + 8 or head[: len(MAGIC)] != MAGIC:
            raise ValueError("not a pycni bundle")
        if head[len(MAGIC) : len(MAGIC) + 4] != magic:
            raise ValueError("built by another interpreter")
        size = int.from_bytes(head[len(MAGIC) + 4 :], "little")
        index = marshal.loads(posix.pread(fd, size, len(MAGIC) + 8))
    except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
        posix.close(fd)
        return False
    sys.meta_path.insert(0, BundleFinder(fd, index, len(MAGIC) + 8 + size))
    return True


def build(lib: str) -> int:
    """Write `<lib>/pycni.bundle` for the package `<lib>/pycni`, with the
    running interpreter; return the number of modules."""
    import os

    index: dict[str, tuple] = {}
    blobs: list[bytes] = []
    offset = 0
    top = os.path.join(lib, "pycni")
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            source = os.path.join(root, name)
            parts = os.path.relpath(source, lib)[: -len(".py")].split(os.sep)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            with open(source, "rb") as f:
                text = f.read()
            st = os.stat(source)
            blob = marshal.dumps(compile(text, source, "exec", dont_inherit=True))
            index[".".join(parts)] = (
                offset,
                len(blob),
                is_package,
                source,
                st.st_mtime_ns,
                st.st_size,
            )
            blobs.append(blob)
            offset += len(blob)
    encoded = marshal.dumps(index)
    target = os.path.join(lib, FILE_NAME)
    tmp = target + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + _interpreter_magic() + len(encoded).to_bytes(4, "little"))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, target)
    return len(index)
