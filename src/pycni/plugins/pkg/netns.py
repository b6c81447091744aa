"""The rtnetlink handles of a plugin: the host's, and one inside the container netns.

Work in a container namespace goes through a socket opened inside it, so the
plugin's own thread only switches namespaces for sysctl writes.
"""

from __future__ import annotations

from pycni.kernel.netlink import RtNetlink
from pycni.kernel.netns import NetnsNotFound, NotANetns
from pycni.spec import errors
from pycni.spec.errors import CNIError


def open_netlink(netns: str | None = None) -> RtNetlink:
    """An rtnetlink socket, inside `netns` when given.

    A missing or invalid netns becomes CNIError code 8 naming the path;
    NetnsNotFound is kept reachable as the error's __cause__ for DEL.
    """
    if netns is None:
        return RtNetlink()
    try:
        return RtNetlink(netns=netns)
    except NetnsNotFound as err:
        raise NetnsGone(netns) from err
    except NotANetns:
        raise CNIError(errors.ERR_INVALID_NETNS, f"{netns} is not a network namespace")
    except OSError as err:  # the path once, and the OS's reason without [Errno N]
        raise CNIError(
            errors.ERR_INVALID_NETNS, f"failed to open netns {netns}: {err.strerror or err}"
        )


class NetnsGone(CNIError):
    """The container netns path does not exist (DEL treats this as success)."""

    def __init__(self, netns: str) -> None:
        super().__init__(
            errors.ERR_INVALID_NETNS, f"failed to open netns {netns!r}: netns path does not exist"
        )
        self.netns = netns
