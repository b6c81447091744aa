"""dhcp against a real DHCP server: dnsmasq on a sandbox LAN (support.dhcp_lan),
containers on veths into it, our daemon (and Go's) in the LAN netns."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pycni.skel.testing import PluginRunner

from support.dhcp_lan import (
    FAST,
    GO_DHCP,
    OUR_PLUGIN,
    RENEW_AFTER,
    ROUTER,
    SUBNET,
    Daemon,
    netconf,
    wait_for,
)
from support.outcomes import err, ok
from support.sandbox import ip, ip_json

needs_go = pytest.mark.skipif(not os.access(GO_DHCP, os.X_OK), reason=f"{GO_DHCP} is not installed")


def link(ctr, name: str = "eth0") -> dict:
    return ip_json("link", "show", name, netns=ctr.name)[0]


def attachment(ctr, plugin: str = OUR_PLUGIN, cid: str = "") -> tuple[PluginRunner, str]:
    """A runner for `ctr`'s eth0 and the client ID the lease gets."""
    cid = cid or "dh" + os.urandom(4).hex()
    return PluginRunner(plugin, netns=ctr.path, container_id=cid), f"{cid}/dhnet/eth0"


def assert_lease_result(result: dict, version: str = "1.0.0") -> str:
    assert result["cniVersion"] == version
    (ipc,) = result["ips"]
    address = ipc["address"]
    assert address.startswith(f"{SUBNET}.") and address.endswith("/24")
    assert ipc["gateway"] == ROUTER
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": ROUTER}]
    assert not result.get("dns")  # like the reference: no DNS from DHCP
    assert "interfaces" not in result
    return address


def test_add_check_del(host_ns, lan, daemon, container_ns):
    lan.attach(container_ns)
    assert "UP" not in link(container_ns)["flags"]
    plugin, cid = attachment(container_ns)
    conf = netconf(daemon.socket_path)
    started = time.monotonic()
    result = ok(plugin.add(conf))
    took = time.monotonic() - started
    assert_lease_result(result)
    assert lan.leased(cid), lan.leases()
    assert "UP" in link(container_ns)["flags"]  # the daemon brought it up first
    assert took < 2.0, f"ADD took {took:.1f}s"
    ok(plugin.check(conf))
    assert ok(plugin.add(conf)) == result  # the same lease, no new exchange
    assert lan.log().count(f"DHCPDISCOVER({lan.bridge}) {link(container_ns)['address']}") == 1
    ok(plugin.delete(conf))
    assert lan.released(cid)  # DHCPRELEASE reached the server
    ok(plugin.delete(conf))


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.1.0"])
def test_result_in_the_config_version(host_ns, lan, daemon, container_ns, version):
    lan.attach(container_ns)
    plugin, _ = attachment(container_ns)
    conf = netconf(daemon.socket_path, version)
    result = ok(plugin.add(conf))
    assert result["cniVersion"] == version and result["ips"][0]["gateway"] == ROUTER
    ok(plugin.delete(conf))


def test_priority_and_provided_hostname(host_ns, lan, daemon, container_ns):
    lan.attach(container_ns)
    plugin, _ = attachment(container_ns)
    conf = netconf(
        daemon.socket_path,
        priority=300,
        provide=[{"option": "host-name", "value": "ignored", "fromArg": "K8S_POD_NAME"}],
        request=[{"option": "121"}],
    )
    result = ok(plugin.add(conf, args="IgnoreUnknown=1;K8S_POD_NAME=dhpod"))
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": ROUTER, "priority": 300}]
    line = next(x for x in lan.leases().splitlines() if result["ips"][0]["address"][:-3] in x)
    assert " dhpod " in line  # dnsmasq records the host name we provided
    assert "121:classless-static-route" in lan.log()  # our request list
    ok(plugin.delete(conf))


