"""`sql daemon`: the node daemon that runs the sql plugin's verbs for
engines a plugin process must not load (PostgreSQL; see remote.py).

One thread per request (at most `-maxrequests` at once; the listen backlog
holds the rest), each running the plugin's own verbs.cmd_* on the request,
validated as skel validates an invocation. Engines stay open between
requests in a pool keyed by the database config (engine.PROVIDER is the
pool, so verbs' `open_engine` takes one and `close()` gives it back); an
engine that reports itself broken (`broken`) is dropped with every idle
engine of its database, and the next request opens a new one. A request
that failed with code 11 on an engine taken from the pool, which turned
out broken (the server restarted while it sat idle), runs once more on a
fresh connection; during an outage requests fail with code 11 and succeed
again once the database is back, without a restart of the daemon.

An ADD whose COMMIT outcome is unknown (the connection broke during
COMMIT: engine.OutcomeUnknown) may have leased addresses the
runtime will never hear of. The daemon answers 11 and releases that
attachment's leases as soon as the database answers: at once if it can,
else before it serves the next request of that attachment, and from a
background retry every RETRY_PENDING seconds meanwhile. (In memory only: a
daemon restarted meanwhile forgets it; the runtime's DEL after the failed
ADD, or GC, frees the lease then.)

Trust: the socket is 0600 in a 0700 folder (root's only) and a peer whose
SO_PEERCRED uid is neither root nor the daemon's own is refused; a request
is read within READ_TIMEOUT, at most remote.MAX_REQUEST bytes, and checked
field by field before anything runs. SIGTERM/SIGINT: stop accepting, let
the running requests finish (at most `-shutdowntimeout`), exit 0; a socket
systemd passed is left to systemd.
"""

from __future__ import annotations

import os
import sys
import threading

from pycni.faultpoint import step
from pycni.plugins.ipam.sql import engine as engines
from pycni.plugins.ipam.sql.conf import DEFAULT_SOCKET_PATH
from pycni.plugins.ipam.sql.remote import MAX_REQUEST, frame
from pycni.plugins.pkg import unixdaemon as ud
from pycni.plugins.pkg.unixdaemon import log
from pycni.skel import Plugin
from pycni.spec.errors import ERR_INTERNAL, ERR_TRY_AGAIN_LATER, CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import socket

    from pycni.plugins.ipam.sql.conf import DatabaseConfig
    from pycni.skel import CmdArgs

#: the verbs themselves, in this process (the plugin's PLUGIN forwards)
LOCAL = Plugin(about="pycni sql IPAM daemon", verbs="pycni.plugins.ipam.sql.verbs")
VERBS = ("ADD", "DEL", "CHECK", "GC", "STATUS")
#: seconds a client has to send its request (and to take the answer)
READ_TIMEOUT = 10.0
#: seconds between retries of the releases an unknown commit left pending
RETRY_PENDING = 5.0
#: engines not pooled: SQLite's connections belong to the thread that
#: opened them, and opening one costs a file open
UNPOOLED = ("sqlite",)
#: idle engines kept per database
MAX_IDLE = 16

FLAGS = {
    # name: (kind, default, usage)
    "socketpath": ("string", "", f"optional socket path (default {DEFAULT_SOCKET_PATH})"),
    "pidfile": ("string", "", "optional path to write daemon PID to"),
    "maxrequests": ("int", 64, "requests served at once (more wait in the listen backlog)"),
    "shutdowntimeout": ("duration", 20.0, "how long a stop waits for running requests"),
}


class BadRequest(Exception):
    """The peer did not send a request of our protocol."""


# --- the engine pool ----------------------------------------------------------------------


def db_key(db: DatabaseConfig) -> tuple:
    """A database config as a dict key: every field of it."""
    return tuple(getattr(db, name, None) for name in type(db).__slots__)


def is_broken(engine: object) -> bool:
    return bool(getattr(engine, "broken", False))


def commit_unknown(err: BaseException) -> bool:
    """The engine's signal that a COMMIT's outcome is unknown."""
    return isinstance(err, engines.OutcomeUnknown)


def _close(engine: object) -> None:
    try:
        engine.close()  # type: ignore[attr-defined]
    except Exception:
        pass


class Pooled:
    """An engine lent by the pool: everything is the engine's but close(),
    which gives it back (or drops it when it is broken)."""

    __slots__ = ("_closed", "_key", "_pool", "_reused", "engine")

    def __init__(self, pool: EnginePool, key: tuple, engine: object, reused: bool) -> None:
        self._pool = pool
        self._key = key
        self.engine = engine
        self._reused = reused
        self._closed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.give_back(self._key, self.engine, self._reused)


