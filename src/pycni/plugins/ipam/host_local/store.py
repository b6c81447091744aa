"""The on-disk reservation store, byte-compatible with the Go host-local.

Layout of `<dataDir>/<network>/` (shared with the Go plugin):

* `<ip>`: one file per reserved address, named by the address's canonical
  text, mode 0600, content `<containerID>\\r\\n<ifname>` without a newline.
  Legacy files hold only `<containerID>` and still count as that
  container's.
* `last_reserved_ip.<setIndex>`: the last address reserved from that range
  set, no newline.
* `lock`: every reader and writer holds `flock(LOCK_EX)` on it.

A reservation is made by writing the content to a temporary file and
hard-linking it to the address's name: link() fails if the name exists,
so it is as exclusive as the reference's O_EXCL create, and a process
killed at any moment never leaves an address file without its owner (the
reference can leave an empty one). A temporary file left behind by a
killed process is removed by the next locked operation; its name is not an
address, so the Go plugin ignores it.
"""

from __future__ import annotations

import errno
import os

from pycni.faultpoint import step
from pycni.spec.errors import ERR_IO_FAILURE, CNIError
from pycni.spec.ipnet import parse_addr
from pycni.spec.validate import is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LAST_RESERVED_PREFIX = "last_reserved_ip."
LOCK_NAME = "lock"
TMP_NAME = ".pycni-reserve.tmp"
LINE_BREAK = "\r\n"

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def owner_bytes(container_id: str, ifname: str) -> bytes:
    """The content of a reservation file for one attachment."""
    return os.fsencode(container_id.strip() + LINE_BREAK + ifname)


def parse_owner(content: bytes) -> tuple[str, str | None]:
    """(containerID, ifname) of trimmed file content; ifname None for legacy files."""
    cid, sep, ifname = content.strip().partition(b"\r\n")
    if not sep:
        return os.fsdecode(cid), None
    return os.fsdecode(cid), os.fsdecode(ifname)


def _io_error(what: str, err: OSError) -> CNIError:
    if err.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
        return CNIError(
            ERR_IO_FAILURE, f"{what}: it is a symbolic link, which host-local does not follow"
        )
    return CNIError(ERR_IO_FAILURE, f"{what}: {err.strerror or err}")


def network_dir(data_dir: str, network: str) -> str:
    """`<dataDir>/<network>`, refusing any name that would leave dataDir."""
    if not is_valid_name(network) or network in (".", ".."):
        # skel validated the name already; this guards direct callers.
        raise CNIError(ERR_IO_FAILURE, f"invalid network name {network!r} for a store directory")
    # A valid name has no "/" and does not start with ".", so the result is
    # always a direct child of dataDir.
    return os.path.join(data_dir, network)


