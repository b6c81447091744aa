"""Sysctl writes: in the host's netns, and several inside a container's at once."""

from __future__ import annotations

from pycni.kernel import sysctl
from pycni.kernel.netns import enter
from pycni.plugins.pkg.errors import kernel_error


def set_quietly(name: str, value: str) -> None:
    """A best-effort write (the reference ignores these failures)."""
    try:
        sysctl.set(name, value)
    except OSError:
        pass


def container_sysctls(netns: str, writes: list[tuple[str, str]], strict: bool = False) -> None:
    """Write sysctls inside `netns` in one namespace switch.

    Failures are ignored (the reference ignores them) unless `strict`.
    """
    with enter(netns):
        for name, value in writes:
            try:
                sysctl.set(name, value)
            except OSError as err:
                if strict:
                    raise kernel_error(f"failed to set sysctl {name}={value} in netns {netns}", err)


def enable_ip_forward(family: int) -> None:
    """ip.EnableIP4Forward / EnableIP6Forward: `1` written only when not
    already set (bridge with isGateway, ptp for every family it routes)."""
    name = "net/ipv4/ip_forward" if family == 4 else "net/ipv6/conf/all/forwarding"
    try:
        sysctl.set(name, "1")
    except OSError as err:
        raise kernel_error(f"failed to enable forwarding ({name})", err)
