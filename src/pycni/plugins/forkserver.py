"""Run pycni's own plugins as forks of a warm process instead of exec'ing them.

A runtime that drives pycni's plugins pays, per plugin call, an interpreter
start-up and the plugin's imports, although the runtime is itself a warm
Python process running the very same code. `ForkServerExecutor` removes
both: when the executable about to run is a launcher of this installation on
this interpreter (`launcher.in_process_module`, the check in-process
delegation makes), the plugin runs in a process forked from a *fork server*;
anything else (third-party and Go plugins, another installation, another
interpreter) is exec'd as before.

The plugin still gets a process of its own, so nothing an exec gives is lost:
the call's environment (os.environ replaced), stdin, stdout and stderr on
pipes that the runtime reads exactly as it reads an exec'd plugin's
(`invoke.execute.exec_plugin` judges the output, the exit status, a signal
death and a timeout with the same code and the same messages), its own
process group when the call has a timeout (SIGTERM, SIGKILL after
KILL_GRACE, `PluginTimeoutError`), and setns, rlimits or anything else the
plugin changes stay confined to it.

How it works. On the first pycni plugin call the runtime forks the server
(about a millisecond: it inherits the runtime's imports). The server closes
every inherited file descriptor but its socket, resets the runtime's signal
handlers and atexit functions, puts the launcher's sys.path in place, and
waits on a socketpair. Per call, the runtime sends the plugin module, argv[0]
and environment, with the child ends of the three pipes and one end of a
fresh per-call socketpair (SCM_RIGHTS); the server imports the plugin's
package and its verbs module (once: later calls fork an already warm
process), forks the child, and answers on the per-call socket with the pid,
then, once it has reaped the child, with its wait status. At exit, each
child names the modules its call imported (plugins import most of theirs
lazily, inside a verb); the server imports them while idle, so later
children start with them loaded too (`_Learning`). Kill requests go
the same way and are carried out by the server, the child's parent, so they
can never hit a recycled pid. The server exits on EOF of its socket: when
the executor is closed, or when the runtime dies.

Threads: the executor is thread-safe (one lock around the server socket,
one socketpair per call), but the server is forked only while the runtime
runs a single thread (forking a multi-threaded process can copy a lock some
other thread holds); calls made while other threads run and no server has
been started yet are exec'd. A multi-threaded program calls `start()`
before it starts threads.

Turned off (every plugin exec'd) when the environment variable
PYCNI_FORK_SERVER is "0". The `pycni` command uses this executor; a library
user opts in with::

    from pycni.plugins.forkserver import ForkServerExecutor
    from pycni.runtime import CNIConfig

    with ForkServerExecutor() as executor:
        cni = CNIConfig(["/opt/cni/bin"], executor=executor)
        cni.add_network_list(net, rt)

Differences from an exec that remain: the plugin runs with the runtime's
interpreter flags (the launcher's `-I -S` path is reproduced, not its
flags), and stdio is UTF-8 whatever the call's locale (skel writes results
as UTF-8 anyway).
"""

from __future__ import annotations

import os
import sys

from pycni.invoke import Executor, execute
from pycni.plugins.launcher import in_process_module

#: "0" turns the fork server off
SWITCH = "PYCNI_FORK_SERVER"
#: largest request (module, argv0, environment); a larger one is exec'd
MAX_REQUEST = 65536
#: most bytes of module names a child tells the server
MAX_LEARNED = 65536

_FDS_PER_CALL = 4  # stdin, stdout, stderr of the child, the per-call socket
_STOP_SIGNALS = (1, 2, 3, 15)  # HUP, INT, QUIT, TERM
_SIGINT, _SIGPIPE, _SIGCHLD, _SIGXFSZ = 2, 13, 17, 25


class _ServerGone(Exception):
    """The server could not take the request: the call is exec'd instead."""


