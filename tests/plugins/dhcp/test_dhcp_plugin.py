"""The dhcp plugin without a daemon: config errors before any RPC, and a
clear error (or, for DEL, success) when no daemon can answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pycni.skel.testing import run_plugin

from support.dhcp_lan import OUR_PLUGIN, netconf
from support.outcomes import err, ok


def add(conf: dict, command: str = "ADD", **kw):
    return run_plugin(OUR_PLUGIN, command, conf, netns="/run/netns/dh-nonexistent", **kw)


@pytest.fixture
def missing(tmp_path: Path) -> Path:
    return tmp_path / "run" / "dhcp.sock"


@pytest.mark.parametrize("command", ["ADD", "CHECK"])
def test_missing_socket_names_path_and_how_to_start(missing, command):
    code, msg = err(add(netconf(missing), command))
    assert code == 11 and str(missing) in msg and "does not exist" in msg
    assert '"dhcp daemon"' in msg and "cni-dhcp.socket" in msg


def test_not_a_socket(tmp_path):
    path = tmp_path / "dhcp.sock"
    path.write_text("")
    code, msg = err(add(netconf(path)))
    assert code == 999 and str(path) in msg and "is not a socket" in msg
    assert "dhcp daemon" in msg


def test_nobody_listening(tmp_path):
    path = tmp_path / "dhcp.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # a socket file whose daemon is gone
    s.close()
    code, msg = err(add(netconf(path)))
    assert code == 11 and str(path) in msg and "connection refused" in msg


def test_del_without_daemon_succeeds(tmp_path, missing):
    """Leases live in the daemon: without one there is nothing to release."""
    out = add(netconf(missing), "DEL")
    ok(out)
    assert "no lease to release" in out.stderr and str(missing) in out.stderr
    regular = tmp_path / "file"
    regular.write_text("")
    ok(add(netconf(regular), "DEL"))
    ok(add(netconf(missing, provide="bad"), "DEL"))  # DEL reads only the socket path


def test_config_error_comes_before_dialing(missing):
    code, msg = err(add(netconf(missing, provide=[{"option": "nope", "value": "x"}])))
    assert code == 7 and "ipam.provide[0].option" in msg and "nope" in msg
    conf = netconf(missing, provide=[{"option": "12", "fromArg": "N"}])
    code, msg = err(add(conf, args="N=" + "x" * 300))
    assert code == 4 and "from CNI_ARGS 'N'" in msg


def test_version():
    out = ok(run_plugin(OUR_PLUGIN, "VERSION", {"cniVersion": "1.0.0"}))
    assert out is not None and "1.0.0" in out["supportedVersions"]
