"""The sql node daemon for tests: started and stopped by PID, and the
plugin run in-process with its verbs forced through a daemon.

`SqlDaemon` runs `sql daemon -socketpath ...` in a child process (our
launcher form: `python -c "from pycni.plugins.ipam.sql import main;
main()" daemon ...`), its output in a log file. `run_verb` runs the plugin
in this process through skel.run, as the executable would (same
validation, same printing), either as it is or with every verb forwarded
to a daemon socket (what happens for PostgreSQL), so the two outputs can
be compared byte for byte on SQLite.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support.sandbox import stop_process

PLUGIN_MODULE = "pycni.plugins.ipam.sql"

#: preexec code: the listener given as fd 3, as systemd hands it over
ACTIVATE = (
    "import os; os.dup2({fd}, 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
    "os.environ['LISTEN_FDS'] = '{count}'; "
)


class SqlDaemon:
    """One `sql daemon` child process."""

    def __init__(
        self,
        socket_path: Path,
        *flags: str,
        wait: bool = True,
        preexec: str = "",
        pass_fds: tuple[int, ...] = (),
        env: dict | None = None,
        logfile: Path | None = None,
    ) -> None:
        self.socket_path = socket_path
        if logfile is None:  # beside the socket's folder, which the daemon makes
            base = socket_path.parent
            while not base.is_dir():
                base = base.parent
            logfile = base / f"daemon-{id(self)}.log"
        self.logfile = logfile
        code = preexec + f"from {PLUGIN_MODULE} import main; main()"
        argv = [sys.executable, "-c", code, "daemon", "-socketpath", str(socket_path), *flags]
        environ = dict(os.environ)
        environ.pop("PYCNI_FAULT_STEP", None)
        environ.update(env or {})
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, pass_fds=pass_fds, env=environ
            )
        if wait:
            self.wait_listening()

    def wait_listening(self, timeout: float = 15.0, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count("listening on") <= after:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start: {self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        try:
            return self.logfile.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, wait: float = 30.0) -> int:
        return stop_process(self.proc, sig, wait)

    def alive(self) -> bool:
        return self.proc.poll() is None


def env_of(
    command: str, netns: str, container_id: str = "pysd-c1", ifname: str = "eth0", args: str = ""
) -> dict:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_ARGS": args,
        "CNI_PATH": "/nonexistent",
    }


def run_verb(environ: dict, conf: dict | bytes, socket_path: str | None = None) -> tuple[int, str]:
    """The plugin's exit code and stdout, run here through skel; with
    `socket_path`, every verb goes to the daemon there."""
    from pycni import skel
    from pycni.plugins.ipam.sql import PLUGIN, remote

    data = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    out = io.StringIO()
    err = io.StringIO()
    saved = remote.daemon_socket
    if socket_path is not None:
        remote.daemon_socket = lambda args: socket_path  # type: ignore[assignment]
    try:
        code = skel.run(environ, io.BytesIO(data), out, err, PLUGIN)
    finally:
        remote.daemon_socket = saved  # type: ignore[assignment]
    return code, out.getvalue()


def raw_call(path: str, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes to a daemon, return all it answers until it closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def framed(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def unframe(data: bytes) -> dict:
    size = int.from_bytes(data[:4], "big")
    assert len(data) == 4 + size, data
    return json.loads(data[4:])


# --- a fault-injecting engine (conf.ENGINES["pysdfake"] = "support.sql_daemon") -----------


class FakeState:
    """What the next operations of every FakeEngine do."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.down = False  # every operation: code 11, the engine broken
        self.unknown_next = False  # the next commit happens, then OutcomeUnknown
        self.down_after_unknown = False  # ... and the database goes down with it
        self.opened = 0
        self.engines: list = []


FAKE = FakeState()


class FakeEngine:
    """SQLite underneath (a connection any thread may use, as a pooled
    PostgreSQL one), with outages and unknown commits on demand."""

    def __init__(self, real) -> None:
        self.real = real
        self.broken = False
        self.dead = False  # this connection died while idle

    def _check(self) -> None:
        from pycni.spec.errors import CNIError

        if FAKE.down or self.dead:
            self.broken = True
            raise CNIError(11, "pysdfake: database unreachable", "try again later")

    def transaction(self, work, commit_step: str = ""):
        from pycni.plugins.ipam.sql.engine import OutcomeUnknown

        self._check()
        result = self.real.transaction(work, commit_step)
        if FAKE.unknown_next:
            FAKE.unknown_next = False
            FAKE.down = FAKE.down_after_unknown
            self.broken = True
            raise OutcomeUnknown("pysdfake: connection lost during COMMIT")
        return result

    def read(self):
        self._check()
        return self.real.read()

    def write(self):
        self._check()
        return self.real.write()

    def close(self) -> None:
        self.real.close()


def open_engine(db, create: bool, migrate: bool = True):
    import _sqlite3

    from pycni.plugins.ipam.sql import sqlite

    if not os.path.exists(db.path):
        if not create:
            return None
        sqlite._create_file(db.path)
    conn = _sqlite3.connect(db.path, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    engine = sqlite.SqliteEngine(conn, db.path)
    if migrate:
        engine.migrate()
    FAKE.opened += 1
    fake = FakeEngine(engine)
    FAKE.engines.append(fake)
    return fake
