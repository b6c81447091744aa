"""net/rpc (rpc.py): our client and server with each other, with the Go
`dhcp` plugin of /usr/lib/cni against our server, and our client against the
Go `dhcp daemon` (started by the test in a sandbox netns, stopped by PID)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from pycni.plugins.ipam.dhcp import gob, rpc, wire
from pycni.spec.result import Interface, IPConfig, Result, Route

GO_DHCP = Path("/usr/lib/cni/dhcp")
CONF = {
    "cniVersion": "1.0.0",
    "name": "gbnet",
    "type": "macvlan",
    "ipam": {"type": "dhcp"},
}
RESULT = Result(
    "1.0.0",
    interfaces=[Interface("eth0", "02:00:00:00:00:42", "/run/netns/gb")],
    ips=[IPConfig("198.18.4.20/24", "198.18.4.1", 1), IPConfig("fd00:4::20/64")],
    routes=[Route("0.0.0.0/0", "198.18.4.1"), Route("198.19.0.0/16")],
)


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "gb"}


@pytest.fixture
def sockdir():
    """A short directory for unix sockets (paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gbrpc", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Served:
    """Our rpc.Server on a unix socket in a thread; records the calls."""

    def __init__(self, path: Path, handlers: dict) -> None:
        self.path = path
        self.calls: list[tuple[str, dict]] = []
        recorded = {m: self._recorder(m, fn) for m, fn in handlers.items()}
        self.server = rpc.Server(recorded)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(16)
        self.thread = threading.Thread(target=self.server.serve, args=(self.listener,))
        self.thread.start()

    def _recorder(self, method, fn):
        def handler(args):
            self.calls.append((method, args))
            return fn(args)

        return handler

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def served(sockdir):
    servers: list[Served] = []

    def start(handlers: dict) -> Served:
        s = Served(sockdir / f"s{len(servers)}.sock", handlers)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def _fail(args):
    raise RuntimeError("no lease for you")


HANDLERS = {
    "DHCP.Allocate": lambda args: wire.result_to_go(RESULT),
    "DHCP.Release": lambda args: None,
}
ARGS = wire.cmdargs("gbctr", "/run/netns/gb", "eth0", "K=V", "/opt/cni/bin", b'{"name":"gbnet"}')


# ------------------------------------------------------- ours with ours


def test_call_allocate_and_release(served):
    s = served(HANDLERS)
    reply = rpc.call(str(s.path), "DHCP.Allocate", ARGS, timeout=5)
    assert wire.result_from_go(reply, "1.0.0") == RESULT
    assert rpc.call(str(s.path), "DHCP.Release", ARGS, timeout=5) == {}
    assert [m for m, _ in s.calls] == ["DHCP.Allocate", "DHCP.Release"]
    assert s.calls[0][1] == {**ARGS, "NetnsOverride": ""}


def test_handler_error_is_a_remote_error(served):
    s = served({"DHCP.Allocate": _fail})
    with pytest.raises(rpc.RemoteError, match=r"^no lease for you$"):
        rpc.call(str(s.path), "DHCP.Allocate", ARGS, timeout=5)


def test_empty_error_text_still_fails(served):
    def silent(args):
        raise ValueError()

    s = served({"DHCP.Allocate": silent})
    with pytest.raises(rpc.RemoteError, match="ValueError"):
        rpc.call(str(s.path), "DHCP.Allocate", ARGS, timeout=5)


@pytest.mark.parametrize(
    ("method", "text"),
    [
        ("DHCP.Renew", "rpc: can't find method DHCP.Renew"),
        ("Other.Allocate", "rpc: can't find service Other.Allocate"),
        ("Allocate", "rpc: service/method request ill-formed: Allocate"),
    ],
)
def test_unknown_methods_answer_gos_errors(served, method, text):
    s = served(HANDLERS)
    with pytest.raises(rpc.RemoteError) as exc:
        rpc.call(str(s.path), method, ARGS, timeout=5)
    assert str(exc.value) == text
    # and the connection's stream is still good for the next call
    assert rpc.call(str(s.path), "DHCP.Release", ARGS, timeout=5) == {}


def test_unencodable_reply_is_an_error_not_a_hang(served):
    s = served({"DHCP.Allocate": lambda args: {"CNIVersion": 5}})
    with pytest.raises(rpc.RemoteError, match="cannot encode the reply"):
        rpc.call(str(s.path), "DHCP.Allocate", ARGS, timeout=5)


def test_no_descriptor_leaks(served):
    """Client and server close every connection (a makefile() keeps the fd
    open unless it is closed too)."""
    s = served(HANDLERS)
    rpc.call(str(s.path), "DHCP.Release", ARGS, timeout=5)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        rpc.call(str(s.path), "DHCP.Allocate", ARGS, timeout=5)
    deadline = time.monotonic() + 5
    while len(os.listdir("/proc/self/fd")) > before and time.monotonic() < deadline:
        time.sleep(0.05)  # the server's connection threads finish on their own
    assert len(os.listdir("/proc/self/fd")) <= before


def test_missing_socket_is_an_oserror(sockdir):
    with pytest.raises(FileNotFoundError):
        rpc.call(str(sockdir / "none.sock"), "DHCP.Release", ARGS, timeout=1)


def test_not_a_go_rpc_server(sockdir):
    path = sockdir / "http.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        conn.recv(100)
        conn.sendall(b"HTTP/1.0 404 Not Found\r\n\r\n")
        conn.close()

    t = threading.Thread(target=answer)
    t.start()
    try:
        with pytest.raises(rpc.ProtocolError, match="unexpected HTTP response: 404 Not Found"):
            rpc.call(str(path), "DHCP.Release", ARGS, timeout=5)
    finally:
        t.join(5)
        listener.close()


def test_silent_server_times_out(sockdir):
    path = sockdir / "mute.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            rpc.call(str(path), "DHCP.Release", ARGS, timeout=0.3)
        assert time.monotonic() - start < 3
    finally:
        listener.close()


def test_server_refuses_non_connect(served):
    s = served(HANDLERS)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(s.path))
        c.sendall(b"GET /_goRPC_ HTTP/1.0\r\n\r\n")
        assert c.recv(200).startswith(b"HTTP/1.0 405")


