"""Network namespaces: open, enter (per thread, always restored), create, delete."""

from __future__ import annotations

import errno
import os

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)

_THREAD_NS = "/proc/thread-self/ns/net"


class NetnsNotFound(FileNotFoundError):
    """The netns path does not exist (DEL treats this as "already gone")."""


class NotANetns(OSError):
    """The path exists but is not a network namespace."""


_libc = None


def _libc_call(name: str, *args) -> int:
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    ret = getattr(_libc, name)(*args)
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return ret


_setns_addr = 0


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    fn = getattr(os, "setns", None)
    if fn is not None:  # Python 3.12+
        fn(fd, nstype)
        return
    # Python 3.11: call libc's setns through the C `_ctypes` module; the
    # `ctypes` package costs 3 ms to import on every plugin exec. Only a
    # failure (rare) pays for it, to read errno.
    global _setns_addr
    import _ctypes

    if not _setns_addr:
        # dlopen(NULL): the running program; typeshed does not allow None here.
        handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]
        _setns_addr = _ctypes.dlsym(handle, "setns")
    if _ctypes.call_function(_setns_addr, (fd, nstype)) != 0:
        _libc_call("setns", fd, nstype)


def unshare(flags: int) -> None:
    fn = getattr(os, "unshare", None)
    if fn is not None:  # Python 3.12+
        fn(flags)
    else:
        _libc_call("unshare", flags)


def open_netns(path) -> int:
    """Open a netns file (e.g. /run/netns/x, /proc/<pid>/ns/net) and return the fd.

    Raises NetnsNotFound if the path is missing and NotANetns if it is not a
    network namespace.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NetnsNotFound(errno.ENOENT, f"netns path does not exist: {path}", path) from e
    if not _is_netns_fd(fd):
        os.close(fd)
        raise NotANetns(errno.EINVAL, f"{path} is not a network namespace", path)
    return fd


def _is_netns_fd(fd: int) -> bool:
    # NS_GET_NSTYPE answers for every nsfs file, also bind mounts such as
    # /run/netns/x, whose /proc/self/fd link shows the mount path rather than
    # "net:[...]".  The readlink check remains for kernels before 4.11.
    import fcntl

    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError as e:
        if e.errno == errno.ENOTTY:
            return False
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith("net:")
    except OSError:
        return False


class enter:
    """Move the calling thread into a netns (path or fd) for the `with` body;
    the previous netns is always restored on exit, also when the body raises."""

    __slots__ = ("_own", "_target")

    def __init__(self, path_or_fd) -> None:
        self._target = path_or_fd
        self._own = -1

    def __enter__(self) -> enter:
        target = self._target
        fd = target if isinstance(target, int) else open_netns(target)
        try:
            own = os.open(_THREAD_NS, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            except BaseException:
                os.close(own)
                raise
            self._own = own
        finally:
            if fd is not target:
                os.close(fd)
        return self

    def __exit__(self, *exc) -> None:
        own, self._own = self._own, -1
        try:
            setns(own, CLONE_NEWNET)
        except OSError as e:
            raise RuntimeError(f"cannot switch back to the original network namespace: {e}") from e
        finally:
            os.close(own)


def current_netns_id() -> tuple[int, int]:
    """(st_dev, st_ino) of the calling thread's netns."""
    st = os.stat(_THREAD_NS)
    return st.st_dev, st.st_ino


def same_netns(path_or_fd) -> bool:
    """True if path_or_fd names the calling thread's netns."""
    st = os.stat(path_or_fd)
    return (st.st_dev, st.st_ino) == current_netns_id()


def _make_shared(run_dir: str) -> None:
    """As `ip netns add`: make run_dir a shared mount (bind it onto itself first
    when it is not a mount point)."""
    for attempt in range(2):
        try:
            _libc_call("mount", b"", run_dir.encode(), b"none", MS_SHARED | MS_REC, None)
            return
        except OSError as e:
            if e.errno != errno.EINVAL or attempt:
                raise
        path = run_dir.encode()
        _libc_call("mount", path, path, b"none", MS_BIND | MS_REC, None)


def create_named(name: str, run_dir: str = "/run/netns") -> str:
    """Create a persistent named netns like `ip netns add name`; returns its path.

    On failure nothing is left behind.
    """
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid netns name: {name!r}")
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    _make_shared(run_dir)
    path = os.path.join(run_dir, name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    os.close(fd)
    result: list = []

    def helper() -> None:
        # unshare() affects this thread only; the bind mount keeps the new
        # namespace alive after the thread exits.
        try:
            unshare(CLONE_NEWNET)
            _libc_call("mount", _THREAD_NS.encode(), path.encode(), b"none", MS_BIND, None)
        except BaseException as e:
            result.append(e)

    import threading

    t = threading.Thread(target=helper, name="pycni-netns-create")
    t.start()
    t.join()
    if result:
        try:
            _libc_call("umount2", path.encode(), MNT_DETACH)
        except OSError:
            pass
        try:
            os.unlink(path)
        except OSError:
            pass
        raise result[0]
    return path


def delete_named(name: str, run_dir: str = "/run/netns") -> None:
    """Remove a named netns (lazy unmount + unlink); a missing one is fine."""
    path = os.path.join(run_dir, name)
    try:
        _libc_call("umount2", path.encode(), MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