class ForkServerExecutor(Executor):
    """Forks pycni's installed plugins from a warm server, execs the rest."""

    def __init__(self) -> None:
        import _thread

        self._lock = _thread.allocate_lock()
        self._server: _Server | None = None
        self._broken = False

    def exec_plugin(
        self,
        path: str,
        stdin: bytes,
        env: dict | None = None,
        timeout: float | None = None,
        stderr=None,
    ) -> bytes:
        if os.environ.get(SWITCH, "") != "0":
            module = in_process_module(path)
            if module is not None:
                if env is None:
                    env = dict(os.environ)
                request = _request(module, path, env)
                server = self._get_server() if request is not None else None
                if server is not None and request is not None:

                    def spawn(_path: str, _env: dict, new_group: bool) -> _ForkedRun:
                        return _ForkedRun(server, request, new_group)

                    try:
                        return execute.exec_plugin(path, stdin, env, timeout, stderr, spawn)
                    except _ServerGone:
                        self._drop(server)
        return super().exec_plugin(path, stdin, env, timeout, stderr)

    def start(self, preload: list[str] | tuple[str, ...] = ()) -> bool:
        """Start the server now (before the program starts threads); whether
        it runs. The server imports the plugin modules of `preload` at once,
        while the caller goes on with its own work."""
        return self._get_server(tuple(preload)) is not None

    def prepare(self, plugin_types, paths: list[str] | tuple[str, ...]) -> bool:
        """Start the server, pre-importing the plugins of `plugin_types` that
        `paths` resolves to launchers of this installation, if there is one
        (a runtime calls this once it knows a network's plugins, so that the
        imports overlap its own work); whether the server runs."""
        if os.environ.get(SWITCH, "") == "0":
            return False
        modules = []
        for plugin_type in plugin_types:
            try:
                module = in_process_module(execute.find_in_path(plugin_type, paths))
            except Exception:  # not found or unreadable: the call reports it
                continue
            if module is not None and module not in modules:
                modules.append(module)
        return bool(modules) and self.start(modules)

    def close(self) -> None:
        """Stop the server (plugin calls in flight finish on their own)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()

    def __enter__(self) -> ForkServerExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def server_pid(self) -> int | None:
        """The running server's pid (for tests and diagnostics)."""
        server = self._server
        return None if server is None else server.pid

    def _get_server(self, preload: tuple[str, ...] = ()) -> _Server | None:
        server = self._server
        if server is not None:
            return server
        with self._lock:
            if self._server is None and not self._broken:
                import _thread

                if _thread._count():  # other threads run: do not fork now
                    return None
                try:
                    self._server = _Server.start(preload)
                except OSError:
                    self._broken = True
            return self._server

    def _drop(self, server: _Server) -> None:
        with self._lock:
            if self._server is server:
                self._server = None
                self._broken = True
        server.close()


def _request(module: str, path: str, env: dict) -> bytes | None:
    """The marshalled request, or None when exec must handle it (an
    environment posix_spawn would refuse, so that the error is exec's own)."""
    import marshal

    for key, value in env.items():
        if not (isinstance(key, str) and isinstance(value, str)):
            return None
        if not key or "=" in key or "\0" in key or "\0" in value:
            return None
    data = marshal.dumps((module, path, env))
    return data if len(data) <= MAX_REQUEST else None


# -- the runtime's side -----------------------------------------------------


class _Server:
    """The runtime's handle on a running server: its pid and socket."""

    def __init__(self, pid: int, sock) -> None:
        import _thread

        self.pid = pid
        self.sock = sock
        self.lock = _thread.allocate_lock()

    @classmethod
    def start(cls, preload: tuple[str, ...] = ()) -> _Server:
        import _socket

        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except BaseException:
            ours.close()
            theirs.close()
            raise
        if pid == 0:  # the server: never returns
            try:
                _serve(theirs, preload)
            finally:
                os._exit(0)
        theirs.close()
        return cls(pid, ours)

    def send(self, payload: bytes, fds: list[int]) -> None:
        import _socket

        packed = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, packed)]
        with self.lock:
            try:
                self.sock.sendmsg([payload], ancillary)
            except OSError as err:
                raise _ServerGone(str(err))

    def close(self) -> None:
        import _socket

        try:  # EOF for the server even if a forked copy of ours holds the socket
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