class Store:
    """One network's directory; lock() before anything but listing."""

    __slots__ = ("_content", "_listing", "_lock_fd", "_tmp_ready", "dir", "reserved")

    def __init__(self, data_dir: str, network: str) -> None:
        self.dir = network_dir(data_dir or DEFAULT_DATA_DIR, network)
        self._lock_fd: int | None = None
        self._listing: set[str] | None = None
        self._content: bytes | None = None
        self._tmp_ready = False
        self.reserved: list[str] = []  # names reserved through this object

    # -- locking --------------------------------------------------------------------------

    def lock(self, create: bool = False) -> bool:
        """Take the network's flock; False (unlocked) if the directory is
        missing and `create` is false."""
        import fcntl

        if create:
            step("host-local.store.create-dir")
            try:
                os.makedirs(self.dir, 0o755, exist_ok=True)
            except OSError as err:
                raise _io_error(f"failed to create store directory {self.dir}", err)
        elif not os.path.isdir(self.dir):
            return False
        path = os.path.join(self.dir, LOCK_NAME)
        step("host-local.store.lock")
        try:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | _O_CLOEXEC | _O_NOFOLLOW, 0o750)
            except IsADirectoryError:  # an empty directory at its name: replace it
                try:
                    os.rmdir(path)
                except OSError:
                    pass
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | _O_CLOEXEC | _O_NOFOLLOW, 0o750)
        except OSError as err:
            raise _io_error(f"failed to open lock file {path}", err)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            os.close(fd)
            raise _io_error(f"failed to lock {path}", err)
        self._lock_fd = fd
        self._listing = None
        self._tmp_ready = False
        self._remove_tmp()
        return True

    def unlock(self) -> None:
        if self._lock_fd is not None:
            if self._tmp_ready:
                self._remove_tmp()
            os.close(self._lock_fd)  # closing the only descriptor drops the flock
            self._lock_fd = None
            self._listing = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    # -- reading --------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every name in the directory ([] if it does not exist)."""
        try:
            return os.listdir(self.dir)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise _io_error(f"failed to list {self.dir}", err)

    def addresses(self) -> list[tuple[str, tuple[int, int]]]:
        """(name, address) of every reservation file (named by an address)."""
        out: list[tuple[str, tuple[int, int]]] = []
        try:
            entries = os.scandir(self.dir)
        except FileNotFoundError:
            return out
        except OSError as err:
            raise _io_error(f"failed to list {self.dir}", err)
        listing = set()
        with entries:
            for entry in entries:
                name = entry.name
                listing.add(name)
                if name == LOCK_NAME or name.startswith((LAST_RESERVED_PREFIX, ".")):
                    continue
                try:
                    addr = parse_addr(name)
                except ValueError:
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                out.append((name, addr))
        if self._lock_fd is not None:
            self._listing = listing  # exact while the lock is held
        return out

    def read(self, name: str) -> bytes | None:
        """The whitespace-trimmed content of a file, None if unreadable."""
        try:
            fd = os.open(os.path.join(self.dir, name), os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW)
        except OSError:
            return None
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError:
            return None
        finally:
            os.close(fd)
        return b"".join(chunks).strip()

    def owned(
        self,
        container_id: str,
        ifname: str,
        wanted: Callable[[tuple[int, int]], bool] | None = None,
    ) -> list[tuple[str, tuple[int, int], bool]]:
        """Reservations of an attachment: (name, address, legacy) for files
        holding `id\\r\\nifname` (legacy False) or just `id` (legacy True).

        Only files whose address satisfies `wanted` (if given) are read.
        """
        match = owner_bytes(container_id, ifname)
        match_old = os.fsencode(container_id.strip())
        out = []
        for name, addr in self.addresses():
            if wanted is not None and not wanted(addr):
                continue
            content = self.read(name)
            if content == match:
                out.append((name, addr, False))
            elif content == match_old:
                out.append((name, addr, True))
        return out

    def last_reserved(self, idx: int) -> tuple[int, int] | None:
        """The address in last_reserved_ip.<idx> (read exactly, as Go does)."""
        path = os.path.join(self.dir, f"{LAST_RESERVED_PREFIX}{idx}")
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW)
        except OSError:
            return None
        try:
            data = os.read(fd, 256)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            return parse_addr(data.decode("ascii")) if data else None
        except ValueError:  # UnicodeDecodeError too: an unusable file restarts the round
            return None

    # -- writing (locked) -----------------------------------------------------------------

    def reserve(self, ip_text: str, container_id: str, ifname: str, idx: int) -> bool:
        """Create the reservation file `ip_text` for an attachment; False if taken.

        Records the address in last_reserved_ip.<idx> on success.
        """
        if self._listing is None:
            self._listing = set(self.names())
        if ip_text in self._listing:
            return False
        content = owner_bytes(container_id, ifname)
        tmp = os.path.join(self.dir, TMP_NAME)
        if not self._tmp_ready or self._content != content:
            self._remove_tmp()
            step("host-local.store.write-tmp")
            self._write_new(tmp, content)
            self._content = content
            self._tmp_ready = True
        step("host-local.store.reserve")
        try:
            os.link(tmp, os.path.join(self.dir, ip_text))
        except FileExistsError:
            self._listing.add(ip_text)
            return False
        except OSError as err:
            raise _io_error(f"failed to reserve {ip_text}", err)
        self._listing.add(ip_text)
        self.reserved.append(ip_text)
        step("host-local.store.drop-tmp")
        self._remove_tmp()
        self._tmp_ready = False
        self.write_last_reserved(idx, ip_text)
        return True

    def write_last_reserved(self, idx: int, ip_text: str) -> None:
        """Best effort: a missing or stale file only restarts the round-robin."""
        path = os.path.join(self.dir, f"{LAST_RESERVED_PREFIX}{idx}")
        step("host-local.store.last-reserved")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC | _O_NOFOLLOW
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as err:
            if err.errno != errno.ELOOP:
                return
            try:  # a symbolic link planted in the store: replace it, never follow it
                os.unlink(path)
                fd = os.open(path, flags | os.O_EXCL, 0o600)
            except OSError:
                return
        try:
            os.write(fd, ip_text.encode())
        except OSError:
            pass
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        """Delete one reservation file (already gone is fine)."""
        step("host-local.store.release")
        try:
            os.unlink(os.path.join(self.dir, name))
        except FileNotFoundError:
            pass
        except OSError as err:
            raise _io_error(f"failed to release {name}", err)
        if self._listing is not None:
            self._listing.discard(name)

    def _write_new(self, path: str, content: bytes) -> None:
        try:
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_NOFOLLOW, 0o600
            )
        except OSError as err:
            raise _io_error(f"failed to create {path}", err)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as err:
            os.close(fd)
            self._remove_tmp()
            raise _io_error(f"failed to write {path}", err)
        os.close(fd)

    def _remove_tmp(self) -> None:
        path = os.path.join(self.dir, TMP_NAME)
        try:
            os.unlink(path)
        except IsADirectoryError:  # an empty directory at its name would block every ADD
            try:
                os.rmdir(path)
            except OSError:
                pass
        except OSError:
            pass
