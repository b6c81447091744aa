"""The fork server (pycni.plugins.forkserver) against a plain exec of the
same launcher: same stdout, exit status and error for every plugin type and
verb, same crash, timeout and kill behaviour, and exec when turned off.

Every comparison runs the call once through `ForkServerExecutor` and once
through `invoke.DEFAULT` (posix_spawn of the launcher) and compares the
outcomes; kernel chains run through the runtime (`CNIConfig`) with each
executor in its own container netns, results and cache files compared with
the random parts (MACs, host-side veth names, netns paths) masked.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from pycni import invoke
from pycni.invoke import PluginTimeoutError, plugin_env
from pycni.plugins import PLUGINS
from pycni.plugins.forkserver import SWITCH, ForkServerExecutor
from pycni.plugins.launcher import in_process_module
from pycni.spec.errors import CNIError

from support.plugin_dirs import install_launchers


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "pyfs"}


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """Launchers of this checkout on this interpreter: in_process_module
    recognises them, so the fork server runs them."""
    path = install_launchers(tmp_path / "bin")
    assert in_process_module(str(path / "bridge")) == PLUGINS["bridge"]
    return path


@pytest.fixture
def forked():
    executor = ForkServerExecutor()
    yield executor
    executor.close()


def outcome(executor, path: Path, stdin: bytes, env: dict, timeout: float | None = None):
    """What a call gives: ("ok", stdout) or ("err", class, code, msg, details)."""
    try:
        return ("ok", executor.exec_plugin(str(path), stdin, env, timeout))
    except CNIError as err:
        return ("err", type(err).__name__, err.code, err.msg, err.details)


def both(forked, path: Path, stdin: bytes, env: dict, timeout: float | None = 20.0):
    got = outcome(forked, path, stdin, env, timeout)
    assert forked.server_pid is not None, "the call did not go through the fork server"
    want = outcome(invoke.DEFAULT, path, stdin, env, timeout)
    return got, want


# -- every plugin type: VERSION, STATUS, a failing ADD ---------------------


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_version_same_as_exec(bindir: Path, forked, plugin_type: str) -> None:
    env = plugin_env("VERSION", netns="dummy", ifname="dummy", path="dummy")
    got, want = both(forked, bindir / plugin_type, b'{"cniVersion":"1.0.0"}', env)
    assert got == want
    assert got[0] == "ok" and b"supportedVersions" in got[1]


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_bad_add_same_error_as_exec(bindir: Path, forked, host_ns, plugin_type: str) -> None:
    """An ADD no plugin can carry out (a config without its keys, a netns
    that does not exist): the same CNI error, code and details."""
    conf = {
        "cniVersion": "1.0.0",
        "name": "pyfs-bad",
        "type": plugin_type,
        "mtu": "x",
        "ingressRate": "x",
        "sysctl": "x",
    }
    env = plugin_env("ADD", "pyfs-ct", "/run/netns/pyfs-none", (), "eth0", str(bindir))
    got, want = both(forked, bindir / plugin_type, json.dumps(conf).encode(), env)
    assert got == want
    assert got[0] == "err"


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_bad_stdin_same_error_as_exec(bindir: Path, forked, plugin_type: str) -> None:
    env = plugin_env("DEL", "pyfs-ct", "", (), "eth0", str(bindir))
    got, want = both(forked, bindir / plugin_type, b'{"cniVersion": ', env)
    assert got == want
    assert got[0] == "err" and got[2] == 6  # ERR_DECODING_FAILURE


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_status_same_as_exec(bindir: Path, forked, host_ns, tmp_path: Path, plugin_type) -> None:
    conf = {
        "cniVersion": "1.1.0",
        "name": "pyfs-st",
        "type": plugin_type,
        "ipam": {"type": "host-local", "subnet": "198.19.203.0/24", "dataDir": str(tmp_path)},
    }
    if plugin_type == "dhcp":
        conf["daemonSocketPath"] = str(tmp_path / "none.sock")
    env = plugin_env("STATUS", path=str(bindir))
    got, want = both(forked, bindir / plugin_type, json.dumps(conf).encode(), env)
    assert got == want


# -- kernel chains through the runtime --------------------------------------


def _chains(data: Path, uplink: str) -> dict[str, dict]:
    def host_local(subnet: str) -> dict:
        return {"type": "host-local", "dataDir": str(data), "ranges": [[{"subnet": subnet}]]}

    static = {
        "type": "static",
        "addresses": [
            {"address": "198.19.202.10/24", "gateway": "198.19.202.1"},
            {"address": "fd00:f5::10/64", "gateway": "fd00:f5::1"},
        ],
    }
    return {
        "loopback": [{"type": "loopback"}],
        "chain6": [
            {
                "type": "bridge",
                "bridge": "fsbr0",
                "isGateway": True,
                "ipMasq": True,
                "ipam": host_local("198.19.200.0/24"),
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
            {"type": "firewall"},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}},
        ],
        "ptp-static": [{"type": "ptp", "ipam": static}],
        "macvlan": [
            {
                "type": "macvlan",
                "master": uplink,
                "mode": "bridge",
                "ipam": host_local("198.19.201.0/24"),
            }
        ],
    }


CAPS = {
    "portMappings": [{"hostPort": 18181, "containerPort": 80, "protocol": "tcp"}],
    "bandwidth": {"ingressRate": 1000000, "ingressBurst": 100000},
}


def _mask(value, netns: str):
    """`value` with what differs between two equal attachments masked."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "mac":
                out[key] = "<mac>"
            elif key == "name" and isinstance(item, str) and item.startswith("veth"):
                out[key] = "<veth>"
            else:
                out[key] = _mask(item, netns)
        return out
    if isinstance(value, list):
        return [_mask(item, netns) for item in value]
    if isinstance(value, str):
        return value.replace(netns, "<netns>")
    return value


