"""A minimal D-Bus client on AF_UNIX: method calls with string arguments.

Enough to ask the system bus whether firewalld is running (GetNameOwner of
org.fedoraproject.FirewallD1, as the reference's isFirewalldRunning does)
and to call firewalld's zone methods: SASL EXTERNAL authentication, Hello,
one call at a time, replies matched by serial (signals and other traffic
skipped). Only the little-endian encoding is written; replies in either
byte order are read. Only string, object-path, signature, boolean and uint32
values are decoded, the first of a body being all a caller here looks at.

`socket` is imported on first use: a host without the system bus socket
never pays for it.
"""

from __future__ import annotations

import os
import struct

from pycni.plugins.meta.firewall.busaddr import system_bus_path

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

METHOD_CALL = 1
METHOD_RETURN = 2
ERROR = 3
SIGNAL = 4

F_PATH = 1
F_INTERFACE = 2
F_MEMBER = 3
F_ERROR_NAME = 4
F_REPLY_SERIAL = 5
F_DESTINATION = 6
F_SENDER = 7
F_SIGNATURE = 8

_FIELD_TYPES = {
    F_PATH: "o",
    F_INTERFACE: "s",
    F_MEMBER: "s",
    F_ERROR_NAME: "s",
    F_REPLY_SERIAL: "u",
    F_DESTINATION: "s",
    F_SENDER: "s",
    F_SIGNATURE: "g",
}
MAX_MESSAGE = 1 << 27


class DBusError(Exception):
    """An error reply (`name` is the D-Bus error name) or a failed connection."""

    def __init__(self, name: str, message: str = "") -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}" if message else name)


# --- marshalling ---------------------------------------------------------------------------


def _pad(buf: bytearray, align: int) -> None:
    buf.extend(b"\0" * (-len(buf) % align))


def _put(buf: bytearray, sig: str, value: object, base: int = 0) -> None:
    """Append one basic value; `base` is buf's offset in the message (alignment)."""
    if sig in "so":
        raw = str(value).encode("utf-8", "surrogateescape")
        buf.extend(b"\0" * (-(base + len(buf)) % 4))
        buf.extend(struct.pack("<I", len(raw)) + raw + b"\0")
    elif sig == "g":
        raw = str(value).encode()
        buf.extend(bytes((len(raw),)) + raw + b"\0")
    elif sig in "ub":
        buf.extend(b"\0" * (-(base + len(buf)) % 4))
        buf.extend(struct.pack("<I", int(value)))  # type: ignore[call-overload]
    else:
        raise ValueError(f"D-Bus type {sig!r} is not supported")


def encode(
    mtype: int, serial: int, fields: dict[int, object], signature: str = "", args=(), flags: int = 0
) -> bytes:
    """One message, little-endian."""
    body = bytearray()
    for sig, value in zip(signature, args):
        _put(body, sig, value)
    if signature:
        fields = {**fields, F_SIGNATURE: signature}
    array = bytearray()
    for code in sorted(fields):
        _pad(array, 8)  # the array starts at offset 16: alignment is relative to it
        array.extend(bytes((code,)))
        _put(array, "g", _FIELD_TYPES[code])
        _put(array, _FIELD_TYPES[code], fields[code], 16)
    head = bytearray(b"l" + bytes((mtype, flags, 1)))
    head.extend(struct.pack("<III", len(body), serial, len(array)))
    head.extend(array)
    _pad(head, 8)
    return bytes(head + body)


class Message:
    """A received message: its type, serial, header fields and body values
    (the leading ones of basic types; decoding stops at the first other)."""

    __slots__ = ("fields", "mtype", "serial", "values")

    def __init__(self, mtype: int, serial: int, fields: dict[int, object], values: list):
        self.mtype = mtype
        self.serial = serial
        self.fields = fields
        self.values = values

    @property
    def value(self) -> object:
        return self.values[0] if self.values else None


