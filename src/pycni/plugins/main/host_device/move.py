"""Moving the device into the container and back, with its host name in
the ifalias.

Each move is one RTM_SETLINK carrying the target netns, the new name and
the alias: the kernel checks the names before it moves anything, so a
name taken on the other side fails with nothing changed. Only the rename
after the move can still fail (the name taken between our check and the
move); then the device is looked up on the other side and put back.
"""

from __future__ import annotations

import errno
import os

from pycni.faultpoint import step
from pycni.kernel.netlink import NetlinkError, RtNetlink
from pycni.plugins.pkg.errors import kernel_error, warn
from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.link import Link


def this_netns_fd() -> int:
    """An fd of the calling thread's netns (the "host" the device returns to)."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def move_in(host_nl: RtNetlink, ctr_nl: RtNetlink, dev: Link, netns: str, ifname: str) -> Link:
    """Move `dev` into the container as `ifname`, alias = its host name, and
    set it up there. Returns the container link. On failure the device is
    back on the host with its name, alias and up state."""
    if ctr_nl.link_find(ifname) is not None:
        raise CNIError(errors.ERR_INTERNAL, f"interface {ifname} already exists in netns {netns}")
    from pycni.kernel.netlink import netns_fd

    step("host-device.add.move-in")
    try:
        with netns_fd(netns) as fd:
            host_nl.link_set(dev, netns=fd, name=ifname, alias=dev.name)
    except NetlinkError as err:
        # only the rename in the container can fail after the move
        _recover(ctr_nl, host_nl, dev, (dev.name, ifname), dev.name, dev.alias, dev.up)
        raise kernel_error(
            f"failed to move {dev.name!r} into netns {netns} as {ifname!r}", err
        ) from err
    try:
        cdev = ctr_nl.link_get(ifname)
        step("host-device.add.up")
        ctr_nl.link_set(cdev, up=True)
        return ctr_nl.link_get(ifname)
    except NetlinkError as err:
        move_back(ctr_nl, host_nl, ifname, dev.name, dev.alias, dev.up)
        raise kernel_error(f"failed to set {ifname!r} up in netns {netns}", err) from err


def move_back(
    ctr_nl: RtNetlink, host_nl: RtNetlink, ifname: str, name: str, alias: str, up: bool
) -> None:
    """Undo move_in: the container's `ifname` back to the host as `name`,
    with `alias` and (if `up`) set up again."""
    cdev = ctr_nl.link_find(ifname)
    if cdev is None:
        warn(f"rollback: {ifname} is no longer in the container; cannot move it back")
        return
    fd = this_netns_fd()
    try:
        step("host-device.rollback.move-out")
        ctr_nl.link_set(cdev, netns=fd, name=name, alias=alias)
    finally:
        os.close(fd)
    if up:
        host_nl.link_set(host_nl.link_get(name), up=True)


def move_out(ctr_nl: RtNetlink, host_nl: RtNetlink, netns: str, ifname: str) -> str:
    """DEL: the container's `ifname` back to the host under the name in its
    alias, alias cleared, down (the move takes it down). Returns that name,
    "" when `ifname` is not in the container (a DEL after a DEL)."""
    cdev = ctr_nl.link_find(ifname)
    if cdev is None:
        return ""
    name = cdev.alias
    if not name:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"failed to find original ifname for {ifname!r} in netns {netns} (alias is not set)",
        )
    if host_nl.link_find(name) is not None:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"failed to restore {ifname!r} to original name {name!r}: an interface of that "
            "name exists on the host; rename it and retry DEL",
        )
    fd = this_netns_fd()
    step("host-device.del.move-out")
    try:
        ctr_nl.link_set(cdev, netns=fd, name=name, alias="")
    except NetlinkError as err:
        _recover(host_nl, ctr_nl, cdev, (ifname, name), ifname, name, cdev.up, into=netns)
        raise kernel_error(
            f"failed to move {ifname!r} from netns {netns} to the host as {name!r}", err
        ) from err
    finally:
        os.close(fd)
    return name


def _recover(
    there_nl: RtNetlink,
    here_nl: RtNetlink,
    dev: Link,
    names: tuple[str, ...],
    name: str,
    alias: str,
    up: bool,
    into: str | None = None,
) -> None:
    """After a failed move: if `dev` (same MAC) arrived on the other side
    under one of `names` with only the rename failing, move it back here as
    `name` with `alias` (and up again if it was)."""
    for candidate in names:
        link = there_nl.link_find(candidate)
        if link is None or link.mac != dev.mac:
            continue
        try:
            if into is None:
                fd = this_netns_fd()
                try:
                    there_nl.link_set(link, netns=fd, name=name, alias=alias)
                finally:
                    os.close(fd)
            else:
                from pycni.kernel.netlink import netns_fd

                with netns_fd(into) as nsfd:
                    there_nl.link_set(link, netns=nsfd, name=name, alias=alias)
            if up:
                here_nl.link_set(here_nl.link_get(name), up=True)
        except NetlinkError as err:
            warn(f"rollback: cannot put {candidate!r} back as {name!r}: {err}")
        return


def find_returned(host_nl: RtNetlink, ifname: str, mac: str) -> Link | None:
    """The device of a container netns that is gone, if the kernel handed it
    to this namespace: physical devices go to the initial netns, named
    `ifname` or, when that is taken, "dev<ifindex>"; ours still carries
    the alias and has the MAC recorded in prevResult."""
    for link in host_nl.link_list():
        if link.mac != mac or not link.alias:
            continue
        if link.name == ifname or link.name == f"dev{link.index}":
            return link
    return None


def restore_returned(host_nl: RtNetlink, link: Link) -> str:
    """Give a returned device its host name back and clear the alias;
    returns the name."""
    name = link.alias
    if host_nl.link_find(name) is not None:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"failed to restore {link.name!r} to original name {name!r}: an interface of "
            "that name exists",
        )
    step("host-device.del.rename-returned")
    try:
        host_nl.link_set(link, name=name, alias="")
    except NetlinkError as err:
        if err.errno == errno.EBUSY:  # an up device cannot be renamed
            host_nl.link_set(link, up=False)
            host_nl.link_set(link, name=name, alias="")
        else:
            raise kernel_error(f"failed to rename {link.name!r} back to {name!r}", err) from err
    return name