def _run_chain(executor, bindir, netns, name, plugins, tmp: Path):
    """ADD, CHECK, STATUS, GC (keeping the attachment), DEL; what each gave
    and the cache after ADD, masked."""
    from pycni.runtime import CNIConfig, RuntimeConf
    from pycni.runtime.loader import network_conf_from_bytes

    cache = tmp / "cache"
    doc = {"cniVersion": "1.1.0", "name": name, "plugins": plugins}
    net = network_conf_from_bytes(json.dumps(doc).encode())
    cni = CNIConfig([str(bindir)], cache_dir=str(cache), timeout=30, executor=executor)
    rt = RuntimeConf("pyfs-ctr", netns.path, "eth0", capability_args=CAPS)
    steps = []

    def step(what, fn):
        try:
            value = fn()
            if value is not None and hasattr(value, "to_json"):
                value = json.loads(value.to_json(value.cni_version))
            steps.append((what, "ok", _mask(value, netns.path)))
        except CNIError as err:
            steps.append((what, "err", err.code, _mask(err.msg, netns.path)))

    step("add", lambda: cni.add_network_list(net, rt))
    files = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    cached = [_mask(json.loads(p.read_text()), netns.path) for p in sorted(cache.rglob("*.json"))]
    step("check", lambda: cni.check_network_list(net, rt))
    step("status", lambda: cni.get_status_network_list(net))
    step("gc", lambda: cni.gc_network_list(net, [("pyfs-ctr", "eth0")]))
    step("del", lambda: cni.del_network_list(net, rt))
    step("del again", lambda: cni.del_network_list(net, rt))
    return steps, [str(f) for f in files], cached


@pytest.mark.parametrize("chain", ["loopback", "chain6", "ptp-static", "macvlan"])
def test_chain_same_as_exec(bindir, forked, host_ns, netns_factory, uplink, tmp_path, chain):
    from support.sandbox import ip

    ip("link", "set", "lo", "up")
    results = []
    for impl, executor in (("fork", forked), ("exec", invoke.DEFAULT)):
        tmp = tmp_path / impl
        data = tmp / "data"
        data.mkdir(parents=True)
        ns = netns_factory(impl)
        plugins = _chains(data, uplink)[chain]
        steps, files, cached = _run_chain(executor, bindir, ns, "pyfs-" + chain, plugins, tmp)
        text = json.dumps(cached).replace(str(data), "<data>")
        results.append((steps, files, json.loads(text)))
        if impl == "fork":
            assert forked.server_pid is not None
    assert results[0] == results[1]
    steps = results[0][0]
    assert steps[0][1] == "ok", steps[0]
    assert all(s[1] == "ok" for s in steps), steps


