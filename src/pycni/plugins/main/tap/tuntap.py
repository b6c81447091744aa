"""Creating a persistent tap device through /dev/net/tun.

The device belongs to the netns the /dev/net/tun file was opened in, so
the file is opened with the calling thread inside the container netns.
TUNSETIFF with IFF_TUN_EXCL creates it (never attaches to an existing
device of that name), TUNSETOWNER / TUNSETGROUP set who may attach later,
TUNSETPERSIST keeps it after the file is closed.
"""

from __future__ import annotations

import os
import struct

TUN_DEVICE = "/dev/net/tun"

IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_TUN_EXCL = 0x8000

# _IOW('T', n, int)
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE

_IFREQ = struct.Struct("16sH22x")  # struct ifreq: name, ifr_flags, rest of the union

SELINUX_FS = "/sys/fs/selinux"
ATTR_CURRENT = "/proc/thread-self/attr/current"


def tap_flags(multi_queue: bool, vnet_hdr: bool) -> int:
    """The reference's flags: its `ip tuntap` path gives IFF_TAP|IFF_NO_PI,
    its netlink path (owner and group both set) IFF_TAP|IFF_VNET_HDR; a
    multi-queue tap has IFF_MULTI_QUEUE|IFF_NO_PI on either."""
    flags = IFF_TAP | (IFF_VNET_HDR if vnet_hdr else IFF_NO_PI)
    if multi_queue:
        flags |= IFF_MULTI_QUEUE | IFF_NO_PI
    return flags


def ifreq(name: str, flags: int) -> bytes:
    return _IFREQ.pack(name.encode(), flags)


def create_tap(
    netns: str, name: str, flags: int, owner: int | None = None, group: int | None = None
) -> None:
    """A persistent tap `name` in `netns` (OSError from the kernel)."""
    from pycni.kernel.netns import enter

    with enter(netns):
        fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    try:
        make_persistent(fd, name, flags, owner, group)
    finally:
        os.close(fd)


def make_persistent(
    fd: int, name: str, flags: int, owner: int | None, group: int | None, ioctl=None
) -> None:
    """The ioctls on an open /dev/net/tun file; `ioctl` is fcntl.ioctl
    unless a test records them. A failure after TUNSETIFF leaves no device:
    it is not persistent yet, closing the file removes it."""
    if ioctl is None:
        from fcntl import ioctl
    ioctl(fd, TUNSETIFF, ifreq(name, flags | IFF_TUN_EXCL))
    if owner is not None:
        ioctl(fd, TUNSETOWNER, _c_int(owner))
    if group is not None:
        ioctl(fd, TUNSETGROUP, _c_int(group))
    ioctl(fd, TUNSETPERSIST, 1)


def _c_int(value: int) -> int:
    """A uid/gid (0 to 2**32-1) as the C int fcntl.ioctl passes; the kernel
    reads the argument back as an unsigned 32-bit id."""
    return value - (1 << 32) if value >= 1 << 31 else value


def selinux_enabled() -> bool:
    return os.path.isdir(SELINUX_FS)


def create_tap_labelled(
    netns: str, name: str, flags: int, owner: int | None, group: int | None, label: str
) -> None:
    """create_tap from a short-lived thread running under SELinux context
    `label` (the tun device takes the creating task's context; the
    reference runs `ip tuntap` with that exec label)."""
    import threading

    failure: list[BaseException] = []

    def run() -> None:
        try:
            try:
                with open(ATTR_CURRENT, "w") as f:
                    f.write(label)
            except OSError as err:
                raise OSError(
                    err.errno, f"cannot run under SELinux context {label!r}: {err.strerror}"
                ) from err
            create_tap(netns, name, flags, owner, group)
        except BaseException as err:
            failure.append(err)

    t = threading.Thread(target=run, name="pycni-tap-selinux")
    t.start()
    t.join()
    if failure:
        raise failure[0]