class _ForkedRun(execute._Run):
    """A plugin process forked by the server, seen as `execute._Run` sees
    an exec'd one: pipes, pid, kill, an exit fd and the wait status."""

    def __init__(self, server: _Server, request: bytes, new_group: bool) -> None:
        import _socket

        self.new_group = new_group
        fds: list[int] = []
        try:
            in_r, in_w = execute._pipe(fds)
            out_r, out_w = execute._pipe(fds)
            err_r, err_w = execute._pipe(fds)
            ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            self._call = ours.detach()
            fds.append(self._call)
            their_call = theirs.detach()
            fds.append(their_call)
            server.send((b"G" if new_group else b"-") + request, [in_r, out_w, err_w, their_call])
            for fd in (in_r, out_w, err_w, their_call):
                fds.remove(fd)
                os.close(fd)
            reply = os.read(self._call, 256)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        if reply[:1] != b"p":
            for fd in (in_w, out_r, err_r, self._call):
                os.close(fd)
            if reply[:1] == b"e":  # the fork failed: exec's "fork/exec" error
                errno = int(reply[1:])
                raise OSError(errno, os.strerror(errno))
            raise _ServerGone("no answer from the fork server")
        self.pid = int(reply[1:])
        self.stdin, self.stdout, self.stderr = in_w, out_r, err_r

    def kill(self, sig: int) -> None:
        try:
            os.write(self._call, b"k%d" % sig)
        except OSError:
            pass  # the server is gone, and with it the child's parent

    def _exit_fd(self) -> int:
        return self._call  # readable when the status arrives; communicate closes it

    def _reap(self, block: bool = True) -> tuple[bool, int]:
        data = os.read(self._call, 64)
        if data[:1] == b"s":
            return True, int(data[1:])
        return True, 9  # the server died: the wait status of a SIGKILL death


# -- the server's side ------------------------------------------------------


class _Child:
    __slots__ = ("call", "new_group", "pid", "pidfd", "reaped")

    def __init__(self, pid: int, call: int, new_group: bool, pidfd: int) -> None:
        self.pid = pid
        self.call = call
        self.new_group = new_group
        self.pidfd = pidfd
        self.reaped = False


def _serve(sock, preload: tuple[str, ...] = ()) -> None:
    """The server loop, in the process forked from the runtime."""
    import gc
    import select

    gc.freeze()  # inherited objects (open files among them) are never collected
    initial = _detach_from_runtime(sock.fileno())
    own_lib = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    prefixes = tuple({sys.base_prefix, sys.base_exec_prefix})
    sys.path[:] = [own_lib] + [
        p for p in sys.path if p.startswith(prefixes) and "-packages" not in p and p != own_lib
    ]
    warm: set[str] = set()
    for module in preload:
        _warm_up(module, warm)
    poller = select.poll()
    sock_fd = sock.fileno()
    poller.register(sock_fd, select.POLLIN)
    by_fd: dict[int, _Child] = {}  # pidfd and call fd -> child
    unpolled: list[_Child] = []  # children without a pidfd (old kernels)
    learning = _Learning(poller)
    while True:
        if learning.pending and not unpolled:
            events = poller.poll(0) or learning.import_one()
        else:
            events = poller.poll(50 if unpolled else None)
        for fd, _ev in events:
            if fd == sock_fd:
                child = _accept(sock, warm, initial, learning)
                if child is False:
                    os._exit(0)  # EOF: the runtime closed us or died
                if child is not None:
                    by_fd[child.call] = child
                    poller.register(child.call, select.POLLIN)
                    if child.pidfd >= 0:
                        by_fd[child.pidfd] = child
                        poller.register(child.pidfd, select.POLLIN)
                    else:
                        unpolled.append(child)
                continue
            if learning.read(fd):
                continue
            child = by_fd.get(fd)
            if child is None:
                continue
            if fd == child.pidfd:
                # WNOHANG: an event of a closed fd whose number a newer
                # child took in this same round must not block the server
                pid, status = os.waitpid(child.pid, os.WNOHANG)
                if pid:
                    _report(child, status)
                    _forget(child, by_fd, poller)
            elif not _kill_request(child):  # EOF: the runtime no longer waits
                del by_fd[fd]
                poller.unregister(fd)
                os.close(fd)
                child.call = -1
        for child in list(unpolled):
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                unpolled.remove(child)
                _report(child, status)
                _forget(child, by_fd, poller)


