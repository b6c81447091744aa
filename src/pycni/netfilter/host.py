"""What this host's netfilter has, learned without a process and without
loading a backend: the iptables tools on PATH and the legacy (x_tables)
tables in use in this network namespace.

Detection (which backend is the default, is there anything of iptables to
clean up) runs on every ADD and DEL; the iptables backend itself
(`netfilter.iptables`, 25 KiB of bytecode) is imported only where it is
used, so the answers it needs first live here.
"""

from __future__ import annotations

import os

#: family -> the iptables tool of that family
IPTABLES = {4: "iptables", 6: "ip6tables"}
#: family -> the list of legacy tables in use, per network namespace
_LEGACY_NAMES = {4: "ip_tables_names", 6: "ip6_tables_names"}


def which(name: str) -> str | None:
    """shutil.which without importing shutil."""
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def iptables_binary(family: int) -> str | None:
    """The path of iptables/ip6tables on PATH (no process started)."""
    return which(IPTABLES[family])


def legacy_tables(family: int) -> set[str]:
    """The legacy (x_tables) tables in use in this thread's network
    namespace; empty when the module is not loaded. No process started."""
    try:
        with open(f"/proc/thread-self/net/{_LEGACY_NAMES[family]}") as f:
            return set(f.read().split())
    except OSError:
        return set()
