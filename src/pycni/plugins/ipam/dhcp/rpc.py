"""Go net/rpc over HTTP on a unix socket: what the dhcp plugin and daemon speak.

Why: the reference plugin calls its daemon with `rpc.DialHTTP("unix", path)`
and `client.Call("DHCP.Allocate", *skel.CmdArgs, *current.Result)`; speaking
the same protocol lets Go's plugin use our daemon and ours use Go's.

Protocol (Go's net/rpc): the client writes "CONNECT /_goRPC_ HTTP/1.0\\n\\n",
the server answers "HTTP/1.0 200 Connected to Go RPC\\n\\n"; then each call
is a gob Request{ServiceMethod, Seq} followed by the argument, and each
answer a gob Response{ServiceMethod, Seq, Error} followed by the reply (an
empty struct when Error is set).  Each direction is one gob stream for the
whole connection, so type definitions are sent once per connection; a
server answers concurrent calls in any order, matched by Seq.
"""

from __future__ import annotations

# The C module: `socket` would pull in enum and selectors (7 ms per plugin
# exec); threading is imported by the Server only.
import _socket
import errno

from pycni.plugins.ipam.dhcp import gob
from pycni.plugins.ipam.dhcp.wire import CMD_ARGS, EMPTY, METHODS, REQUEST, RESPONSE

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import socket
    import threading
    from collections.abc import Callable
    from typing import Optional

    Handler = Callable[[dict], Optional[dict]]
    Handlers = dict[str, Handler]

RPC_PATH = "/_goRPC_"
CONNECTED = "200 Connected to Go RPC"
_MAX_HEADER = 8192
_TEMPORARY = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED}


class RemoteError(Exception):
    """The call reached the server, which answered with this error text."""


class ProtocolError(ConnectionError):
    """The peer does not speak Go's net/rpc (or broke the gob stream)."""