def _accept(sock, warm: set[str], initial: dict, learning: _Learning):
    """Take one request and fork its child: the child's record, None for a
    request that failed, False on EOF."""
    import _socket
    import marshal

    data, ancillary, _flags, _addr = sock.recvmsg(
        MAX_REQUEST + 1, _socket.CMSG_SPACE(_FDS_PER_CALL * 4)
    )
    fds = []
    for level, kind, blob in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            for i in range(0, len(blob) - 3, 4):
                fds.append(int.from_bytes(blob[i : i + 4], sys.byteorder, signed=True))
    if not data and not fds:
        return False
    if len(fds) != _FDS_PER_CALL:
        for fd in fds:
            os.close(fd)
        return None
    in_r, out_w, err_w, call = fds
    os.set_blocking(call, False)  # the server never waits on one call
    new_group = data[:1] == b"G"
    module, argv0, env = marshal.loads(data[1:])
    _warm_up(module, warm)
    tell_r, tell_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as err:
        _write(call, b"e%d" % (err.errno or 11))
        for fd in (*fds, tell_r, tell_w):
            os.close(fd)
        return None
    if pid == 0:
        _child(module, argv0, env, new_group, (in_r, out_w, err_w, tell_w), initial)
    os.close(tell_w)
    learning.listen(tell_r)
    if new_group:
        try:
            os.setpgid(pid, pid)  # also in the child: whoever runs first
        except OSError:
            pass
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    _write(call, b"p%d" % pid)
    return _Child(pid, call, new_group, pidfd)


def _warm_up(module: str, warm: set[str]) -> None:
    """Import a plugin's package and its verbs module into the server once,
    so that every later child starts with them loaded."""
    if module in warm:
        return
    warm.add(module)
    try:
        package = __import__(module, fromlist=["PLUGIN"])
        verbs = getattr(getattr(package, "PLUGIN", None), "verbs", None)
        if isinstance(verbs, str):
            __import__(verbs)
    except Exception:  # the child imports it again and fails as an exec would
        pass