def _get(data: bytes, off: int, sig: str, order: str) -> tuple[object, int]:
    if sig in "so":
        off += -off % 4
        (n,) = struct.unpack_from(order + "I", data, off)
        text = data[off + 4 : off + 4 + n].decode("utf-8", "surrogateescape")
        return text, off + 4 + n + 1
    if sig == "g":
        n = data[off]
        return data[off + 1 : off + 1 + n].decode(), off + 1 + n + 1
    if sig in "ub":
        off += -off % 4
        (v,) = struct.unpack_from(order + "I", data, off)
        return (bool(v) if sig == "b" else v), off + 4
    if sig == "y":
        return data[off], off + 1
    raise ValueError(f"D-Bus type {sig!r} is not supported")


def header_length(fixed: bytes) -> tuple[int, int]:
    """(header length with padding, body length) from the first 16 bytes."""
    order = "<" if fixed[0:1] == b"l" else ">"
    body_len, _serial, array_len = struct.unpack_from(order + "III", fixed, 4)
    head = 16 + array_len
    head += -head % 8
    if head + body_len > MAX_MESSAGE:
        raise DBusError("pycni.Error.TooLarge", "D-Bus message too large")
    return head, body_len


def decode(data: bytes) -> Message:
    order = "<" if data[0:1] == b"l" else ">"
    mtype = data[1]
    _body_len, serial, array_len = struct.unpack_from(order + "III", data, 4)
    fields: dict[int, object] = {}
    off, end = 16, 16 + array_len
    while off < end:
        off += -off % 8
        code = data[off]
        sig, off = _get(data, off + 1, "g", order)
        value, off = _get(data, off, str(sig), order)
        fields[code] = value
    off = end + (-end % 8)
    values = []
    for sig in str(fields.get(F_SIGNATURE, "")):
        if sig not in "sogbuy":
            break
        value, off = _get(data, off, sig, order)
        values.append(value)
    return Message(mtype, serial, fields, values)


# --- the connection ------------------------------------------------------------------------


class Bus:
    """A connection to a message bus (the system bus by default), authenticated
    and registered (Hello), with a per-operation timeout."""

    def __init__(self, path: str | bytes | None = None, timeout: float = 5.0) -> None:
        import _socket

        if path is None:
            path = system_bus_path()
        if path is None:
            raise DBusError("pycni.Error.NoAddress", "no unix socket address for the system bus")
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        self._buf = b""
        self._serial = 0
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(path)
            self._auth()
            self.unique_name = str(self.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello"))
        except OSError as err:
            self.close()
            raise DBusError("pycni.Error.Connect", f"system bus: {err.strerror or err}") from err
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _auth(self) -> None:
        uid = str(os.geteuid()).encode().hex().encode()
        self._sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\n")
        line = self._line()
        if not line.startswith(b"OK "):
            raise DBusError("pycni.Error.Auth", f"authentication refused: {line[:80]!r}")
        self._sock.sendall(b"BEGIN\r\n")

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            self._fill()
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise DBusError("pycni.Error.Disconnected", "the bus closed the connection")
        self._buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def send(self, mtype: int, fields: dict[int, object], signature: str = "", args=()) -> int:
        self._serial += 1
        self._sock.sendall(encode(mtype, self._serial, fields, signature, args))
        return self._serial

    def receive(self) -> Message:
        fixed = self._take(16)
        head, body = header_length(fixed)
        return decode(fixed + self._take(head - 16 + body))

    def call(
        self, dest: str, path: str, interface: str, member: str, signature: str = "", args=()
    ) -> object:
        """Call a method and wait for its reply: the reply's first value, or DBusError."""
        fields: dict[int, object] = {
            F_PATH: path,
            F_INTERFACE: interface,
            F_MEMBER: member,
            F_DESTINATION: dest,
        }
        serial = self.send(METHOD_CALL, fields, signature, args)
        while True:
            msg = self.receive()
            if msg.fields.get(F_REPLY_SERIAL) != serial:
                continue
            if msg.mtype == ERROR:
                text = msg.value if isinstance(msg.value, str) else ""
                raise DBusError(str(msg.fields.get(F_ERROR_NAME, "")), text)
            return msg.value


def name_has_owner(name: str, path: str | bytes | None = None) -> bool:
    """Whether `name` is owned on the (system) bus; False when there is no bus."""
    try:
        with Bus(path) as bus:
            bus.call(BUS_NAME, BUS_PATH, BUS_NAME, "GetNameOwner", "s", (name,))
    except (DBusError, OSError, ValueError):
        return False
    return True