# -- crash, timeout, switch --------------------------------------------------


def test_crash_same_error_as_exec(bindir: Path, forked, container_ns) -> None:
    """A plugin killed by a signal (SIGKILL at a fault point) fails alike."""
    conf = b'{"cniVersion":"1.0.0","name":"pyfs-crash","type":"loopback"}'
    env = plugin_env("ADD", "pyfs-ct", container_ns.path, (), "eth0", str(bindir))
    env["PYCNI_FAULT_STEP"] = "loopback.add.lo-up"
    got, want = both(forked, bindir / "loopback", conf, env)
    assert got == want
    assert got[0] == "err" and "signal: killed" in got[3]


def test_exit_status_and_stderr_same_as_exec(bindir: Path, forked) -> None:
    """No CNI_COMMAND: the about text on stderr and exit 0 through skel;
    an unknown command is an error on stdout and exit 1."""
    env = plugin_env("", path=str(bindir))
    env["CNI_COMMAND"] = "FROB"
    got, want = both(forked, bindir / "bridge", b"{}", env)
    assert got == want and got[0] == "err"


def _processes_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("impl", ["fork", "exec"])
def test_timeout_kills_the_group(bindir: Path, forked, container_ns, tmp_path, impl) -> None:
    """A plugin that hangs (its fault trace is a FIFO nobody reads) is killed
    after the timeout: PluginTimeoutError, and no process of it is left."""
    fifo = tmp_path / "trace"
    os.mkfifo(fifo)
    marker = f"PYFS_MARK_{os.getpid()}_{impl}"
    conf = b'{"cniVersion":"1.0.0","name":"pyfs-hang","type":"loopback"}'
    env = plugin_env("ADD", "pyfs-ct", container_ns.path, (), "eth0", str(bindir))
    env["PYCNI_FAULT_TRACE"] = str(fifo)
    env[marker] = "1"
    executor = forked if impl == "fork" else invoke.DEFAULT
    start = time.monotonic()
    with pytest.raises(PluginTimeoutError) as info:
        executor.exec_plugin(str(bindir / "loopback"), conf, env, 0.5)
    assert time.monotonic() - start < 5
    assert "netplugin timed out after 0.5s and was killed: signal: terminated" in str(info.value)
    if impl == "fork":
        assert forked.server_pid is not None
    assert _processes_with(marker) == []


def test_turned_off_by_the_environment(bindir: Path, forked, monkeypatch) -> None:
    monkeypatch.setenv(SWITCH, "0")
    env = plugin_env("VERSION", netns="dummy", ifname="dummy", path="dummy")
    out = forked.exec_plugin(str(bindir / "bridge"), b'{"cniVersion":"1.0.0"}', env)
    assert b"supportedVersions" in out
    assert forked.server_pid is None
    monkeypatch.delenv(SWITCH)
    forked.exec_plugin(str(bindir / "bridge"), b'{"cniVersion":"1.0.0"}', env)
    assert forked.server_pid is not None


def test_other_plugins_are_execd(tmp_path: Path, forked) -> None:
    """A script that is not a launcher of this installation is exec'd."""
    script = tmp_path / "other"
    script.write_text(f"#!{sys.executable} -IS\nimport sys\nsys.stdout.write('{{}}')\n")
    script.chmod(0o755)
    assert forked.exec_plugin(str(script), b"", {}) == b"{}"
    assert forked.server_pid is None


def test_server_stops_when_closed_or_orphaned(bindir: Path) -> None:
    env = plugin_env("VERSION", netns="dummy", ifname="dummy", path="dummy")
    executor = ForkServerExecutor()
    executor.exec_plugin(str(bindir / "loopback"), b'{"cniVersion":"1.0.0"}', env)
    pid = executor.server_pid
    assert pid is not None
    executor.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # the runtime dies without closing: EOF on the server's socket ends it
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            orphaned = ForkServerExecutor()
            orphaned.exec_plugin(str(bindir / "loopback"), b'{"cniVersion":"1.0.0"}', env)
            os.write(w, str(orphaned.server_pid).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        server = int(f.read())
    os.waitpid(child, 0)
    deadline = time.monotonic() + 5
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(server)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for init)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_concurrent_calls(bindir: Path, forked) -> None:
    """Calls from several threads (once the server runs) all get their own answer."""
    import threading

    assert forked.start()
    outs: dict[int, str] = {}

    def call(i: int) -> None:
        env = plugin_env(f"FROB{i}", path=str(bindir))
        try:
            forked.exec_plugin(str(bindir / "bridge"), b"{}", env, 20)
        except CNIError as err:
            outs[i] = err.msg

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outs == {i: f"unknown CNI_COMMAND: FROB{i}" for i in range(8)}


