"""rtnetlink socket, message and attribute codec, errors.

`RtNetlink` is the one entry point: a NETLINK_ROUTE socket (optionally opened
inside another network namespace) whose operation methods are the functions
of the typed operation modules (link, addr, route, neigh, rule, bridge) bound
to it.  Those modules are imported on first use only, so a plugin pays for
what it calls.
"""

from __future__ import annotations

import _socket as socket
import errno as _errno
import os
import struct
import sys

# --- netlink message header ------------------------------------------------

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NLMSGERR_ATTR_MSG = 1

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

# rtnetlink message types
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
RTM_NEWRULE = 32
RTM_DELRULE = 33
RTM_GETRULE = 34
RTM_NEWQDISC = 36
RTM_DELQDISC = 37
RTM_GETQDISC = 38
RTM_NEWTFILTER = 44
RTM_DELTFILTER = 45
RTM_GETTFILTER = 46

AF_UNSPEC = 0
AF_INET = 2
AF_BRIDGE = 7
AF_INET6 = 10

_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLA = struct.Struct("=HH")  # len, type
_I32 = struct.Struct("=i")
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")

MAX_DUMP_ATTEMPTS = 5
_RECV_SIZE = 1 << 18


# --- errors -----------------------------------------------------------------


class NetlinkError(OSError):
    """A kernel (or netlink protocol) failure: `.errno`, `.op`, `.ext_msg`.

    `str(e)` is ``"<op>: <strerror>"``, e.g. ``"add link veth1: File exists"``.
    `.ext_msg` carries the kernel's extended-ack text when it sent one.
    """

    def __init__(self, err: int, op: str = "", msg: str | None = None, ext_msg: str = "") -> None:
        super().__init__(err, msg or os.strerror(err))
        self.op = op
        self.ext_msg = ext_msg

    def __str__(self) -> str:
        return f"{self.op}: {self.strerror}" if self.op else str(self.strerror)

    def __reduce__(self):
        return (type(self), (self.errno, self.op, self.strerror, self.ext_msg))


class LinkNotFound(NetlinkError):
    """The link named by an operation does not exist (errno ENODEV)."""

    def __init__(
        self, err: int = _errno.ENODEV, op: str = "", msg: str | None = None, ext_msg: str = ""
    ) -> None:
        super().__init__(err, op, msg, ext_msg)


# --- attribute codec ----------------------------------------------------------


def nla(atype: int, payload: bytes) -> bytes:
    """One attribute (header, payload, padding to 4 bytes)."""
    n = 4 + len(payload)
    return _NLA.pack(n, atype) + payload + b"\0" * (-n & 3)


def nla_u8(atype: int, v: int) -> bytes:
    return nla(atype, bytes((v & 0xFF,)))


def nla_u16(atype: int, v: int) -> bytes:
    return nla(atype, _U16.pack(v))


def nla_be16(atype: int, v: int) -> bytes:
    return nla(atype, v.to_bytes(2, "big"))


def nla_u32(atype: int, v: int) -> bytes:
    return nla(atype, _U32.pack(v))


def nla_s32(atype: int, v: int) -> bytes:
    return nla(atype, _I32.pack(v))


def nla_str(atype: int, s: str) -> bytes:
    """A NUL-terminated string attribute."""
    return nla(atype, s.encode("utf-8", "surrogateescape") + b"\0")


def nla_nest(atype: int, *children: bytes, nested_flag: bool = False) -> bytes:
    return nla(atype | (NLA_F_NESTED if nested_flag else 0), b"".join(children))


def iter_attrs(buf, start: int = 0, end: int | None = None):
    """Yield (type, payload memoryview) for each attribute in buf[start:end].

    The type has NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off.
    """
    mv = memoryview(buf)
    if end is None:
        end = len(mv)
    off = start
    unpack = _NLA.unpack_from
    while off + 4 <= end:
        n, t = unpack(mv, off)
        if n < 4 or off + n > end:
            break
        yield t & NLA_TYPE_MASK, mv[off + 4 : off + n]
        off += (n + 3) & ~3


