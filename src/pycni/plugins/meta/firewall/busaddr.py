"""Where the system bus is, and whether it can be there at all, without the
D-Bus client.

The firewall's default backend is firewalld when firewalld owns its name on
the system bus (the reference's precedence). On most hosts there is no bus
socket at all, and that answer needs neither `dbus` nor `firewalld`.
"""

from __future__ import annotations

import os

DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"


def bus_may_exist(environ=None) -> bool:
    """False when the system bus address names no socket, or a socket file
    that does not exist (an abstract socket can only be tried)."""
    path = system_bus_path(environ)
    return path is not None and (not isinstance(path, str) or os.path.exists(path))


def system_bus_path(environ=None) -> str | bytes | None:
    """The AF_UNIX address of the system bus (DBUS_SYSTEM_BUS_ADDRESS, else
    the default), None when it names no unix path or abstract socket."""
    env = os.environ if environ is None else environ
    address = env.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS
    for entry in address.split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        kv = dict(p.partition("=")[::2] for p in params.split(",") if p)
        if kv.get("path"):
            return _unescape(kv["path"])
        if kv.get("abstract"):
            return b"\0" + _unescape(kv["abstract"]).encode("utf-8", "surrogateescape")
    return None


def _unescape(text: str) -> str:
    """D-Bus address values escape bytes as %XX."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")
