"""The firewalld backend and the D-Bus client, against a private dbus-daemon.

A test bus (dbus-daemon with its own config and socket) stands in for the
system bus (DBUS_SYSTEM_BUS_ADDRESS); a fake firewalld on it, built on our
own D-Bus client, owns org.fedoraproject.FirewallD1 and records the zone
calls it receives. Without a bus, or with a bus but no firewalld, the
backend is "not supported" and an empty backend does not pick it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from pycni.plugins.meta.firewall import dbus
from pycni.plugins.meta.firewall.firewalld import NAME, NOT_SUPPORTED

from support.firewall import PLUGIN, filter_table, make_conf, nft_ruleset, prev_result, run
from support.outcomes import err, ok

DUAL = ("198.18.0.5/24", "fd00:18::5/64")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def bus_path():
    """A private message bus; its socket path."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("no dbus-daemon")
    d = Path(tempfile.mkdtemp(prefix="fwbus"))
    sock = d / "bus"
    conf = d / "bus.conf"
    conf.write_text(BUS_CONFIG.format(path=sock))
    proc = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("unix:")
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


class FakeFirewalld:
    """Owns firewalld's name on the bus and answers the zone methods."""

    def __init__(self, path: str, refuse: str = "") -> None:
        self.bus = dbus.Bus(path)
        owner = self.bus.call(
            dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "RequestName", "su", (NAME, 4)
        )
        assert owner == 1  # primary owner
        self.refuse = refuse
        self.calls: list[tuple] = []
        self.sources: set[tuple[str, str]] = set()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                msg = self.bus.receive()
            except (dbus.DBusError, OSError):
                return  # the bus went away
            if msg.mtype != dbus.METHOD_CALL:
                continue
            member = msg.fields.get(dbus.F_MEMBER)
            zone, source = [*msg.values, "", ""][:2]
            self.calls.append((msg.fields.get(dbus.F_INTERFACE), member, zone, source))
            key = (zone, source)
            if source == self.refuse:
                self._error(msg, "INVALID_ADDR: refused by the test")
            elif member == "addSource":
                if key in self.sources:
                    self._error(msg, f"ZONE_ALREADY_SET: {source}")
                else:
                    self.sources.add(key)
                    self._reply(msg, "s", (zone,))
            elif member == "removeSource":
                if key in self.sources:
                    self.sources.discard(key)
                    self._reply(msg, "s", (zone,))
                else:
                    self._error(msg, f"UNKNOWN_SOURCE: {source}")
            elif member == "querySource":
                self._reply(msg, "b", (key in self.sources,))
            else:
                self._error(msg, "unknown method")

    def _reply(self, msg, sig: str, args) -> None:
        fields = {dbus.F_REPLY_SERIAL: msg.serial, dbus.F_DESTINATION: msg.fields[dbus.F_SENDER]}
        self.bus.send(dbus.METHOD_RETURN, fields, sig, args)

    def _error(self, msg, text: str) -> None:
        fields = {
            dbus.F_REPLY_SERIAL: msg.serial,
            dbus.F_DESTINATION: msg.fields[dbus.F_SENDER],
            dbus.F_ERROR_NAME: "org.fedoraproject.FirewallD1.Exception",
        }
        self.bus.send(dbus.ERROR, fields, "s", (text,))

    def members(self) -> list[tuple]:
        return [c[1:] for c in self.calls]