def parse_attrs(buf, start: int = 0, end: int | None = None) -> dict:
    """Attributes as {type: payload}; a repeated type keeps the last one."""
    return dict(iter_attrs(buf, start, end))


def get_u8(mv) -> int:
    return mv[0]


def get_u16(mv) -> int:
    return _U16.unpack_from(mv)[0]


def get_u32(mv) -> int:
    return _U32.unpack_from(mv)[0]


def get_s32(mv) -> int:
    return _I32.unpack_from(mv)[0]


def get_str(mv) -> str:
    b = bytes(mv)
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    return b.decode("utf-8", "surrogateescape")


# --- address helpers (no ipaddress import) ------------------------------------


def ip_family(ip: str) -> int:
    return AF_INET6 if ":" in ip else AF_INET


def ip_pack(ip: str) -> tuple[int, bytes]:
    """'198.18.0.1' -> (AF_INET, 4 bytes); raises ValueError on a bad address."""
    fam = ip_family(ip)
    try:
        return fam, socket.inet_pton(fam, ip)
    except (OSError, ValueError):
        raise ValueError(f"invalid IP address: {ip!r}")


def ip_unpack(family: int, raw) -> str:
    return socket.inet_ntop(family, bytes(raw))


def parse_cidr(cidr: str, *, mask: bool = False) -> tuple[int, bytes, int]:
    """'198.18.0.2/24' -> (family, address bytes, prefixlen).

    Without a '/', the prefix is the full length. With mask=True the host bits
    are cleared (Go's ParseCIDR network).
    """
    ip, sep, plen = cidr.partition("/")
    fam, raw = ip_pack(ip.strip())
    full = len(raw) * 8
    if sep:
        try:
            n = int(plen)
        except ValueError:
            raise ValueError(f"invalid CIDR address: {cidr!r}")
        if not 0 <= n <= full:
            raise ValueError(f"invalid CIDR address: {cidr!r}")
    else:
        n = full
    if mask:
        raw = mask_bytes(raw, n)
    return fam, raw, n


