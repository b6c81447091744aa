"""A throwaway PostgreSQL server: Debian's binaries, a temp dir, a unix
socket only (no TCP port on the host), stopped by PID. `pycni demo cluster`
runs its cluster's database on one; the tests run theirs on one.

`initdb` and `postgres` refuse to run as root, so under root the server runs
as the `postgres` system user (Popen's `user=`) in a temp dir chowned to it;
as any other user it runs as that user. The server is started in its own
session and with a parent-death signal (SIGQUIT, PostgreSQL's immediate
shutdown), so a process killed outright does not leave it running;
`stop()` is SIGINT (fast shutdown: sessions are ended, in-flight
transactions rolled back), then SIGKILL of its process group after a timeout.
The server trades durability for speed (fsync off): it is for tests and
demos, never for leases that matter.

Authentication (pg_hba.conf): the superuser `postgres` and the roles made
by `create_role(name)` without a password are trusted; every other role
must give its SCRAM password, so wrong credentials can be tested.

    server = PgServer.create()          # initdb + start
    server.create_role("cni", "s3cret")
    server.create_database("cni", owner="cni")
    dsn = server.dsn(user="cni", dbname="cni", password="s3cret")
    server.restart(); server.stop(); server.start(); server.destroy()
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def _pg_bin() -> Path:
    """PYCNI_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin."""
    if os.environ.get("PYCNI_PG_BIN"):
        return Path(os.environ["PYCNI_PG_BIN"])
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PORT = 5432  # names the socket file only: listen_addresses is empty
TRUSTED = "pypg_trusted"  # group role whose members log in without a password

#: servers not destroyed yet, destroyed at interpreter exit at the latest
_LIVE: set[PgServer] = set()


def available() -> str | None:
    """Why no server can be started here (None: it can)."""
    for tool in ("initdb", "postgres", "psql"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL binaries not found ({PG_BIN / tool}): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no `postgres` system user to run the server"
    return None


def _run_as() -> dict:
    """Popen arguments that drop root to the postgres user (nothing otherwise)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _owner() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _pdeathsig() -> None:
    """In the server's child: SIGQUIT (immediate shutdown) when the process
    that started it dies. Runs after the uid change, which would clear it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGQUIT, 0, 0, 0)  # PR_SET_PDEATHSIG


class PgServer:
    """One PostgreSQL cluster in `base`: data/ (the cluster), sock/ (the
    socket directory), server.log."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.sockdir = base / "sock"
        self.log = base / "server.log"
        self.proc: subprocess.Popen | None = None

    # -- life cycle -----------------------------------------------------------------------

    @classmethod
    def create(cls, template: Path | None = None, start: bool = True) -> PgServer:
        """A new cluster in a fresh temp dir (a copy of `template`'s data
        directory when given: initdb once per session, copy per test)."""
        reason = available()
        if reason:
            raise RuntimeError(reason)
        base = Path(tempfile.mkdtemp(prefix="pypg-", dir="/tmp"))
        server = cls(base)
        _LIVE.add(server)
        try:
            uid, gid = _owner()
            os.chown(base, uid, gid)
            server.sockdir.mkdir(mode=0o700)
            os.chown(server.sockdir, uid, gid)
            if template is not None:
                shutil.copytree(
                    template,
                    server.data,
                    symlinks=True,
                    ignore=shutil.ignore_patterns("postmaster.pid", "postmaster.opts"),
                )
                for root, dirs, files in os.walk(server.data):
                    for name in dirs + files:
                        os.lchown(os.path.join(root, name), uid, gid)
                os.chown(server.data, uid, gid)
                os.chmod(server.data, 0o700)
            else:
                server._initdb()
            if start:
                server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    def _initdb(self) -> None:
        out = subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=reject",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=str(self.base),
            capture_output=True,
            text=True,
            **_run_as(),
        )
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stdout}{out.stderr}")
        (self.data / "pg_hba.conf").write_text(
            "# written by pycni.cli.pgserver\n"
            "local all postgres trust\n"
            f"local all +{TRUSTED} trust\n"
            "local all all scram-sha-256\n"
        )

    @property
    def pid(self) -> int | None:
        """The postmaster's PID from postmaster.pid (None: not running)."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return
        logf = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-k",
                    str(self.sockdir),
                    "-p",
                    str(PORT),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "password_encryption=scram-sha-256",
                    "-c",
                    "log_min_messages=warning",
                ],
                cwd=str(self.base),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
                preexec_fn=_pdeathsig if _main_thread() else None,
                **_run_as(),
            )
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): {self.log_tail()}")
            if self._ready(self.proc.pid):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres did not become ready in {timeout}s: {self.log_tail()}")

    def _ready(self, pid: int) -> bool:
        """postmaster.pid (ours: its first line is our PID) says "ready" in
        its 8th line once the server accepts connections."""
        try:
            lines = (self.data / "postmaster.pid").read_text().split("\n")
        except OSError:
            return False
        return len(lines) > 7 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT) by PID; SIGKILL of the group after `timeout`."""
        pid = self.proc.pid if self.running and self.proc else self.pid
        if pid is None:
            self.proc = None
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        if not self._wait(pid, timeout):
            self.kill()
            return
        self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL to the server and all its backends at once."""
        pid = self.proc.pid if self.proc is not None else self.pid
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGKILL)  # start_new_session: pgid == pid
        except ProcessLookupError:
            pass
        self._wait(pid, 30.0)
        self.proc = None

    def _wait(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.pid == pid:
                if self.proc.poll() is not None:
                    return True
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
            time.sleep(0.02)
        return False

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server and remove its directory (idempotent)."""
        try:
            self.stop()
        finally:
            _LIVE.discard(self)
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- connecting ------------------------------------------------------------------------

    def dsn(
        self, user: str = "postgres", dbname: str = "postgres", password: str | None = None
    ) -> str:
        """A libpq conninfo string for the unix socket."""
        parts = [f"host={self.sockdir}", f"port={PORT}", f"dbname={dbname}", f"user={user}"]
        if password is not None:
            parts.append(f"password={_quote(password)}")
        return " ".join(parts)

    def psql(self, sql: str, dbname: str = "postgres", user: str = "postgres") -> str:
        """Run SQL through psql as a trusted role; its unaligned output."""
        out = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.sockdir),
                "-p",
                str(PORT),
                "-U",
                user,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            cwd=str(self.base),
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": "", "PGCONNECT_TIMEOUT": "10"},
            **_run_as(),
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
        return out.stdout

    def create_role(self, name: str, password: str | None = None, superuser: bool = False) -> None:
        """A login role: with a password it must authenticate (SCRAM);
        without, it is trusted."""
        sql = f'CREATE ROLE "{name}" LOGIN'
        if superuser:
            sql += " SUPERUSER"
        if password is not None:
            sql += f" PASSWORD {_literal(password)}"
        else:
            self.psql(
                f'DO $$ BEGIN CREATE ROLE "{TRUSTED}" NOLOGIN; '
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
            sql += f' IN ROLE "{TRUSTED}"'
        self.psql(sql)

    def create_database(self, name: str, owner: str = "postgres") -> None:
        self.psql(f'CREATE DATABASE "{name}" OWNER "{owner}"')

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _quote(value: str) -> str:
    """A conninfo value: single-quoted, with \\ and ' escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@atexit.register
def _destroy_all() -> None:
    for server in list(_LIVE):
        server.destroy()
