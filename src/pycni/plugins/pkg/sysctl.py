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