class EnginePool:
    """Open engines per database, one per concurrent request."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: dict[tuple, list] = {}
        self._local = threading.local()
        self.opened = 0  # engines opened so far (tests, logs)

    def open(self, db: DatabaseConfig, create: bool, migrate: bool = True):
        """engine.open_engine for the daemon's verbs."""
        if db.engine in UNPOOLED:
            return engines.open_new(db, create, migrate)
        key = db_key(db)
        with self._lock:
            idle = self._idle.get(key)
            engine = idle.pop() if idle else None
        reused = engine is not None
        if engine is None:
            engine = engines.open_new(db, create, migrate)
            if engine is None:
                return None
            with self._lock:
                self.opened += 1
        return Pooled(self, key, engine, reused)

    def give_back(self, key: tuple, engine: object, reused: bool) -> None:
        if is_broken(engine):
            if reused:
                self._local.stale = True
            # the connections opened before the break are likely dead too
            log("a database connection broke: dropping the idle ones of that database")
            self.flush(key)
            _close(engine)
            return
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle:
                idle.append(engine)
                return
        _close(engine)

    def flush(self, key: tuple | None = None) -> None:
        """Close the idle engines of one database (None: of all)."""
        with self._lock:
            if key is None:
                dropped = [e for idle in self._idle.values() for e in idle]
                self._idle.clear()
            else:
                dropped = self._idle.pop(key, [])
        for engine in dropped:
            _close(engine)

    def idle(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def begin(self) -> None:
        """A request's attempt starts: no stale engine seen yet."""
        self._local.stale = False

    def saw_stale(self) -> bool:
        """This thread's attempt got an idle engine that turned out broken."""
        return bool(getattr(self._local, "stale", False))


# --- the service --------------------------------------------------------------------------


def parse_request(raw: bytes) -> dict:
    """The request object, every field checked; BadRequest otherwise."""
    from pycni.spec.jsonutil import go_loads, json_kind

    try:
        req = go_loads(raw)
    except ValueError as err:
        raise BadRequest(f"not JSON: {err}")
    if not isinstance(req, dict):
        raise BadRequest(f"expected an object, got {json_kind(req)}")
    command = req.get("command")
    if command not in VERBS:
        raise BadRequest(f"unknown command {command!r}")
    for key in ("containerID", "netns", "ifname", "args", "config"):
        value = req.get(key, "")
        if not isinstance(value, str):
            raise BadRequest(f"{key}: expected a string, got {json_kind(value)}")
        if "\0" in value:
            raise BadRequest(f"{key}: contains a NUL character")
    path = req.get("path", [])
    if not isinstance(path, list) or not all(isinstance(p, str) and ":" not in p for p in path):
        raise BadRequest("path: expected a list of directories")
    return req


def _error(err: CNIError) -> dict:
    return {"error": {"code": err.code, "msg": err.msg, "details": err.details}}


class Service:
    """Runs requests: the verbs over the pool, plus the pending releases."""

    def __init__(self, pool: EnginePool | None = None) -> None:
        self.pool = pool if pool is not None else EnginePool()
        self._lock = threading.Lock()
        # (db key, network, container ID, ifname) -> (DatabaseConfig, network, cid, ifname)
        self.pending: dict[tuple, tuple] = {}

    def handle(self, raw: bytes) -> dict:
        """One raw request -> the answer object; never raises."""
        try:
            req = parse_request(raw)
        except BadRequest as err:
            return _error(CNIError(ERR_INTERNAL, f"sql daemon: bad request: {err}"))
        try:
            return self.run(req)
        except CNIError as err:
            return _error(err)
        except Exception as err:  # as skel: any failure is an answer, code 999
            return _error(CNIError(ERR_INTERNAL, str(err) or type(err).__name__))

    def run(self, req: dict) -> dict:
        import io

        from pycni.skel import gate, parse_invocation

        environ = {
            "CNI_COMMAND": req["command"],
            "CNI_CONTAINERID": req.get("containerID", ""),
            "CNI_NETNS": req.get("netns", ""),
            "CNI_IFNAME": req.get("ifname", ""),
            "CNI_ARGS": req.get("args", ""),
            "CNI_PATH": os.pathsep.join(req.get("path", [])),
            # the plugin compared the netns with its own; ours means nothing
            "CNI_NETNS_OVERRIDE": "1",
        }
        args = parse_invocation(environ, io.BytesIO(req.get("config", "").encode()))
        handler = gate(args, LOCAL)
        if handler is None:
            return {"result": None}
        who = self._attachment(args)
        if who is not None:
            self._settle(who)
        outcome = self._attempt(handler, args, who)
        if args.command != "ADD":
            return {"result": None}
        if outcome is None:
            raise CNIError(ERR_INTERNAL, "plugin ADD handler returned no result")
        return {"result": outcome.to_dict()}

    def _attempt(self, handler, args: CmdArgs, who: tuple | None):
        """The verb; once more on a fresh engine when it failed with 11 on
        an idle engine that turned out broken."""
        for attempt in (1, 2):
            self.pool.begin()
            try:
                return handler(args)
            except CNIError as err:
                if commit_unknown(err) and who is not None and args.command == "ADD":
                    self._commit_unknown(who, err)
                stale = err.code == ERR_TRY_AGAIN_LATER and self.pool.saw_stale()
                if attempt == 1 and stale and not commit_unknown(err):
                    continue
                raise
        raise AssertionError("not reached")

    # --- leases an unknown commit may have left ---------------------------------------

    def _attachment(self, args: CmdArgs) -> tuple | None:
        """(key, (db, network, cid, ifname)) of an attachment verb; None
        when the config does not say (the verb reports that itself)."""
        if args.command not in ("ADD", "DEL", "CHECK"):
            return None
        from pycni.plugins.ipam.sql.conf import load_store

        try:
            cfg = load_store(args.conf)
        except CNIError:
            return None
        key = (db_key(cfg.database), cfg.name, args.container_id, args.ifname)
        return key, (cfg.database, cfg.name, args.container_id, args.ifname)

    def _commit_unknown(self, who: tuple, err: CNIError) -> None:
        key, target = who
        log(
            f"ADD of {target[2]}/{target[3]} on network {target[1]!r}: commit outcome unknown "
            f"({err.msg}); its leases are released once the database answers"
        )
        with self._lock:
            self.pending[key] = target
        try:
            self._release(key)
        except CNIError:
            pass  # still down: before the next request of it, or the retry loop

    def _settle(self, who: tuple) -> None:
        """Before serving an attachment: release what an unknown commit of
        it may have left; CNIError 11 while the database cannot say."""
        key, _ = who
        with self._lock:
            pending = key in self.pending
        if not pending:
            return
        try:
            self._release(key)
        except CNIError as err:
            raise CNIError(
                ERR_TRY_AGAIN_LATER,
                "sql daemon: an earlier ADD of this attachment ended with an unknown commit "
                f"and its leases cannot be released yet: {err.msg}",
                "try again later",
            )

    def _release(self, key: tuple) -> None:
        from pycni.plugins.ipam.sql.allocator import release
        from pycni.plugins.ipam.sql.conf import SqlConfig
        from pycni.plugins.ipam.sql.verbs import _commit

        with self._lock:
            target = self.pending.get(key)
        if target is None:
            return
        db, network, cid, ifname = target
        cfg = SqlConfig(network, "", db, "")
        _commit(cfg, "sql.daemon.release.commit", lambda tx: release(tx, network, cid, ifname))
        with self._lock:
            if self.pending.get(key) is target:
                del self.pending[key]
        log(f"released the leases of {cid}/{ifname} on network {network!r} (unknown commit)")

    def retry_pending(self) -> None:
        with self._lock:
            keys = list(self.pending)
        for key in keys:
            try:
                self._release(key)
            except Exception:
                pass

    def close(self) -> None:
        self.pool.flush()


# --- the server ---------------------------------------------------------------------------


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _linger(conn: socket.socket) -> None:
    """After refusing a request unread: let the peer see the answer. A
    close with unread bytes would reset the connection and lose it, so
    read (and drop) a little of what it sent first."""
    import socket as socketmod

    conn.shutdown(socketmod.SHUT_WR)
    conn.settimeout(0.5)
    for _ in range(16):
        if not conn.recv(1 << 16):
            break


class Server:
    """Accepts connections; one thread per request, at most `max_requests`."""

    def __init__(self, service: Service, max_requests: int = 64) -> None:
        self.service = service
        self._slots = threading.BoundedSemaphore(max(1, max_requests))
        self._stopping = threading.Event()
        self._lock = threading.Condition()
        self._active = 0
        self.allowed_uids = {0, os.geteuid()}

    def serve(self, listener: socket.socket) -> None:
        """Accept until shutdown(). The listener is polled, not shut down:
        a socket systemd passed must stay usable for the next start."""
        import errno
        import socket as socketmod

        listener.settimeout(0.25)
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.25):
                continue
            try:
                conn, _ = listener.accept()
            except socketmod.timeout:
                self._slots.release()
                continue
            except OSError as err:
                self._slots.release()
                if self._stopping.is_set():
                    return
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._stopping.wait(0.1)
                    continue
                if err.errno == errno.ECONNABORTED:
                    continue
                raise
            with self._lock:
                self._active += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def stop_accepting(self) -> None:
        """serve() returns within its poll interval."""
        self._stopping.set()

    def shutdown(self, timeout: float) -> bool:
        """Stop accepting and wait for the running requests, at most
        `timeout` seconds; whether they all ended."""
        import time

        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def active(self) -> int:
        with self._lock:
            return self._active

    def _connection(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(READ_TIMEOUT)
            answer, unread = self._answer(conn)
            step("sql.daemon.reply")
            conn.sendall(frame(answer))
            if unread:
                _linger(conn)
        except (OSError, EOFError):
            pass  # the peer left or stalled: nothing to answer to
        finally:
            conn.close()
            self._slots.release()
            with self._lock:
                self._active -= 1
                self._lock.notify_all()

    def _answer(self, conn: socket.socket) -> tuple[dict, bool]:
        """The answer to the connection's request; whether the request was
        refused unread."""
        uid = ud.peer_uid(conn)
        if uid is not None and uid not in self.allowed_uids:
            return _error(CNIError(ERR_INTERNAL, f"sql daemon: uid {uid} may not call")), True
        size = int.from_bytes(_recv_exact(conn, 4), "big")
        if size > MAX_REQUEST:
            msg = f"sql daemon: bad request: {size} bytes (at most {MAX_REQUEST})"
            return _error(CNIError(ERR_INTERNAL, msg)), True
        body = _recv_exact(conn, size)
        conn.settimeout(None)  # the verb takes what it takes
        answer = self.service.handle(body)
        conn.settimeout(READ_TIMEOUT)
        return answer, False


# --- the command --------------------------------------------------------------------------


def run(
    flags: dict, ready: threading.Event | None = None, stop: threading.Event | None = None
) -> None:
    """Serve until SIGINT or SIGTERM (or `stop`, from a test's thread)."""
    pidfile = str(flags["pidfile"])
    socket_path = str(flags["socketpath"]) or DEFAULT_SOCKET_PATH
    listener, activated = ud.start(socket_path, pidfile, "sql IPAM daemon")
    service = Service()
    server = Server(service, int(flags["maxrequests"]))
    engines.PROVIDER = service.pool.open
    stopped = threading.Event()
    serving = threading.Thread(target=server.serve, args=(listener,), name="sql-accept")
    serving.daemon = True
    serving.start()

    def retry() -> None:
        while not stopped.wait(RETRY_PENDING):
            service.retry_pending()

    threading.Thread(target=retry, name="sql-pending", daemon=True).start()
    stopping = ud.stop_signals(stop)
    log(f"listening on {socket_path if not activated else 'the socket systemd passed'}")
    if ready is not None:
        ready.set()
    closed = False
    try:
        ud.wait(stopping)
        log("shutting down")
        server.stop_accepting()
        serving.join(2.0)
        listener.close()
        if not activated:  # systemd owns (and removes) a socket it passed
            ud.remove(socket_path)
        closed = True
        if not server.shutdown(float(flags["shutdowntimeout"])):
            log(f"{server.active()} request(s) still running: exiting anyway")
    finally:
        stopped.set()
        if not closed:
            listener.close()
            if not activated:
                ud.remove(socket_path)
        if pidfile:
            ud.remove(pidfile)
        engines.PROVIDER = None
        service.close()


def main(argv: list[str]) -> int:
    if sys.flags.no_site:
        # A launcher runs plugins with -I -S: no import may depend on the
        # host's packages. The daemon needs one (the PostgreSQL driver), and
        # its start-up cost does not matter: it gets the interpreter's
        # system site-packages (Debian's python3-psycopg, or a pip install
        # into that interpreter), never a user's.
        import site

        site.main()
    return ud.main(argv, FLAGS, run)
