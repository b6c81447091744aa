"""`sql daemon` as a process: flags, the socket's modes, a stale socket,
systemd socket activation, SIGTERM with a request running, the units."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support.sql_daemon import ACTIVATE, SqlDaemon, framed, raw_call, unframe

UNITS = Path(__file__).resolve().parents[3] / "examples" / "sql-ipam"
STATUS = {"command": "STATUS", "path": ["/opt/cni/bin"], "config": ""}


def _served(path: Path) -> bool:
    answer = unframe(raw_call(str(path), framed(json.dumps(STATUS).encode())))
    return answer["error"]["msg"].startswith("error unmarshall network config")


def test_socket_modes_pidfile_and_sigterm(workdir):
    pidfile = workdir / "sql.pid"
    path = workdir / "a" / "b" / "sql.sock"
    d = SqlDaemon(path, "-pidfile", str(pidfile))
    try:
        assert path.is_socket() and _served(path)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
        assert pidfile.read_text() == str(d.proc.pid)
    finally:
        assert d.stop() == 0
    assert not path.exists() and not pidfile.exists()
    assert "shutting down" in d.log()


def test_sigint_stops_too_and_a_bad_pidfile_is_refused(workdir):
    d = SqlDaemon(workdir / "run" / "sql.sock")
    assert d.stop(signal.SIGINT) == 0
    bad = SqlDaemon(workdir / "run" / "sql.sock", "-pidfile", "rel.pid", wait=False)
    assert bad.proc.wait(30) == 1 and "path not absolute" in bad.log()


def test_stale_socket_replaced_live_one_and_other_files_refused(workdir):
    path = workdir / "run" / "sql.sock"
    path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a killed daemon's
    first = SqlDaemon(path)
    try:
        assert "removing the stale socket" in first.log() and _served(path)
        second = SqlDaemon(path, wait=False, logfile=workdir / "second.log")
        assert second.proc.wait(30) == 1
        assert f"a sql IPAM daemon already listens on {path}" in second.log()
        assert _served(path)  # the first one still has it
    finally:
        assert first.stop() == 0
    path.write_text("not a socket")
    third = SqlDaemon(path, wait=False, logfile=workdir / "third.log")
    assert third.proc.wait(30) == 1
    assert "exists and is not a socket: not replacing it" in third.log()
    assert path.read_text() == "not a socket"


def test_a_killed_daemon_restarts_on_its_stale_socket(workdir):
    path = workdir / "run" / "sql.sock"
    d = SqlDaemon(path)
    assert d.stop(signal.SIGKILL) == -9 and path.is_socket()
    again = SqlDaemon(path)
    try:
        assert _served(path)
    finally:
        assert again.stop() == 0


def test_sigterm_lets_a_running_request_finish(workdir):
    """A request on its way when SIGTERM comes is still answered; the
    daemon exits 0 after it, and accepts nothing new meanwhile."""
    path = workdir / "run" / "sql.sock"
    d = SqlDaemon(path)
    body = json.dumps(STATUS).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(20)
    try:
        conn.connect(str(path))
        conn.sendall(framed(body)[:5])  # the request has begun
        os.kill(d.proc.pid, signal.SIGTERM)
        d_wait_log(d, "shutting down")
        wait_until(lambda: not path.exists())  # "shutting down" is logged first
        with pytest.raises(OSError):
            late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                late.connect(str(path))  # the socket is gone once it stops accepting
            finally:
                late.close()
        assert d.alive()
        conn.sendall(framed(body)[5:])
        answer = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert unframe(answer)["error"]["code"] == 6
    finally:
        conn.close()
    assert d.proc.wait(30) == 0


def d_wait_log(d: SqlDaemon, text: str, timeout: float = 15.0) -> None:
    wait_until(lambda: text in d.log(), timeout, d.log)


def wait_until(condition, timeout: float = 15.0, why=lambda: "") -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, why()
        time.sleep(0.02)


def test_socket_activation(workdir):
    path = workdir / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    fd = listener.fileno()
    unused = workdir / "run" / "unused.sock"
    try:
        d = SqlDaemon(unused, preexec=ACTIVATE.format(fd=fd, count=1), pass_fds=(fd,), wait=False)
        d_wait_log(d, "listening on the socket systemd passed")
        listener.close()  # the daemon holds it now
        try:
            assert _served(path)
        finally:
            assert d.stop() == 0
        assert path.is_socket()  # systemd's socket stays, systemd removes it
        assert not unused.exists()
    finally:
        listener.close()


def test_socket_activation_with_two_fds(workdir):
    d = SqlDaemon(workdir / "run" / "two.sock", preexec=ACTIVATE.format(fd=2, count=2), wait=False)
    assert d.proc.wait(30) == 1
    assert "Too many (2) FDs passed through socket activation" in d.log()


def test_flags(workdir):
    def daemon(*argv: str) -> subprocess.CompletedProcess:
        code = "from pycni.plugins.ipam.sql import main; main()"
        return subprocess.run(
            [sys.executable, "-c", code, "daemon", *argv], capture_output=True, text=True
        )

    help_ = daemon("-h")
    assert help_.returncode == 0
    for flag in ("-socketpath string", "-pidfile string", "-maxrequests int"):
        assert flag in help_.stderr
    assert "default /run/cni/sql-ipam.sock" in help_.stderr
    bad = daemon("-nope")
    assert bad.returncode == 2 and "flag provided but not defined: -nope" in bad.stderr
    bad = daemon("-maxrequests", "many")
    assert bad.returncode == 2 and 'invalid value "many" for flag -maxrequests' in bad.stderr


# --- the systemd units --------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_units_say_what_the_daemon_relies_on():
    sock = _unit("cni-sql-ipam.socket")
    assert sock["Socket"]["ListenStream"] == "/run/cni/sql-ipam.sock"
    assert sock["Socket"]["SocketMode"] == "0600"
    assert sock["Socket"]["DirectoryMode"] == "0700"
    assert "Accept" not in sock["Socket"]  # one daemon for every connection
    service = _unit("cni-sql-ipam.service")
    assert service["Service"]["ExecStart"] == "/opt/cni/bin/sql daemon"
    assert service["Service"]["KillSignal"] == "SIGTERM"
    assert "cni-sql-ipam.socket" in service["Unit"]["Requires"]
    from pycni.plugins.ipam.sql.conf import DEFAULT_SOCKET_PATH

    assert sock["Socket"]["ListenStream"] == DEFAULT_SOCKET_PATH


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_verify(workdir):
    """systemd's own parser; ExecStart pointed at an executable that exists."""
    for name in ("cni-sql-ipam.socket", "cni-sql-ipam.service"):
        text = (UNITS / name).read_text().replace("/opt/cni/bin/sql", sys.executable)
        (workdir / name).write_text(text)
    proc = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(workdir / "cni-sql-ipam.socket"),
            str(workdir / "cni-sql-ipam.service"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_example_config_is_a_bridge_on_postgres_through_the_daemon():
    from pycni.runtime import network_conf_from_bytes

    data = (UNITS / "10-cluster.conflist").read_bytes()
    net = network_conf_from_bytes(data)
    plugin = json.loads(data)["plugins"][0]
    assert net.name == "cluster" and plugin["type"] == "bridge"
    assert plugin["ipam"]["type"] == "sql"
    assert plugin["ipam"]["database"]["engine"] == "postgres"
    assert plugin["ipam"]["daemonSocketPath"] == "/run/cni/sql-ipam.sock"