def bus_env(path: str) -> dict[str, str]:
    return {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={path}"}


def conf(**keys) -> dict:
    return make_conf("1.0.0", prev_result(DUAL), **keys)


def test_no_bus_socket_means_not_supported(ct):
    env = bus_env("/nonexistent/bus")
    code, msg = err(run(PLUGIN, "ADD", conf(backend="firewalld"), ct, env=env))
    assert (code, msg) == (999, NOT_SUPPORTED)
    code, msg = err(run(PLUGIN, "CHECK", conf(backend="firewalld"), ct, env=env))
    assert (code, msg) == (999, NOT_SUPPORTED)
    ok(run(PLUGIN, "DEL", conf(backend="firewalld"), ct, env=env))
    # an empty backend does not pick firewalld: nftables in this fresh sandbox
    ok(run(PLUGIN, "ADD", conf(), ct, env=env))
    assert any("table" in o and o["table"]["name"] == "cni_firewall" for o in nft_ruleset())


def test_bus_without_firewalld_means_not_supported(ct, bus_path):
    assert not dbus.name_has_owner(NAME, bus_path)
    assert dbus.name_has_owner(dbus.BUS_NAME, bus_path)
    env = bus_env(bus_path)
    code, msg = err(run(PLUGIN, "ADD", conf(backend="firewalld"), ct, env=env))
    assert (code, msg) == (999, NOT_SUPPORTED)
    ok(run(PLUGIN, "ADD", conf(), ct, env=env))
    assert nft_ruleset() != []


def test_firewalld_zone_calls(ct, bus_path):
    fw = FakeFirewalld(bus_path)
    env = bus_env(bus_path)
    c = conf()  # empty backend: firewalld is running, so firewalld
    ok(run(PLUGIN, "ADD", c, ct, env=env))
    zone = "org.fedoraproject.FirewallD1.zone"
    assert fw.calls == [
        (zone, "addSource", "trusted", "198.18.0.5/32"),
        (zone, "addSource", "trusted", "fd00:18::5/128"),
    ]
    assert nft_ruleset() == [] and "CNI-FORWARD" not in "".join(filter_table())
    ok(run(PLUGIN, "ADD", c, ct, env=env))  # ZONE_ALREADY_SET is fine
    ok(run(PLUGIN, "CHECK", c, ct, env=env))
    assert fw.members()[-2:] == [
        ("querySource", "trusted", "198.18.0.5/32"),
        ("querySource", "trusted", "fd00:18::5/128"),
    ]
    ok(run(PLUGIN, "DEL", c, ct, env=env))
    assert fw.sources == set()
    ok(run(PLUGIN, "DEL", c, ct, env=env))  # removeSource errors are ignored
    ok(run(PLUGIN, "ADD", conf(backend="firewalld", firewalldZone="internal"), ct, env=env))
    assert fw.sources == {("internal", "198.18.0.5/32"), ("internal", "fd00:18::5/128")}


def test_failed_add_removes_the_sources_it_added(ct, bus_path):
    fw = FakeFirewalld(bus_path, refuse="fd00:18::5/128")
    code, msg = err(run(PLUGIN, "ADD", conf(backend="firewalld"), ct, env=bus_env(bus_path)))
    assert code == 999
    assert msg.startswith("failed to add the address fd00:18::5/128 to trusted zone: ")
    assert "INVALID_ADDR" in msg
    assert ("removeSource", "trusted", "198.18.0.5/32") in fw.members()
    assert fw.sources == set()


def test_ingress_policy_with_firewalld_goes_to_iptables(ct, bus_path):
    FakeFirewalld(bus_path)
    c = conf(backend="firewalld", ingressPolicy="same-bridge")
    ok(run(PLUGIN, "ADD", c, ct, env=bus_env(bus_path)))
    rules = filter_table()
    assert any("-A CNI-ISOLATION-STAGE-2 -o fwbr0" in r for r in rules), rules
    assert not any("CNI-FORWARD" in r for r in rules)


def test_address_forms():
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "tcp:host=x;unix:path=/run/a%20b,guid=1"}
    assert dbus.system_bus_path(env) == "/run/a b"
    assert dbus.system_bus_path({"DBUS_SYSTEM_BUS_ADDRESS": "unix:abstract=xy"}) == b"\0xy"
    assert dbus.system_bus_path({}) == "/var/run/dbus/system_bus_socket"
    assert dbus.system_bus_path({"DBUS_SYSTEM_BUS_ADDRESS": "tcp:host=x"}) is None


def test_message_round_trip():
    data = dbus.encode(
        dbus.METHOD_CALL,
        7,
        {dbus.F_PATH: "/a/b", dbus.F_MEMBER: "m", dbus.F_DESTINATION: "x.y"},
        "ssub",
        ("zone", "é", 42, True),
    )
    head, body = dbus.header_length(data[:16])
    assert head + body == len(data) and head % 8 == 0
    msg = dbus.decode(data)
    assert (msg.mtype, msg.serial) == (dbus.METHOD_CALL, 7)
    assert msg.fields[dbus.F_PATH] == "/a/b" and msg.fields[dbus.F_SIGNATURE] == "ssub"
    assert msg.values == ["zone", "é", 42, True]