class _Reader:
    """Buffered reads on a socket (socket.makefile needs the `socket`
    module); read(n) is exact, EOFError on a clean end of stream, for
    gob.Decoder."""

    def __init__(self, sock: socket.socket | _socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self._sock.recv(65536)
        self._buf += data
        return bool(data)

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                if not self._buf:
                    raise EOFError("connection closed")
                raise ProtocolError("connection closed in the middle of a gob message")
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def readline(self, limit: int) -> bytes:
        """Up to and including b"\\n", at most `limit` bytes, b"" at the end."""
        while b"\n" not in self._buf and len(self._buf) < limit:
            if not self._fill():
                break
        end = self._buf.find(b"\n")
        end = min(limit, len(self._buf) if end < 0 else end + 1)
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line


def _read_header(reader: _Reader) -> list[str]:
    """The lines of an HTTP/1.0 head up to the blank line (\\n or \\r\\n)."""
    lines: list[str] = []
    total = 0
    while True:
        line = reader.readline(_MAX_HEADER)
        total += len(line)
        if not line:
            raise ProtocolError("connection closed during the HTTP handshake")
        if total > _MAX_HEADER:
            raise ProtocolError("HTTP handshake too long")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return lines
        lines.append(text)


# ------------------------------------------------------------------ client


def call(socket_path: str, method: str, args: dict, timeout: float | None = None) -> dict:
    """One net/rpc call on a fresh connection, like the Go plugin's rpcCall.

    `args` is a skel.CmdArgs dict (see wire.cmdargs).  Returns the reply: a
    current.Result dict for DHCP.Allocate, {} for DHCP.Release.  Raises
    RemoteError with the server's error text, OSError (ProtocolError,
    socket.timeout, ConnectionRefusedError, FileNotFoundError, ...) when the
    call did not get an answer."""
    arg_type, reply_type = METHODS.get(method, (CMD_ARGS, None))
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    reader = _Reader(sock)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(b"CONNECT " + RPC_PATH.encode() + b" HTTP/1.0\n\n")
        head = _read_header(reader)
        status = head[0].partition(" ")[2] if head else ""
        if not head or not head[0].startswith("HTTP/") or status != CONNECTED:
            raise ProtocolError(f"unexpected HTTP response: {status or '(none)'}")
        enc = gob.Encoder()
        seq = 0
        sock.sendall(
            enc.encode({"ServiceMethod": method, "Seq": seq}, REQUEST) + enc.encode(args, arg_type)
        )
        dec = gob.Decoder(reader.read)
        try:
            resp = dec.decode(RESPONSE)
            if resp["Seq"] != seq:
                raise ProtocolError(f"rpc: response for call {resp['Seq']}, expected {seq}")
            if resp["Error"]:
                dec.decode()  # the empty body
                raise RemoteError(resp["Error"])
            reply = dec.decode(reply_type)
        except EOFError:
            raise ProtocolError("rpc: connection closed before the reply") from None
        except gob.GobError as exc:
            raise ProtocolError(f"rpc: bad reply: {exc}") from None
        if not isinstance(reply, dict):
            raise ProtocolError(f"rpc: {method} replied a {type(reply).__name__}, not a struct")
        return reply
    finally:
        sock.close()


# ------------------------------------------------------------------ server


class Server:
    """A net/rpc server for `handlers` {"Service.Method": fn(args) -> reply}.

    Each handler gets the decoded argument (a CmdArgs dict) and returns the
    reply dict (a current.Result dict for DHCP.Allocate; None or {} for an
    empty struct); an exception becomes the Response's Error text, as a Go
    method's error does."""

    def __init__(self, handlers: Handlers) -> None:
        import threading

        self.handlers = dict(handlers)
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._new_lock = threading.Lock
        self._conns: set[socket.socket] = set()
        self._thread = threading.Thread

    def serve(self, listener: socket.socket) -> None:
        """Accept connections until shutdown(); one thread per connection."""
        self._listener = listener
        while not self._stopping.is_set():
            try:
                conn, _addr = listener.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    return
                if exc.errno not in _TEMPORARY:
                    raise
                # out of descriptors or memory: wait, as Go's http.Serve does
                self._stopping.wait(0.1)
                continue
            with self._lock:
                if self._stopping.is_set():
                    conn.close()
                    return
                self._conns.add(conn)
            self._thread(
                target=self._connection, args=(conn,), name="rpc-conn", daemon=True
            ).start()

    def shutdown(self) -> None:
        """Stop serve() and close the listener and every open connection."""
        self._stopping.set()
        with self._lock:
            conns = list(self._conns)
        listener = self._listener
        if listener is not None:
            try:
                listener.shutdown(_socket.SHUT_RDWR)  # wakes a blocked accept()
            except OSError:
                pass
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection(self, conn: socket.socket) -> None:
        reader = _Reader(conn)
        try:
            if self._handshake(conn, reader):
                self._requests(conn, reader)
        except (OSError, gob.GobError, EOFError):
            pass  # a broken or closed connection: Go's server drops it too
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _handshake(self, conn: socket.socket, reader: _Reader) -> bool:
        head = _read_header(reader)
        verb, _, rest = (head[0] if head else "").partition(" ")
        path = rest.partition(" ")[0]
        if verb != "CONNECT":
            conn.sendall(
                b"HTTP/1.0 405 Method Not Allowed\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n\r\n405 must CONNECT\n"
            )
            return False
        if path != RPC_PATH:
            conn.sendall(b"HTTP/1.0 404 Not Found\r\n\r\n404 page not found\n")
            return False
        conn.sendall(b"HTTP/1.0 " + CONNECTED.encode() + b"\n\n")
        return True

    def _requests(self, conn: socket.socket, reader: _Reader) -> None:
        dec = gob.Decoder(reader.read)
        enc = gob.Encoder()
        wlock = self._new_lock()
        while True:
            try:
                req = dec.decode(REQUEST)
            except EOFError:
                return
            method = req["ServiceMethod"]
            handler = self.handlers.get(method)
            arg_type = METHODS.get(method, (CMD_ARGS, None))[0]
            args = dec.decode(arg_type if handler is not None else None)
            if handler is None:
                self._reply(conn, enc, wlock, req, None, _unknown(method, self.handlers))
                continue
            self._thread(
                target=self._run,
                args=(conn, enc, wlock, req, handler, args),
                name="rpc-call",
                daemon=True,
            ).start()

    def _run(
        self,
        conn: socket.socket,
        enc: gob.Encoder,
        wlock: threading.Lock,
        req: dict,
        handler: Handler,
        args: dict,
    ) -> None:
        try:
            reply = handler(args)
            error = ""
        except Exception as exc:  # a Go method's error: sent, not raised
            reply, error = None, str(exc) or type(exc).__name__
        try:
            self._reply(conn, enc, wlock, req, reply, error)
        except OSError:
            pass

    def _reply(
        self,
        conn: socket.socket,
        enc: gob.Encoder,
        wlock: threading.Lock,
        req: dict,
        reply: dict | None,
        error: str,
    ) -> None:
        method = req["ServiceMethod"]
        reply_type = METHODS.get(method, (None, EMPTY))[1] if not error else EMPTY
        with wlock:
            try:
                body = enc.encode(reply or {}, reply_type)
            except gob.GobError as exc:
                error, body = f"rpc: cannot encode the reply: {exc}", enc.encode({}, EMPTY)
            resp = {"ServiceMethod": method, "Seq": req["Seq"], "Error": error}
            conn.sendall(enc.encode(resp, RESPONSE) + body)


def _unknown(method: str, handlers: Handlers) -> str:
    """Go's server errors for a method it does not have."""
    service, dot, _name = method.rpartition(".")
    if not dot:
        return f"rpc: service/method request ill-formed: {method}"
    if not any(m.rpartition(".")[0] == service for m in handlers):
        return f"rpc: can't find service {method}"
    return f"rpc: can't find method {method}"
