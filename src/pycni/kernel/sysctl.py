"""/proc/sys access in the calling thread's network namespace."""

from __future__ import annotations

import os

_BASE = "/proc/sys/"


def normalize(name: str) -> str:
    """The reference's name rule: if a dot comes before any slash, swap dots and
    slashes ("net.ipv4.ip_forward" -> "net/ipv4/ip_forward"); otherwise keep it
    ("net/ipv4/conf/eth0.100/arp_notify")."""
    dot = name.find(".")
    if dot < 0:
        return name
    slash = name.find("/")
    if 0 <= slash < dot:
        return name
    return name.translate(_SWAP)


_SWAP = str.maketrans("./", "/.")


def path_of(name: str) -> str:
    return _BASE + normalize(name).lstrip("/")


def get(name: str) -> str:
    """The value with the trailing newline removed."""
    with open(path_of(name)) as f:
        return f.read().rstrip("\n")


def set(name: str, value) -> str:
    """Write value if it differs from the current one; return the old value."""
    path = path_of(name)
    with open(path) as f:
        old = f.read().rstrip("\n")
    new = str(value)
    if old.split() != new.split():
        with open(path, "w") as f:
            f.write(new)
    return old


def put(name: str, value: str) -> None:
    """Write `value` unconditionally, in one write(2), as the reference's
    tuning does: some sysctls act on every write (route/flush) and some
    cannot be read back at all."""
    fd = os.open(path_of(name), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode("utf-8", "replace"))
    finally:
        os.close(fd)


def set_in(netns, name: str, value) -> str:
    """set() inside another netns (path or fd); the thread is moved back after."""
    from pycni.kernel.netns import enter

    with enter(netns):
        return set(name, value)


def get_in(netns, name: str) -> str:
    from pycni.kernel.netns import enter

    with enter(netns):
        return get(name)