def test_two_containers_at_once(host_ns, lan, daemon, netns_factory):
    ctrs = [netns_factory("ct"), netns_factory("ct")]
    runners = []
    for ctr in ctrs:
        lan.attach(ctr)
        runners.append(attachment(ctr))
    conf = netconf(daemon.socket_path)
    procs = [
        subprocess.Popen(
            [*_argv(), "ADD"], env=_env(r, "ADD"), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for r, _ in runners
    ]
    outs = [p.communicate(json.dumps(conf).encode(), timeout=30)[0] for p in procs]
    addresses = {assert_lease_result(json.loads(out)) for out in outs}
    assert len(addresses) == 2
    for r, cid in runners:
        assert lan.leased(cid), lan.leases()
        ok(r.delete(conf))
        assert lan.released(cid)


def _argv() -> list[str]:
    import sys

    return [sys.executable, "-c", f"from {OUR_PLUGIN} import main; main()"]


def _env(runner: PluginRunner, command: str) -> dict:
    d = runner.defaults
    return {
        **os.environ,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": d["container_id"],
        "CNI_NETNS": d["netns"],
        "CNI_IFNAME": d["ifname"],
        "CNI_PATH": "/nonexistent",
    }


def test_renewal(host_ns, lan, daemon, container_ns):
    lan.attach(container_ns)
    plugin, cid = attachment(container_ns)
    conf = netconf(daemon.socket_path)
    idle = daemon.threads()
    cidr = ok(plugin.add(conf))["ips"][0]["address"]
    assert daemon.threads() > idle  # the lease's loop
    address = cidr[:-3]
    # as the interface plugin would: the server's unicast answer needs ARP
    ip("addr", "add", cidr, "dev", "eth0", netns=container_ns.name)
    acks = f"DHCPACK({lan.bridge}) {address} "
    seen = len(lan.log())
    assert wait_for(lambda: acks in lan.log()[seen:], RENEW_AFTER + 3), lan.log()[seen:]
    assert f"DHCPDISCOVER({lan.bridge}) {link(container_ns)['address']}" not in lan.log()[seen:]
    assert wait_for(lambda: f"{cid}: lease renewed" in daemon.log(), 2), daemon.log()
    assert lan.leased(cid), lan.leases()
    ok(plugin.check(conf))  # CHECK reuses the loop (the reference starts a second one)
    ok(plugin.delete(conf))
    assert lan.released(cid)
    # no loop is left behind (it would renew again at T1): its thread is gone
    assert wait_for(lambda: daemon.threads() <= idle, 2), (daemon.threads(), idle)


def test_server_that_never_answers(host_ns, lan, daemon, container_ns):
    """An error within -resendtimeout (2 s here), the link left down as it
    was, and nothing kept: once the server is reachable ADD works."""
    peer = lan.attach(container_ns, bridged=False)
    plugin, cid = attachment(container_ns)
    conf = netconf(daemon.socket_path)
    started = time.monotonic()
    code, msg = err(plugin.add(conf))
    took = time.monotonic() - started
    assert code == 999 and "error calling DHCP.Allocate: no more tries" in msg
    assert 1.8 < took < 5, took
    assert "UP" not in link(container_ns)["flags"]
    ok(plugin.delete(conf))
    lan.plug(peer)
    assert_lease_result(ok(plugin.add(conf)))
    ok(plugin.delete(conf))
    assert lan.released(cid)


@pytest.mark.parametrize("wait_for_loop", [False, True], ids=["at-once", "loop-ended"])
def test_interface_gone_then_back(host_ns, lan, daemon, container_ns, wait_for_loop):
    """The reference blocks on a lease whose loop has ended (the interface
    went away); we answer, at once or after the loop noticed it."""
    lan.attach(container_ns)
    plugin, cid = attachment(container_ns)
    conf = netconf(daemon.socket_path)
    ok(plugin.add(conf))
    ip("link", "del", "eth0", netns=container_ns.name)
    if wait_for_loop:  # it looks at its next wake-up, T1
        ended = f"{cid}: interface eth0 no longer exists"
        assert wait_for(lambda: ended in daemon.log(), RENEW_AFTER + 3), daemon.log()
    code, msg = err(plugin.check(conf))
    assert code == 999 and 'error looking up "eth0"' in msg
    lan.attach(container_ns)
    ok(plugin.check(conf))  # a new lease on the new interface
    assert lan.leased(cid), lan.leases()
    ok(plugin.delete(conf))
    assert lan.released(cid)


def test_restart_with_stale_socket(host_ns, lan, workdir, container_ns):
    """A daemon killed by SIGKILL leaves its socket file: the next one takes
    the path over, and ADD/CHECK/DEL of the same attachment work (the lease
    is acquired again; the server gives the same address). SIGTERM ends a
    daemon at once, leases and all, without releasing them (the containers
    keep their addresses), as the reference."""
    path = workdir / "restart" / "dhcp.sock"
    first = Daemon(lan, path, *FAST)
    lan.attach(container_ns)
    plugin, cid = attachment(container_ns)
    conf = netconf(path)
    try:
        address = ok(plugin.add(conf))["ips"][0]["address"]
    finally:
        first.stop(signal.SIGKILL)
    assert path.is_socket()  # stale
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    second = Daemon(lan, path, *FAST)
    try:
        assert "removing the stale socket" in second.log()
        ok(plugin.check(conf))
        assert ok(plugin.add(conf))["ips"][0]["address"] == address
    finally:
        started = time.monotonic()
        assert second.stop() == 0
        assert time.monotonic() - started < 3
    assert not path.exists()  # removed at SIGTERM
    assert lan.leased(cid)  # not released
    third = Daemon(lan, path, *FAST)
    try:
        assert ok(plugin.add(conf))["ips"][0]["address"] == address
        ok(plugin.delete(conf))
        assert lan.released(cid)
        ok(plugin.delete(conf))
    finally:
        assert third.stop() == 0


def test_daemon_refuses_a_taken_path(host_ns, lan, workdir, daemon):
    other = Daemon(lan, daemon.socket_path, wait=False)
    assert other.proc.wait(10) == 1
    assert "already listens" in other.log()
    regular = workdir / "regular"
    regular.write_text("")
    other = Daemon(lan, regular, wait=False)
    assert other.proc.wait(10) == 1
    assert "is not a socket" in other.log()
    assert regular.read_text() == ""


def test_pidfile(host_ns, lan, workdir):
    pidfile = workdir / "dhcp.pid"
    d = Daemon(lan, workdir / "pid" / "dhcp.sock", "-pidfile", str(pidfile))
    assert pidfile.read_text() == str(d.proc.pid)
    assert d.stop(signal.SIGINT) == 0
    assert not pidfile.exists() and not d.socket_path.exists()
    bad = Daemon(lan, workdir / "pid2" / "dhcp.sock", "-pidfile", "rel.pid", wait=False)
    assert bad.proc.wait(10) == 1 and "path not absolute" in bad.log()


ACTIVATE = (
    "import os; os.dup2({fd}, 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
    "os.environ['LISTEN_FDS'] = '{count}'; "
)


def test_socket_activation(host_ns, lan, workdir, container_ns):
    path = workdir / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    fd = listener.fileno()
    try:
        d = Daemon(
            lan,
            workdir / "unused.sock",
            *FAST,
            preexec=ACTIVATE.format(fd=fd, count=1),
            pass_fds=(fd,),
            wait=False,
        )
        assert wait_for(lambda: "listening on the socket systemd passed" in d.log(), 10)
        listener.close()  # the daemon holds it now
        lan.attach(container_ns)
        plugin, cid = attachment(container_ns)
        conf = netconf(path)
        try:
            assert_lease_result(ok(plugin.add(conf)))
            ok(plugin.delete(conf))
            assert lan.released(cid)
        finally:
            assert d.stop() == 0
        assert path.is_socket()  # systemd's socket stays, systemd removes it
        assert not (workdir / "unused.sock").exists()
    finally:
        listener.close()


def test_socket_activation_with_two_fds(host_ns, lan, workdir):
    d = Daemon(
        lan, workdir / "two.sock", preexec=ACTIVATE.format(fd=2, count=2), pass_fds=(), wait=False
    )
    assert d.proc.wait(10) == 1
    assert "Too many (2) FDs passed through socket activation" in d.log()


# --- the Go binary on either side ---------------------------------------------------------


def _normal(result: dict) -> dict:
    return {k: v for k, v in result.items() if not (k == "dns" and not v)}


@needs_go
def test_go_plugin_through_our_daemon(host_ns, lan, daemon, container_ns):
    lan.attach(container_ns)
    go, cid = attachment(container_ns, GO_DHCP)
    ours = PluginRunner(
        OUR_PLUGIN, netns=container_ns.path, container_id=go.defaults["container_id"]
    )
    conf = netconf(daemon.socket_path)
    result = ok(go.add(conf))
    assert_lease_result(_normal(result))
    assert lan.leased(cid), lan.leases()
    assert _normal(ok(ours.add(conf))) == _normal(result)  # the same lease
    ok(go.check(conf))
    ok(go.delete(conf))
    assert lan.released(cid)
    ok(go.delete(conf))


@needs_go
def test_our_plugin_through_go_daemon(host_ns, lan, workdir, container_ns):
    path = workdir / "go" / "dhcp.sock"
    d = Daemon(lan, path, "-timeout", "2s", go=True)
    try:
        lan.attach(container_ns)
        plugin, cid = attachment(container_ns)
        conf = netconf(path, priority=7)
        result = ok(plugin.add(conf))
        assert_lease_result({**result, "routes": [{"dst": "0.0.0.0/0", "gw": ROUTER}]})
        assert lan.leased(cid), lan.leases()
        ok(plugin.delete(conf))
        assert lan.released(cid)
        ok(plugin.delete(conf))
    finally:
        d.stop(signal.SIGKILL)


def test_hostprefix(host_ns, lan, workdir, container_ns):
    """-hostprefix goes before the socket path and before every netns path
    the plugin sends (a daemon in a container with the host's / mounted)."""
    prefix = workdir / "hostroot"
    fake = f"/dhfake-{os.urandom(3).hex()}/netns/{container_ns.name}"
    (prefix / fake[1:]).parent.mkdir(parents=True)
    (prefix / fake[1:]).symlink_to(container_ns.path)
    inner = Path(f"/run/{container_ns.name}.sock")  # the daemon's view: under the prefix
    d = Daemon(lan, inner, *FAST, "-hostprefix", str(prefix), wait=False)
    try:
        assert wait_for(lambda: "listening on" in d.log(), 10), d.log()
        lan.attach(container_ns)
        plugin = PluginRunner(OUR_PLUGIN, netns=fake, container_id="dhprefix")
        assert not inner.exists()
        conf = netconf(f"{prefix}{inner}")
        assert_lease_result(ok(plugin.add(conf)))
        assert lan.leased("dhprefix/dhnet/eth0")
        ok(plugin.delete(conf))
        assert lan.released("dhprefix/dhnet/eth0")
    finally:
        d.stop()