def mask_bytes(raw: bytes, prefixlen: int) -> bytes:
    bits = len(raw) * 8
    v = int.from_bytes(raw, "big")
    m = ((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1)
    return (v & m).to_bytes(len(raw), "big")


def mac_pack(mac: str | bytes) -> bytes:
    if isinstance(mac, (bytes, bytearray)):
        return bytes(mac)
    try:
        raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    except ValueError:
        raw = b""
    if not raw:
        raise ValueError(f"invalid MAC address: {mac!r}")
    return raw


def mac_unpack(raw) -> str:
    return bytes(raw).hex(":")


# --- the socket -----------------------------------------------------------------


class _Msg:
    """One received netlink message: type, flags, seq and the payload view."""

    __slots__ = ("flags", "payload", "seq", "type")

    def __init__(self, mtype: int, flags: int, seq: int, payload) -> None:
        self.type = mtype
        self.flags = flags
        self.seq = seq
        self.payload = payload


def _error_from(body, flags: int, op: str, nodev) -> NetlinkError:
    err = -_I32.unpack_from(body)[0]
    ext = ""
    if flags & NLM_F_ACK_TLVS and len(body) >= 20:
        orig_len = _U32.unpack_from(body, 4)[0]
        off = 20 if flags & NLM_F_CAPPED else 4 + orig_len
        off = (off + 3) & ~3
        for t, v in iter_attrs(body, off):
            if t == NLMSGERR_ATTR_MSG:
                ext = get_str(v)
    cls = nodev if (nodev is not None and err == _errno.ENODEV) else NetlinkError
    return cls(err, op, None, ext)


class _Op:
    """An RtNetlink method that is an operation module's function.

    `link_set = _Op("link")` in the class makes `rt.link_set(...)` call
    `pycni.kernel.link.link_set(rt, ...)` (`_Op("bridge", "port_set")` names
    the function when it differs).  The module is imported on first use only,
    and the function is looked up on every access, so it stays the one
    definition of the operation: signature, docstring and behaviour.
    """

    __slots__ = ("func", "module")

    def __init__(self, module: str, func: str = "") -> None:
        self.module = "pycni.kernel." + module
        self.func = func

    def __set_name__(self, owner, name: str) -> None:
        self.func = self.func or name

    def __get__(self, obj, owner=None):
        __import__(self.module)  # also waits for another thread's import to finish
        fn = getattr(sys.modules[self.module], self.func)
        return fn if obj is None else fn.__get__(obj, owner)


class RtNetlink:
    """A NETLINK_ROUTE socket; `netns` (path or fd) opens it inside that netns
    (the calling thread enters it only while the socket is created).

    The operations (link_*, bridge_*, addr_*, wait_dad, route_*, neigh_*,
    rule_*, qdisc_*, filter_*) are the functions of the modules link, bridge,
    addr, route, neigh, rule and tc, bound to this socket (see `_Op`).
    Every kernel failure is a NetlinkError carrying the kernel's errno;
    ENODEV on an operation naming a link is LinkNotFound.  Use as a context
    manager or call close().
    """

    _seq: int
    _buf: bytearray | None
    _sock: socket.socket | None

    def __init__(self, netns: str | int | None = None) -> None:
        self._seq = 0
        self._buf = None
        if netns is None:
            self._sock = self._open()
        else:
            from pycni.kernel.netns import enter

            with enter(netns):
                self._sock = self._open()

    @staticmethod
    def _open() -> socket.socket:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        try:
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        except OSError:
            pass
        return s

    @classmethod
    def _with_socket(cls, sock) -> RtNetlink:
        """Wrap an existing socket-like object (tests use a fake one)."""
        self = cls.__new__(cls)
        self._seq = 0
        self._buf = None
        self._sock = sock
        return self

    # context manager / lifetime
    def close(self) -> None:
        s, self._sock = self._sock, None
        if s is not None:
            s.close()

    def __enter__(self) -> RtNetlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fileno(self) -> int:
        if self._sock is None:
            raise ValueError("RtNetlink socket is closed")
        return self._sock.fileno()

    # low level
    def _send(self, mtype: int, flags: int, payload: bytes) -> int:
        if self._sock is None:
            raise ValueError("RtNetlink socket is closed")
        self._seq = seq = (self._seq + 1) & 0xFFFFFFFF or 1
        self._sock.send(_HDR.pack(16 + len(payload), mtype, flags, seq, 0) + payload)
        return seq

    def _recv(self) -> list[_Msg]:
        assert self._sock is not None  # _send, which comes first, checked it
        if self._buf is None:
            self._buf = bytearray(_RECV_SIZE)
        n = self._sock.recv_into(self._buf, _RECV_SIZE, socket.MSG_TRUNC)
        if n > _RECV_SIZE:
            raise NetlinkError(_errno.EMSGSIZE, "receive netlink message")
        data = memoryview(bytes(self._buf[:n]))
        out: list[_Msg] = []
        off = 0
        while off + 16 <= n:
            ln, t, f, seq, _pid = _HDR.unpack_from(data, off)
            if ln < 16 or off + ln > n:
                break
            out.append(_Msg(t, f, seq, data[off + 16 : off + ln]))
            off += (ln + 3) & ~3
        return out

    def request(self, mtype: int, payload: bytes, op: str, flags: int = 0, nodev=None) -> list:
        """Send one request with NLM_F_ACK; return the reply messages before the ack.

        A kernel error raises NetlinkError (or `nodev` for ENODEV).
        """
        seq = self._send(mtype, flags | NLM_F_REQUEST | NLM_F_ACK, payload)
        out: list[_Msg] = []
        while True:
            for m in self._recv():
                if m.seq != seq:
                    continue
                if m.type == NLMSG_ERROR:
                    if _I32.unpack_from(m.payload)[0]:
                        raise _error_from(m.payload, m.flags, op, nodev)
                    return out
                if m.type == NLMSG_DONE:
                    return out
                if m.type != NLMSG_NOOP:
                    out.append(m)

    def dump(self, mtype: int, payload: bytes, op: str, flags: int = 0) -> list:
        """A dump request; retried while the kernel flags it NLM_F_DUMP_INTR."""
        for _ in range(MAX_DUMP_ATTEMPTS):
            msgs, interrupted = self._dump_once(mtype, payload, op, flags)
            if not interrupted:
                return msgs
        raise NetlinkError(
            _errno.EINTR,
            op,
            f"dump interrupted {MAX_DUMP_ATTEMPTS} times; results may be incomplete",
        )

    def _dump_once(self, mtype: int, payload: bytes, op: str, flags: int):
        seq = self._send(mtype, flags | NLM_F_REQUEST | NLM_F_DUMP, payload)
        out: list[_Msg] = []
        interrupted = False
        while True:
            for m in self._recv():
                if m.seq != seq:
                    continue
                if m.flags & NLM_F_DUMP_INTR:
                    interrupted = True
                if m.type == NLMSG_DONE:
                    if len(m.payload) >= 4:
                        err = -_I32.unpack_from(m.payload)[0]
                        if err:
                            raise NetlinkError(err, op)
                    return out, interrupted
                if m.type == NLMSG_ERROR:
                    if _I32.unpack_from(m.payload)[0]:
                        raise _error_from(m.payload, m.flags, op, None)
                    return out, interrupted
                if m.type != NLMSG_NOOP:
                    out.append(m)

    # --- typed operations ------------------------------------------------------
    # Each one is pycni.kernel.<module>.<function> called with this socket as its
    # first argument; that function's signature and docstring are the reference.

    link_list = _Op("link")
    link_get = _Op("link")
    link_find = _Op("link")
    link_add = _Op("link")
    link_add_bridge = _Op("link")
    link_add_veth = _Op("link")
    link_set = _Op("link")
    link_del = _Op("link")

    bridge_port_set = _Op("bridge", "port_set")
    bridge_vlan_add = _Op("bridge", "vlan_add")
    bridge_vlan_del = _Op("bridge", "vlan_del")
    bridge_vlan_list = _Op("bridge", "vlan_list")

    addr_list = _Op("addr")
    addr_add = _Op("addr")
    addr_del = _Op("addr")
    wait_dad = _Op("addr")

    route_list = _Op("route")
    route_add = _Op("route")
    route_del = _Op("route")
    route_get = _Op("route")

    neigh_list = _Op("neigh")
    neigh_add = _Op("neigh")
    neigh_del = _Op("neigh")

    rule_list = _Op("rule")
    rule_add = _Op("rule")
    rule_del = _Op("rule")

    qdisc_add_tbf = _Op("tc")
    qdisc_add_ingress = _Op("tc")
    qdisc_del = _Op("tc")
    qdisc_list = _Op("tc")
    filter_add_u32_redirect = _Op("tc")
    filter_list = _Op("tc")


def index_of(link_or_index) -> int:
    """Accept a Link (anything with .index) or an int."""
    idx = getattr(link_or_index, "index", link_or_index)
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise TypeError(f"expected a Link or an interface index, got {link_or_index!r}")
    return idx


class _NetnsFd:
    """An fd for IFLA_NET_NS_FD from a path or fd (None: no netns, fd None);
    closes only what it opened."""

    __slots__ = ("fd", "owned")

    fd: int | None
    owned: bool

    def __init__(self, ns) -> None:
        if ns is None:
            self.fd, self.owned = None, False
        elif isinstance(ns, int):
            self.fd, self.owned = ns, False
        else:
            from pycni.kernel.netns import open_netns

            self.fd, self.owned = open_netns(os.fspath(ns)), True

    def __enter__(self) -> int | None:
        return self.fd

    def __exit__(self, *exc) -> None:
        if self.owned and self.fd is not None:
            os.close(self.fd)


netns_fd = _NetnsFd
