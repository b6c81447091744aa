"""The plugin <-> daemon protocol: hostile requests, the client's failures,
and the plugin's routing (remote.py, daemon.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycni.plugins.ipam.sql import daemon as sqld
from pycni.plugins.ipam.sql import remote
from pycni.skel.testing import run_plugin
from pycni.spec.errors import CNIError

from support.outcomes import err
from support.sql_daemon import env_of, framed, raw_call, run_verb, unframe
from support.sql_ipam import PLUGIN, make_conf

GOOD = {
    "command": "STATUS",
    "containerID": "",
    "netns": "",
    "ifname": "",
    "args": "",
    "path": ["/opt/cni/bin"],
    "config": "",
}


def pg_conf(socket_path: object = None, **ipam) -> dict:
    conf = make_conf("/unused", database={"engine": "postgres", "dsn": "host=/pysd-none"}, **ipam)
    if socket_path is not None:
        conf["ipam"]["daemonSocketPath"] = socket_path
    return conf


# --- requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "not JSON"),
        (b"{nope", "not JSON"),
        (b"[]", "expected an object, got array"),
        (b"null", "expected an object"),
        (json.dumps({**GOOD, "command": "VERSION"}).encode(), "unknown command 'VERSION'"),
        (json.dumps({**GOOD, "command": None}).encode(), "unknown command None"),
        (json.dumps({**GOOD, "containerID": 5}).encode(), "containerID: expected a string"),
        (json.dumps({**GOOD, "config": {"a": 1}}).encode(), "config: expected a string"),
        (json.dumps({**GOOD, "ifname": "a\u0000b"}).encode(), "ifname: contains a NUL"),
        (json.dumps({**GOOD, "path": "/bin"}).encode(), "path: expected a list"),
        (json.dumps({**GOOD, "path": ["/a:/b"]}).encode(), "path: expected a list"),
        (json.dumps({**GOOD, "path": [1]}).encode(), "path: expected a list"),
    ],
)
def test_bad_requests_are_answered_with_an_error(raw, why):
    with pytest.raises(sqld.BadRequest, match=why):
        sqld.parse_request(raw)
    answer = sqld.Service().handle(raw)
    assert answer["error"]["code"] == 999
    assert answer["error"]["msg"].startswith("sql daemon: bad request: ")


def test_a_request_is_validated_as_skel_validates_an_invocation():
    service = sqld.Service()
    conf = json.dumps({"cniVersion": "1.1.0", "name": "n"})
    bad_cid = {**GOOD, "command": "DEL", "containerID": "a/b", "ifname": "eth0", "config": conf}
    answer = service.handle(json.dumps(bad_cid).encode())
    assert answer["error"]["code"] == 4, answer  # invalid characters in the container ID
    conf = json.dumps({"cniVersion": "9.9.9", "name": "n"})
    answer = service.handle(json.dumps({**GOOD, "config": conf}).encode())
    assert answer["error"]["code"] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=64)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {"command": st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS", "X"])},
        optional={
            k: json_values for k in ("containerID", "netns", "ifname", "args", "path", "config")
        },
    ).map(lambda v: json.dumps(v).encode())
)
def test_any_input_gets_an_error_answer_and_never_raises(raw):
    answer = sqld.Service().handle(raw)
    assert set(answer) == {"error"}
    assert isinstance(answer["error"]["code"], int) and answer["error"]["msg"]


# --- the server --------------------------------------------------------------------------


def _status(path: str) -> dict:
    return unframe(raw_call(path, framed(json.dumps(GOOD).encode())))


def test_oversize_garbage_and_truncated_requests_leave_the_daemon_serving(served):
    path, server, _ = served
    assert _status(path)["error"]["msg"].startswith("error unmarshall network config")
    size = remote.MAX_REQUEST + 1
    answer = unframe(raw_call(path, size.to_bytes(4, "big") + b"x" * 100))
    assert answer["error"]["msg"] == (
        f"sql daemon: bad request: {size} bytes (at most {remote.MAX_REQUEST})"
    )
    assert unframe(raw_call(path, framed(b"\xff\xfe{")))["error"]["msg"].startswith(
        "sql daemon: bad request: not JSON"
    )
    assert raw_call(path, b"\x00\x00") == b""  # cut short: no answer, no harm
    assert raw_call(path, framed(b"{}")[:-1]) == b""
    assert _status(path)["error"]["code"] == 6
    assert wait_for(lambda: server.active() == 0)


def test_a_client_that_sends_nothing_is_dropped_and_others_are_served(served, monkeypatch):
    path, _server, _ = served
    monkeypatch.setattr(sqld, "READ_TIMEOUT", 0.5)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(path)
    try:
        assert _status(path)["error"]["code"] == 6  # served beside the silent one
        idle.settimeout(5)
        assert idle.recv(10) == b""  # dropped after READ_TIMEOUT
    finally:
        idle.close()


def test_a_foreign_uid_is_refused(workdir):
    """Beyond the socket's mode (here opened up on purpose), the peer's uid
    is checked: only root and the daemon's own uid may call."""
    from pycni.plugins.pkg import unixdaemon

    os.chmod(workdir, 0o755)
    path = workdir / "open" / "sql.sock"
    listener = unixdaemon.listen(str(path))
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o666)
    server = sqld.Server(sqld.Service(), 2)
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    code = (
        "import os, socket, sys; os.setgid(65534); os.setuid(65534); "
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
        "body = b'{}'; s.sendall(len(body).to_bytes(4, 'big') + body); "
        "sys.stdout.buffer.write(s.recv(4096))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        assert unframe(proc.stdout)["error"]["msg"] == "sql daemon: uid 65534 may not call"
        assert _status(str(path))["error"]["code"] == 6  # root still may
    finally:
        server.shutdown(5)
        thread.join(5)
        listener.close()


# --- the client --------------------------------------------------------------------------


def _fake_server(path: str, behaviour):
    """A listener whose one connection is handed to `behaviour(conn)`."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        try:
            behaviour(conn)
        finally:
            conn.close()
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _call_error(path: str, timeout: float = 10.0) -> CNIError:
    with pytest.raises(CNIError) as info:
        remote.call(path, GOOD, timeout)
    return info.value


def test_no_socket_is_try_again_later_naming_the_socket_and_the_daemon(workdir):
    path = str(workdir / "none.sock")
    e = _call_error(path)
    assert e.code == 11
    assert e.msg == (
        f"sql IPAM daemon socket {path} does not exist: start the daemon with "
        f'"sql daemon -socketpath {path}" (systemd: systemctl enable --now '
        "cni-sql-ipam.socket), or point ipam.daemonSocketPath at its socket"
    )


def test_a_socket_nobody_listens_on_is_try_again_later(workdir):
    path = str(workdir / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    e = _call_error(path)
    assert e.code == 11 and e.msg.startswith(f"no sql IPAM daemon listens on {path}")
    assert "sql daemon -socketpath" in e.msg


def test_a_daemon_that_dies_mid_request_is_try_again_later(workdir):
    path = str(workdir / "eof.sock")
    thread = _fake_server(path, lambda conn: conn.recv(65536))
    e = _call_error(path)
    thread.join(5)
    assert e.code == 11 and "closed the connection before answering" in e.msg


def test_a_daemon_that_never_answers_is_given_up_on(workdir):
    path = str(workdir / "mute.sock")
    done = threading.Event()
    thread = _fake_server(path, lambda conn: done.wait(10))
    start = time.monotonic()
    e = _call_error(path, timeout=0.5)
    assert time.monotonic() - start < 5
    done.set()
    thread.join(5)
    assert e.code == 11 and e.msg == f"no answer from the sql IPAM daemon at {path} within 0.5 s"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"\x00\x00\x00\x03abc", "Expecting value"),
        (framed(b"[1]"), "not a JSON object"),
        (b"\xff\xff\xff\xff", "too large"),
    ],
)
def test_a_daemon_answering_nonsense_is_an_internal_error(workdir, answer, why):
    path = str(workdir / "junk.sock")

    def reply(conn):
        conn.recv(65536)
        conn.sendall(answer)

    thread = _fake_server(path, reply)
    e = _call_error(path)
    thread.join(5)
    assert e.code == 999 and why in e.msg


def test_forward_raises_the_daemons_error_and_returns_its_result(workdir, sd_netns):
    from pycni.skel import CmdArgs

    path = str(workdir / "fwd.sock")
    args = CmdArgs("DEL", "pysd-c1", sd_netns, "eth0", stdin_data=b"{}")
    body = {"error": {"code": 7, "msg": "bad", "details": "d"}}
    thread = _fake_server(path, lambda c: (c.recv(65536), c.sendall(remote.frame(body))))
    with pytest.raises(CNIError) as info:
        remote.forward(path, args)
    thread.join(5)
    assert (info.value.code, info.value.msg, info.value.details) == (7, "bad", "d")
    for i, nonsense in enumerate(({"error": 5}, {"error": {"code": True}}, {"result": []})):
        path = str(workdir / f"fwd{i}.sock")
        thread = _fake_server(
            path, lambda c, b=nonsense: (c.recv(65536), c.sendall(remote.frame(b)))
        )
        with pytest.raises(CNIError) as info:
            remote.forward(path, args)
        thread.join(5)
        assert info.value.code == 999 and "answered nonsense" in info.value.msg


# --- routing in the plugin -----------------------------------------------------------------


def test_sqlite_runs_in_process_and_postgres_goes_to_the_daemon(workdir, sd_netns):
    """Through the plugin executable: SQLite needs no daemon; PostgreSQL
    does, and without one the verb is code 11 naming the socket."""
    db = workdir / "db" / "ipam.db"
    out = run_plugin(PLUGIN, "ADD", make_conf(db), netns=sd_netns, container_id="pysd-c1")
    assert out.ok, out
    path = str(workdir / "nothing" / "sql.sock")
    for command in ("ADD", "DEL", "CHECK", "GC", "STATUS"):
        out = run_plugin(PLUGIN, command, pg_conf(path), netns=sd_netns, container_id="pysd-c1")
        code, msg = err(out)
        assert code == 11 and msg.startswith(f"sql IPAM daemon socket {path} does not exist")


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        (5, "invalid ipam.daemonSocketPath: expected a string, got number 5"),
        ("run/sql.sock", "invalid ipam.daemonSocketPath 'run/sql.sock': it must be an absolute"),
        ("/a\u0000b", "invalid ipam.daemonSocketPath '/a\\x00b': it must be an absolute path"),
    ],
)
def test_daemon_socket_path_is_validated(sd_netns, value, msg):
    code, out = run_verb(env_of("ADD", sd_netns), pg_conf(value))
    assert code == 1
    assert json.loads(out)["code"] == 7 and json.loads(out)["msg"].startswith(msg)


def test_default_socket_path(sd_netns):
    from pycni.plugins.ipam.sql.conf import DEFAULT_SOCKET_PATH, daemon_socket_path

    assert DEFAULT_SOCKET_PATH == "/run/cni/sql-ipam.sock"
    assert daemon_socket_path({}) == DEFAULT_SOCKET_PATH
    assert daemon_socket_path({"daemonSocketPath": ""}) == DEFAULT_SOCKET_PATH
    assert daemon_socket_path({"DaemonSocketPath": "/x.sock"}) == "/x.sock"


def wait_for(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_forwarding_plugin_process_loads_no_driver_and_nothing_heavy(daemon, sd_netns):
    """What the plugin process imports when it forwards to the daemon
    (the daemon answers 11 here: no server behind that dsn)."""
    conf = pg_conf(str(daemon.socket_path))
    env = {
        **os.environ,
        **env_of("ADD", sd_netns),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"from {PLUGIN} import main; main()"],
        input=json.dumps(conf).encode(),
        env=env,
        capture_output=True,
        timeout=60,
    )
    answer = json.loads(proc.stdout)
    assert answer["code"] == 11, answer  # the daemon's: no database there
    loaded = {
        line.rpartition("|")[2].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "pycni.plugins.ipam.sql.remote" in loaded and "_socket" in loaded
    heavy = {"psycopg", "pg8000", "json", "socket", "threading", "selectors", "enum", "re"}
    assert loaded & heavy == set()
    assert "pycni.plugins.ipam.sql.verbs" not in loaded