class _Learning:
    """The modules the server imports after its children did.

    A plugin imports most of its modules lazily, inside the verb that needs
    them, so a server warmed with the plugin packages alone leaves each
    child importing the same kernel, netfilter and IPAM modules again. Each
    child names, at exit, the modules it imported; the server imports them
    itself when it has nothing else to do, so later children start with
    them loaded. A module whose import fails is left to the children, which
    import (and fail) as an exec would."""

    def __init__(self, poller) -> None:
        self.poller = poller
        self.readers: dict[int, bytearray] = {}
        self.pending: list[str] = []
        self.tried: set[str] = set()

    def listen(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.readers[fd] = bytearray()
        self.poller.register(fd, 1)  # POLLIN

    def read(self, fd: int) -> bool:
        """Take what a child wrote on `fd`; False if `fd` is not a child's."""
        buf = self.readers.get(fd)
        if buf is None:
            return False
        try:
            data = os.read(fd, MAX_LEARNED)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if data and len(buf) < MAX_LEARNED:
            buf += data
            return True
        del self.readers[fd]
        self.poller.unregister(fd)
        os.close(fd)
        for name in bytes(buf).decode("utf-8", "replace").split("\n"):
            if name not in self.tried and name not in sys.modules and _module_name(name):
                self.tried.add(name)
                self.pending.append(name)
        return True

    def import_one(self) -> list:
        """Import the next learned module; no events (for the poll loop)."""
        name = self.pending.pop(0)
        if name not in sys.modules:
            try:
                __import__(name)
            except BaseException:  # SystemExit too: the server must live on
                pass
        return []


def _module_name(name: str) -> bool:
    """A dotted module name (what a child may ask the server to import)."""
    return (
        bool(name)
        and not name.startswith("__main__")
        and all(part.isidentifier() for part in name.split("."))
    )


def _report(child: _Child, status: int) -> None:
    child.reaped = True
    if child.call >= 0:
        _write(child.call, b"s%d" % status)


def _kill_request(child: _Child) -> bool:
    """Carry out a kill request of the runtime; False on EOF."""
    try:
        data = os.read(child.call, 64)
    except BlockingIOError:  # a stale event (see _serve): nothing to read
        return True
    except OSError:
        data = b""
    if not data:
        return False
    if data[:1] == b"k" and not child.reaped:
        try:
            if child.new_group:
                os.killpg(child.pid, int(data[1:]))
            else:
                os.kill(child.pid, int(data[1:]))
        except OSError:
            pass
    return True


def _forget(child: _Child, by_fd: dict, poller) -> None:
    for fd in (child.call, child.pidfd):
        if fd >= 0 and by_fd.pop(fd, None) is not None:
            poller.unregister(fd)
            os.close(fd)
    child.call = child.pidfd = -1


def _write(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:
        pass


def _detach_from_runtime(keep: int) -> dict:
    """Drop what the server must not hold of the runtime: its files (lock
    files, pipes a reader waits on; not the bundle modules are read from),
    signal handlers and atexit functions. Returns the runtime's signal
    dispositions, which an exec'd plugin would have inherited."""
    import _signal  # type: ignore[import-not-found]
    import atexit

    from pycni.bundle import held_fds

    kept = {keep, *held_fds()}

    atexit._clear()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass
    initial = {_SIGCHLD: _signal.getsignal(_SIGCHLD)}
    _signal.signal(_SIGCHLD, _signal.SIG_DFL)  # ignored, children would not be waitable
    try:
        _signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for sig in range(1, _signal.NSIG):
        try:
            handler = _signal.getsignal(sig)
        except (OSError, ValueError):
            continue
        if handler is None or sig == _SIGCHLD:
            continue  # set outside Python: left alone
        initial[sig] = handler
        new = _signal.SIG_IGN if sig in _STOP_SIGNALS else _signal.SIG_DFL
        if sig not in _STOP_SIGNALS and handler in (_signal.SIG_DFL, _signal.SIG_IGN):
            continue
        try:
            _signal.signal(sig, new)
        except (OSError, ValueError):
            pass
    return initial


def _child(
    module: str,
    argv0: str,
    env: dict,
    new_group: bool,
    fds: tuple[int, int, int, int],
    initial: dict,
) -> None:
    """The plugin process: set up as the launcher's exec would, run the
    plugin's main(), exit as the interpreter would. Never returns.

    `fds`: its stdin, stdout and stderr, and the pipe on which it tells the
    server, at exit, which modules it imported."""
    code = 1
    in_r, out_w, err_w, tell_w = fds
    try:
        if new_group:
            os.setpgid(0, 0)
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        from pycni.bundle import held_fds

        kept = {tell_w, *held_fds()}  # the plugin's modules still load from the bundle
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2 and int(name) not in kept:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        _fresh_signals(initial)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [argv0]
        _fresh_stdio()
        faultpoint = sys.modules.get("pycni.faultpoint")
        if faultpoint is not None:
            faultpoint.load()
        import atexit

        atexit.register(_tell_imports, tell_w, set(sys.modules))
        __import__(module, fromlist=["main"]).main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        _traceback()
        _flush()
        import _signal

        _signal.signal(_SIGINT, _signal.SIG_DFL)
        os.kill(os.getpid(), _SIGINT)  # as python dies of an unhandled SIGINT
    except BaseException:
        _traceback()
        code = 1
    finally:
        os._exit(_finish(code))


def _tell_imports(fd: int, before: set[str]) -> None:
    """At the child's exit: tell the server the modules this call imported
    (one write; a pipe holds far more than a plugin's module names)."""
    names = "\n".join(name for name in sys.modules if name not in before)
    try:
        os.write(fd, names.encode()[:MAX_LEARNED])
    except OSError:
        pass


def _fresh_signals(initial: dict) -> None:
    """The dispositions a freshly exec'd python has: what the runtime ignored
    stays ignored, handlers are reset, INT raises KeyboardInterrupt, PIPE
    and XFSZ are ignored; no signal blocked."""
    import _signal

    for sig, handler in initial.items():
        new = _signal.SIG_IGN if handler == _signal.SIG_IGN else _signal.SIG_DFL
        try:
            _signal.signal(sig, new)
        except (OSError, ValueError):
            pass
    if initial.get(_SIGINT) != _signal.SIG_IGN:
        _signal.signal(_SIGINT, _signal.default_int_handler)
    _signal.signal(_SIGPIPE, _signal.SIG_IGN)
    _signal.signal(_SIGXFSZ, _signal.SIG_IGN)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def _fresh_stdio() -> None:
    """sys.stdin/stdout/stderr on fds 0-2 as a new interpreter makes them
    (UTF-8; stderr line-buffered, backslash-escaping)."""
    sys.stdin = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    import io

    sys.stderr = io.TextIOWrapper(
        open(2, "wb", closefd=False),  # noqa: SIM115
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def _exit_code(code: object) -> int:
    """SystemExit's code as the interpreter turns it into an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:
        pass
    return 1


def _traceback() -> None:
    try:
        import traceback

        traceback.print_exc()
    except Exception:
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _finish(code: int) -> int:
    """What the interpreter does at exit: join threads, run atexit, flush
    stdout (a failed flush is exit status 120)."""
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except Exception:
            pass
    try:
        import atexit

        atexit._run_exitfuncs()
    except Exception:
        pass
    try:
        sys.stdout.flush()
    except Exception:
        if code == 0:
            code = 120
    try:
        sys.stderr.flush()
    except Exception:
        pass
    return code
