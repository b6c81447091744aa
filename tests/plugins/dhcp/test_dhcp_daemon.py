"""The daemon's service without a network: what Allocate and Release answer
before any DHCP traffic, and its listener rules (daemon.py)."""

from __future__ import annotations

import json
import socket

import pytest

from pycni.plugins.ipam.dhcp import daemon
from pycni.plugins.ipam.dhcp.lease import Settings


def args(conf: dict | bytes, netns: str = "/run/netns/dh-none", ifname: str = "eth0") -> dict:
    data = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    return {
        "ContainerID": "ctr",
        "Netns": netns,
        "IfName": ifname,
        "Args": "",
        "Path": "/opt/cni/bin",
        "StdinData": data,
    }


CONF = {"cniVersion": "1.0.0", "name": "dhnet", "ipam": {"type": "dhcp"}}


@pytest.fixture
def service():
    s = daemon.DHCP(Settings(timeout=0.1, resend_max=0.2, resend_timeout=0.5))
    yield s
    s.close()


def test_allocate_refuses_bad_options(service):
    conf = {**CONF, "ipam": {"type": "dhcp", "provide": [{"option": "nope", "value": "x"}]}}
    with pytest.raises(ValueError, match=r"ipam\.provide\[0\]\.option.*nope"):
        service.allocate(args(conf))
    assert service.leases == {}


def test_allocate_in_a_missing_netns_fails_and_keeps_nothing(service):
    with pytest.raises(Exception, match='error looking up "eth0"'):
        service.allocate(args(CONF))
    assert service.leases == {}


def test_netconf_errors(service):
    with pytest.raises(ValueError, match="error parsing netconf"):
        service.allocate(args(b"{nope"))
    with pytest.raises(ValueError, match="error parsing netconf"):
        service.release(args(b"[]"))


def test_release_of_an_unknown_lease_succeeds(service):
    assert service.release(args(CONF)) == {}
    bad_options = {**CONF, "ipam": {"type": "dhcp", "provide": "not even a list"}}
    assert service.release(args(bad_options)) == {}  # Release reads only the name


def test_host_prefix_is_put_before_the_netns(service, tmp_path):
    service.host_prefix = str(tmp_path)
    with pytest.raises(Exception, match=str(tmp_path)):
        service.allocate(args(CONF, netns="/run/netns/x"))


def test_listen_replaces_only_a_dead_socket(tmp_path):
    path = tmp_path / "sub" / "dir" / "dhcp.sock"
    first = daemon.listen(str(path))
    assert oct((tmp_path / "sub").stat().st_mode & 0o777) == "0o700"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    try:
        with pytest.raises(daemon.DaemonError, match="already listens"):
            daemon.listen(str(path))
    finally:
        first.close()
    second = daemon.listen(str(path))  # stale now: replaced
    second.close()
    path.unlink()
    path.write_text("x")
    with pytest.raises(daemon.DaemonError, match="is not a socket"):
        daemon.listen(str(path))
    assert path.read_text() == "x"


def test_activation_needs_our_pid(monkeypatch):
    monkeypatch.setenv("LISTEN_PID", "1")
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert daemon.activation_listener() is None
    assert "LISTEN_FDS" not in __import__("os").environ


def test_activation_fd_must_be_a_listener(monkeypatch):
    import os

    a, b = socket.socketpair()
    saved = os.dup(3) if _fd_open(3) else None
    try:
        os.dup2(a.fileno(), 3)
        monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
        monkeypatch.setenv("LISTEN_FDS", "1")
        with pytest.raises(daemon.DaemonError, match="LISTEN_FDS=1 but no FD found"):
            daemon.activation_listener()
    finally:
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        else:
            os.close(3)
        a.close()
        b.close()


def _fd_open(fd: int) -> bool:
    import os

    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