def test_prepare_preloads_the_networks_plugins(bindir: Path, forked, monkeypatch) -> None:
    """prepare() starts the server for a network with pycni plugins (their
    modules imported at once), and not for one without, nor when turned off."""
    assert not forked.prepare(["no-such-plugin"], [str(bindir)])
    assert forked.server_pid is None
    monkeypatch.setenv(SWITCH, "0")
    assert not forked.prepare(["bridge", "host-local"], [str(bindir)])
    assert forked.server_pid is None
    monkeypatch.delenv(SWITCH)
    assert forked.prepare(["bridge", "no-such-plugin", "host-local"], [str(bindir)])
    assert forked.server_pid is not None
    env = plugin_env("VERSION", netns="dummy", ifname="dummy", path="dummy")
    got, want = both(forked, bindir / "host-local", b'{"cniVersion":"1.0.0"}', env)
    assert got == want


# -- learning: the server imports what its children imported ---------------

_LEARN_PROBE = """
import json, os, sys, time
from pycni.invoke import plugin_env
from pycni.plugins.forkserver import ForkServerExecutor

bindir, db, ns = sys.argv[1:4]

def mapped(pid):
    with open(f"/proc/{pid}/maps") as maps:
        return "_sqlite3" in maps.read()

conf = {"cniVersion": "1.0.0", "name": "pyfs-learn", "type": "sql", "ipam": {
    "type": "sql", "database": {"path": db}, "node": "n1",
    "ranges": [[{"subnet": "198.18.10.0/24"}]]}}
with ForkServerExecutor() as executor:
    executor.start()
    before = mapped(executor.server_pid)
    env = plugin_env("ADD", container_id="c1", netns=ns, ifname="eth0",
                     path=bindir)
    result = json.loads(executor.exec_plugin(bindir + "/sql", json.dumps(conf).encode(), env))
    deadline = time.monotonic() + 10
    while not mapped(executor.server_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    print(json.dumps({"before": before, "after": mapped(executor.server_pid),
                      "ip": result["ips"][0]["address"],
                      "runtime": "_sqlite3" in sys.modules}))
"""


def test_server_learns_the_modules_its_children_imported(
    bindir: Path, tmp_path: Path, container_ns
) -> None:
    """sql's verbs import `_sqlite3` inside ADD: after one ADD, the server
    has it loaded (so the next child starts with it), though neither the
    runtime nor the plugin's preloaded verbs module imported it. Run in a
    fresh interpreter, where nothing has loaded `_sqlite3` before."""
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _LEARN_PROBE,
            str(bindir),
            str(tmp_path / "ipam.db"),
            container_ns.path,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen == {"before": False, "after": True, "ip": "198.18.10.2/24", "runtime": False}


def test_learning_ignores_bad_names_and_failed_imports() -> None:
    """What a child writes is only ever a list of module names: anything
    else is dropped, and a module that fails to import is tried once and
    never stops the server."""
    import select

    from pycni.plugins import forkserver

    poller = select.poll()
    learning = forkserver._Learning(poller)
    r, w = os.pipe()
    learning.listen(r)
    name = "pycni_no_such_module_for_learning"
    os.write(w, f"os; rm -rf /\n{name}\n\n__main__\nos\ncolorsys".encode())
    os.close(w)
    while learning.read(r) and r in learning.readers:
        poller.poll(1000)
    assert learning.pending == [name, "colorsys"][: len(learning.pending)]
    assert name in learning.pending
    while learning.pending:
        assert learning.import_one() == []
    assert name not in sys.modules and "colorsys" in sys.modules
    assert learning.tried >= {name}