def _raw_connection(path: Path) -> tuple[socket.socket, gob.Decoder]:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(str(path))
    c.sendall(b"CONNECT /_goRPC_ HTTP/1.0\n\n")
    reader = rpc._Reader(c)
    assert reader.readline(100) == b"HTTP/1.0 200 Connected to Go RPC\n"
    assert reader.readline(100) == b"\n"
    return c, gob.Decoder(reader.read)


def test_concurrent_calls_on_one_connection_answer_by_seq(served):
    """Go's client multiplexes: a slow call does not hold up a later one."""
    release_gate = threading.Event()

    def slow_allocate(args):
        assert release_gate.wait(5)
        return wire.result_to_go(RESULT)

    def release(args):
        release_gate.set()

    s = served({"DHCP.Allocate": slow_allocate, "DHCP.Release": release})
    c, dec = _raw_connection(s.path)
    with c:
        enc = gob.Encoder()
        c.sendall(
            enc.encode({"ServiceMethod": "DHCP.Allocate", "Seq": 1}, wire.REQUEST)
            + enc.encode(ARGS, wire.CMD_ARGS)
            + enc.encode({"ServiceMethod": "DHCP.Release", "Seq": 2}, wire.REQUEST)
            + enc.encode(ARGS, wire.CMD_ARGS)
        )
        first = dec.decode(wire.RESPONSE)
        assert first == {"ServiceMethod": "DHCP.Release", "Seq": 2, "Error": ""}
        assert dec.decode(wire.EMPTY) == {}
        second = dec.decode(wire.RESPONSE)
        assert second == {"ServiceMethod": "DHCP.Allocate", "Seq": 1, "Error": ""}
        assert wire.result_from_go(dec.decode(wire.RESULT), "1.0.0") == RESULT


def test_shutdown_closes_open_connections(served, sockdir):
    s = served(HANDLERS)
    c, dec = _raw_connection(s.path)
    with c:
        s.close()
        with pytest.raises((EOFError, OSError)):
            dec.decode()
    with pytest.raises(OSError):
        rpc.call(str(s.path), "DHCP.Release", ARGS, timeout=1)


# ----------------------------------------- the Go plugin against our server

needs_go_dhcp = pytest.mark.skipif(
    not os.access(GO_DHCP, os.X_OK), reason="no Go dhcp plugin in /usr/lib/cni"
)


def go_plugin(command: str, socket_path: Path, cwd: Path, netns: str = "gbrel/ns"):
    conf = {**CONF, "ipam": {"type": "dhcp", "daemonSocketPath": str(socket_path)}}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "gbctr",
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1;GB=1",
        "CNI_PATH": "/usr/lib/cni",
    }
    stdin = json.dumps(conf).encode()
    proc = subprocess.run(
        [str(GO_DHCP)], input=stdin, env=env, cwd=cwd, capture_output=True, timeout=30
    )
    return proc, stdin


