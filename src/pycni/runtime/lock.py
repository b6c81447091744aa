"""Locks that make concurrent callers of the runtime obey the spec's rules.

The spec (section "Lifecycle") asks runtimes not to run operations for the
same container in parallel, even on different attachments, and to make GC
exclusive: no ADD/DEL may be running when GC starts, none may start until it
ends. libcni leaves this to its callers; pycni's `CNIConfig` takes these locks
itself (pass `locking=False` to opt out), so any number of threads and
processes sharing a cache directory are safe.

Both are `flock(2)` locks on files under `<cacheDir>/locks/` (directory mode
0700), held for the duration of one operation:

* `gc.lock` -- the GC lock, a readers/writer lock: ADD, CHECK and DEL hold it
  shared, GC holds it exclusively. It is never removed.
* `ctr-<containerID>.lock` (named by a hash of the ID when the ID is not
  valid or too long) -- the container lock, held exclusively by ADD,
  CHECK and DEL of that container (all its attachments). A successful DEL
  removes the file while still holding it; every locker checks after
  `flock()` that the file it locked is still the one at that path, and starts
  over if not, so removal never lets two holders in.

Lock order is always GC lock, then container lock. Locks are per open file,
so they also exclude threads of one process. If the lock directory cannot be
created or opened for lack of permission (a read-only cache directory, a
non-root user running CHECK) or of space (a full disk: the DEL that would
free it must not fail), the operation runs unlocked, as libcni would.
"""

from __future__ import annotations

import os

from pycni.faultpoint import step

LOCK_DIR = "locks"
GC_LOCK = "gc.lock"
# Longest container ID used verbatim in a lock file name (NAME_MAX is 255).
_MAX_ID_IN_NAME = 200


class FileLock:
    """An flock(2) lock on `path`, shared or exclusive; a context manager."""

    __slots__ = ("fd", "path", "shared")

    def __init__(self, path: str, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self.fd = -1

    def acquire(self) -> bool:
        """Block until locked. False (and no lock) if the file cannot be opened."""
        import fcntl

        from pycni.runtime.cache import make_dirs

        try:
            make_dirs(os.path.dirname(self.path))
        except OSError as err:
            if _unlocked_ok(err):
                return False
            raise
        while True:
            step("runtime.lock.open")
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except IsADirectoryError:
                # A directory at the lock file's name (no one can hold it):
                # remove it if empty and lock a file there; if not empty, fail.
                try:
                    os.rmdir(self.path)
                except FileNotFoundError:
                    pass
                continue
            except OSError as err:
                if _unlocked_ok(err):
                    return False
                raise
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
                        break
                    except InterruptedError:
                        continue
                st = os.fstat(fd)
                try:
                    cur = os.stat(self.path)
                except FileNotFoundError:
                    cur = None
            except BaseException:
                os.close(fd)
                raise
            if cur is not None and (cur.st_ino, cur.st_dev) == (st.st_ino, st.st_dev):
                self.fd = fd
                return True
            os.close(fd)  # removed or replaced while we waited: lock the new file

    def release(self, remove: bool = False) -> None:
        """Unlock; with `remove`, delete the lock file first (exclusive holders only)."""
        if self.fd < 0:
            return
        if remove and not self.shared:
            step("runtime.lock.remove")
            try:
                os.unlink(self.path)
            except OSError:
                pass
        fd, self.fd = self.fd, -1
        os.close(fd)

    @property
    def held(self) -> bool:
        return self.fd >= 0

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def gc_lock(cache_dir: str, exclusive: bool) -> FileLock:
    """The GC readers/writer lock: shared for ADD/CHECK/DEL, exclusive for GC."""
    return FileLock(os.path.join(cache_dir, LOCK_DIR, GC_LOCK), shared=not exclusive)


def container_lock(cache_dir: str, container_id: str) -> FileLock:
    """The per-container lock, held by ADD, CHECK and DEL.

    An ID that is not a valid container ID (DEL and CHECK take any) or too
    long for a file name is named by its hash: it must neither escape the
    lock directory nor make the operation fail before any plugin runs.
    """
    from pycni.spec.validate import is_valid_name

    if is_valid_name(container_id) and len(container_id) <= _MAX_ID_IN_NAME:
        name = f"ctr-{container_id}.lock"
    else:  # '=' is not allowed in container IDs, so no valid ID collides with it
        from hashlib import sha256

        digest = sha256(container_id.encode("utf-8", "surrogateescape")).hexdigest()
        name = f"ctr=sha256-{digest}.lock"
    return FileLock(os.path.join(cache_dir, LOCK_DIR, name))


class OperationLock:
    """GC lock (shared) + container lock, or the GC lock alone (exclusive).

    `remove_container_lock()` asks for the container lock file to be removed
    on release (after a successful DEL).
    """

    __slots__ = ("_ctr", "_gc", "_remove")

    def __init__(self, cache_dir: str, container_id: str | None) -> None:
        self._gc = gc_lock(cache_dir, exclusive=container_id is None)
        self._ctr = container_lock(cache_dir, container_id) if container_id else None
        self._remove = False

    def remove_container_lock(self) -> None:
        self._remove = True

    def __enter__(self) -> OperationLock:
        self._gc.acquire()
        try:
            if self._ctr is not None:
                self._ctr.acquire()
        except BaseException:
            self._gc.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._ctr is not None:
                self._ctr.release(remove=self._remove)
        finally:
            self._gc.release()


def prune_container_locks(cache_dir: str) -> list[str]:
    """Remove container lock files no one holds; return the names removed.

    Called by GC under the exclusive GC lock, when no ADD, CHECK or DEL can
    be running or waiting (they take the GC lock first), so each file left
    by a failed operation or a container never DEL'd is stale. A file some
    caller holds anyway (one that does not take the GC lock) is skipped;
    one is removed only while locked here, as DEL removes its own.
    """
    import fcntl

    directory = os.path.join(cache_dir, LOCK_DIR)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        if not (name.startswith(("ctr-", "ctr=")) and name.endswith(".lock")):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
            removed.append(name)
        except OSError:
            pass  # held, or already gone
        finally:
            os.close(fd)
    return removed


class _NoLock:
    __slots__ = ()

    def remove_container_lock(self) -> None:
        pass

    def __enter__(self) -> _NoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


NO_LOCK = _NoLock()


def _unlocked_ok(err: OSError) -> bool:
    import errno

    return err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)