@needs_go_dhcp
def test_go_plugin_add_del_through_our_server(served, sockdir):
    s = served(HANDLERS)
    proc, stdin = go_plugin("ADD", s.path, sockdir)
    assert proc.returncode == 0, proc.stderr
    assert Result.from_json(proc.stdout) == RESULT
    want_args = {
        "ContainerID": "gbctr",
        "Netns": str(sockdir / "gbrel/ns"),  # made absolute by the Go plugin
        "IfName": "eth0",
        "Args": "IgnoreUnknown=1;GB=1",
        "Path": "/usr/lib/cni",
        "NetnsOverride": "",
        "StdinData": stdin,
    }
    assert s.calls == [("DHCP.Allocate", want_args)]

    proc, _ = go_plugin("DEL", s.path, sockdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""
    assert s.calls[1] == ("DHCP.Release", want_args)

    proc, _ = go_plugin("CHECK", s.path, sockdir)
    assert proc.returncode == 0, proc.stderr
    assert [m for m, _ in s.calls] == ["DHCP.Allocate", "DHCP.Release", "DHCP.Allocate"]


@needs_go_dhcp
def test_go_plugin_prints_our_result_exactly(served, sockdir):
    s = served(HANDLERS)
    proc, _ = go_plugin("ADD", s.path, sockdir)
    assert proc.returncode == 0, proc.stderr
    # Go's types.DNS has no omitempty as a struct: it prints "dns": {}
    assert json.loads(proc.stdout) == {**RESULT.to_dict("1.0.0"), "dns": {}}


@needs_go_dhcp
def test_interface_index_zero_does_not_survive_gob(served, sockdir):
    """gob sends no zero values, so Go's decoder leaves *int nil: an index 0
    is lost on the way (Go to Go alike); the reference daemon sends none."""
    zero = Result("1.0.0", [Interface("eth0")], [IPConfig("198.18.4.20/24", interface=0)])
    s = served({"DHCP.Allocate": lambda args: wire.result_to_go(zero)})
    proc, _ = go_plugin("ADD", s.path, sockdir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ips"] == [{"address": "198.18.4.20/24"}]


@needs_go_dhcp
def test_go_plugin_reports_our_handler_error(served, sockdir):
    s = served({"DHCP.Allocate": _fail, "DHCP.Release": _fail})
    proc, _ = go_plugin("ADD", s.path, sockdir)
    assert proc.returncode != 0
    err = json.loads(proc.stdout)
    assert err["code"] == 999
    assert err["msg"] == "error calling DHCP.Allocate: no lease for you"
    proc, _ = go_plugin("DEL", s.path, sockdir)
    assert json.loads(proc.stdout)["msg"] == "error calling DHCP.Release: no lease for you"


# ------------------------------------------ our client against the Go daemon


@contextlib.contextmanager
def go_daemon(sock: Path, *flags: str):
    """The Go daemon, in the netns the calling thread is in, stopped by PID."""
    proc = subprocess.Popen(
        [str(GO_DHCP), "daemon", "-socketpath", str(sock), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Go dhcp daemon did not start: {proc.stderr.read()!r}")
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.stderr.close()


def go_args(container_id: str, ns, ifname: str) -> dict:
    """The CmdArgs a plugin sends the daemon for CONF in `ns`."""
    return wire.cmdargs(
        container_id, ns.path, ifname, "", "/usr/lib/cni", json.dumps(CONF).encode()
    )


@needs_go_dhcp
def test_release_of_unknown_lease_through_go_daemon(host_ns, container_ns, sockdir):
    sock = sockdir / "dhcp.sock"
    with go_daemon(sock):
        args = go_args("gbctr", container_ns, "eth0")
        assert rpc.call(str(sock), "DHCP.Release", args, timeout=10) == {}
        # twice: DEL is idempotent
        assert rpc.call(str(sock), "DHCP.Release", args, timeout=10) == {}


@needs_go_dhcp
def test_go_daemon_errors_are_remote_errors(host_ns, container_ns, sockdir):
    sock = sockdir / "dhcp.sock"
    with go_daemon(sock):
        missing = go_args("gbctr", container_ns, "gbnope0")
        with pytest.raises(rpc.RemoteError) as exc:
            rpc.call(str(sock), "DHCP.Allocate", missing, timeout=20)
        assert 'error looking up "gbnope0"' in str(exc.value)

        bad_conf = {**missing, "StdinData": b"{nope"}
        with pytest.raises(rpc.RemoteError, match=r"^error parsing netconf"):
            rpc.call(str(sock), "DHCP.Release", bad_conf, timeout=10)

        with pytest.raises(rpc.RemoteError, match=r"^rpc: can't find method DHCP\.Nope$"):
            rpc.call(str(sock), "DHCP.Nope", missing, timeout=10)


@needs_go_dhcp
def test_full_allocate_and_release_through_go_daemon(lan, netns_factory, sockdir):
    """A real lease from dnsmasq (the dhcp tests' sandbox LAN), acquired by
    the Go daemon for our client and decoded through result_from_go."""
    from support.dhcp_lan import ROUTER, SUBNET, Daemon, wait_for

    ctr = netns_factory("ct")
    lan.attach(ctr, "eth0")
    daemon = Daemon(lan, sockdir / "go.sock", "-timeout", "2s", go=True)
    try:
        args = go_args("gbfull", ctr, "eth0")
        reply = rpc.call(str(daemon.socket_path), "DHCP.Allocate", args, timeout=60)
        result = wire.result_from_go(reply, "1.0.0")
        [ipc] = result.ips
        assert ipc.address.startswith(f"{SUBNET}.") and ipc.prefixlen == 24
        assert 10 <= int(ipc.ip.rpartition(".")[2]) <= 50
        assert ipc.gateway == ROUTER and ipc.interface is None
        assert result.routes == [Route("0.0.0.0/0", ROUTER)]
        assert result.dns.is_empty() and result.interfaces == []
        assert lan.has_lease("gbfull/gbnet/eth0")

        assert rpc.call(str(daemon.socket_path), "DHCP.Release", args, timeout=30) == {}
        assert wait_for(lambda: not lan.has_lease("gbfull/gbnet/eth0"), 5)
    finally:
        daemon.stop()
