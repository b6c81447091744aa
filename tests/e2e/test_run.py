"""`pycni run` and `pycni demo` end to end, inside a sandbox host netns."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.cli.install import install

from support.cni import bridge_conflist, conflist, plugin, read_log, reservations, write_json
from support.plugin_dirs import install_plugin


@pytest.fixture
def run_env(host_ns, cni_dirs):
    install(cni_dirs["bin"])
    for name, bridge, subnet in (
        ("front", "pycfr0", "198.18.20.0/24"),
        ("back", "pycbk0", "198.18.21.0/24"),
    ):
        (cni_dirs["conf"] / f"{name}.conflist").write_text(
            json.dumps(bridge_conflist(name, bridge, subnet, cni_dirs["data"]))
        )
    env = {**os.environ, "NETCONFPATH": str(cni_dirs["conf"]), "CNI_PATH": str(cni_dirs["bin"])}
    return env, cni_dirs


def run_namespaces(prefix: str = "pycni-run-") -> set[str]:
    """Namespaces named like `pycni run`'s (other tests may come and go)."""
    return {n for n in os.listdir("/run/netns") if n.startswith(prefix)}


def pycni_run(env, dirs, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pycni", "run", "--cache-dir", str(dirs["cache"]), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_attaches_networks_and_cleans_up(run_env):
    env, dirs = run_env
    before = run_namespaces()
    proc = pycni_run(env, dirs, "--net", "front", "--net", "back", "--", "ip", "-j", "addr", "show")
    assert proc.returncode == 0, proc.stderr
    links = {link["ifname"]: link for link in json.loads(proc.stdout)}
    assert set(links) == {"lo", "eth0", "net1"}
    assert links["eth0"]["addr_info"][0]["local"].startswith("198.18.20.")
    assert links["net1"]["addr_info"][0]["local"].startswith("198.18.21.")
    assert "UP" in links["lo"]["flags"]
    assert run_namespaces() <= before
    assert reservations(dirs["data"], "front") == [] and reservations(dirs["data"], "back") == []
    assert not list((dirs["cache"] / "results").iterdir())


def test_run_returns_the_command_exit_status(run_env):
    env, dirs = run_env
    proc = pycni_run(env, dirs, "--net", "front", "--", "sh", "-c", "exit 7")
    assert proc.returncode == 7
    assert reservations(dirs["data"], "front") == []


def test_run_with_unknown_network_fails_cleanly(run_env):
    env, dirs = run_env
    before = run_namespaces()
    proc = pycni_run(env, dirs, "--net", "nosuch", "--", "true")
    assert proc.returncode == 1
    assert 'no net configuration with name "nosuch"' in proc.stderr
    assert "Traceback" not in proc.stderr
    assert run_namespaces() <= before


@pytest.mark.kernel  # pycni demo makes its own namespaces
def test_demo_runs_and_leaves_nothing():
    before = run_namespaces("pycni-demo-")
    proc = subprocess.run(
        [sys.executable, "-m", "pycni", "demo"], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PING  a -> b" in proc.stdout and "demo ok" in proc.stdout
    assert run_namespaces("pycni-demo-") <= before


# -- stop signals, exit statuses (issue 6, item 3) ------------------------------

STOP = [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT]
# The command reports its netns name and pid, then waits.
REPORT = 'echo "$(ip netns identify) $$"'


def start_run(env, dirs, *args: str) -> subprocess.Popen:
    """`pycni run` in the background; stderr goes to dirs["cache"]/../stderr
    (a file: a command left running by a broken pycni cannot block reading it)."""
    err = open(dirs["cache"].parent / "stderr", "w")  # noqa: SIM115
    with err:
        return subprocess.Popen(
            [sys.executable, "-m", "pycni", "run", "--cache-dir", str(dirs["cache"]), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def stderr_of(dirs) -> str:
    return (dirs["cache"].parent / "stderr").read_text()


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def reaped(proc: subprocess.Popen, left: dict):
    """On the way out, remove what a broken `pycni run` left behind: itself,
    the processes `left["pids"]` and the netns `left["netns"]`."""
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        for pid in left.get("pids", ()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if left.get("netns") and netns_exists(left["netns"]):
            subprocess.run(["ip", "netns", "delete", left["netns"]], check=False)


def read_report(proc: subprocess.Popen, left: dict) -> None:
    """The command's first line: its netns name and pids."""
    line = proc.stdout.readline()
    assert line, "pycni run ended before the command started"
    left["netns"], *pids = line.split()
    left["pids"] = [int(pid) for pid in pids]


@pytest.mark.parametrize("sig", STOP, ids=lambda s: s.name)
def test_stop_signal_reaches_the_command_then_teardown(run_env, sig):
    env, dirs = run_env
    proc = start_run(env, dirs, "--net", "front", "--", "sh", "-c", f"{REPORT}; exec sleep 600")
    left: dict = {}
    with reaped(proc, left):
        read_report(proc, left)
        assert left["netns"].startswith("pycni-run-")
        assert reservations(dirs["data"], "front") != []
        proc.send_signal(sig)
        assert proc.wait(timeout=120) == 128 + sig  # the command died of it, as a shell says
        assert stderr_of(dirs) == ""
        assert not alive(left["pids"][0])  # waited for, not orphaned
        assert not netns_exists(left["netns"])
        assert reservations(dirs["data"], "front") == []
        assert not list((dirs["cache"] / "results").iterdir())


def test_command_that_handles_the_signal_decides_the_status(run_env):
    env, dirs = run_env
    script = "trap 'kill $!; exit 3' TERM; sleep 600 & echo \"$(ip netns identify) $$ $!\"; wait"
    proc = start_run(env, dirs, "--net", "front", "--", "sh", "-c", script)
    left: dict = {}
    with reaped(proc, left):
        read_report(proc, left)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 3
        assert not netns_exists(left["netns"])
        assert reservations(dirs["data"], "front") == []


def test_signal_during_add_aborts_and_tears_down(run_env, tmp_path):
    """SIGTERM while a plugin's ADD hangs: the plugin is killed, DEL runs."""
    env, dirs = run_env
    install_plugin(dirs["bin"], "testplugin")
    log = tmp_path / "log.jsonl"
    fifo = tmp_path / "pid.fifo"
    os.mkfifo(fifo)
    write_json(
        dirs["conf"] / "slow.conflist",
        conflist(
            "slow", [plugin("testplugin", log=log, test={"add": "hang", "pidfile": str(fifo)})]
        ),
    )
    proc = start_run(env, dirs, "--net", "slow", "--", "true")
    left: dict = {}
    with reaped(proc, left):
        with open(fifo) as f:  # returns once the plugin's ADD has started
            left["pids"] = [int(f.read())]
        fifo.unlink()  # DEL writes its pid into a plain file
        environ = Path(f"/proc/{left['pids'][0]}/environ").read_bytes().split(b"\0")
        netns = next(v for v in environ if v.startswith(b"CNI_NETNS=")).decode()
        left["netns"] = os.path.basename(netns.partition("=")[2])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        assert stderr_of(dirs) == "pycni: run interrupted by SIGTERM\n"
        # (the hung ADD may have been killed before it logged)
        assert [e["cmd"] for e in read_log(log)][-1:] == ["DEL"]
        assert not netns_exists(left["netns"])
        assert not alive(left["pids"][0])
        assert not list((dirs["cache"] / "results").iterdir())


def test_exit_status_of_a_command_killed_by_a_signal(run_env):
    env, dirs = run_env
    proc = pycni_run(env, dirs, "--net", "front", "--", "sh", "-c", "kill -KILL $$")
    assert proc.returncode == 128 + 9  # not 247
    assert reservations(dirs["data"], "front") == []


@pytest.mark.parametrize(
    ("command", "mode", "status", "message"),
    [
        ("pyccli-no-such-command", None, 127, "pyccli-no-such-command: command not found"),
        ("{tmp}/missing", None, 127, "{tmp}/missing: no such file or directory"),
        (
            "{tmp}/not-executable",
            0o644,
            126,
            "{tmp}/not-executable: cannot execute: Permission denied",
        ),
        (
            "{tmp}/not-a-program",
            0o755,
            126,
            "{tmp}/not-a-program: cannot execute: Exec format error",
        ),
    ],
)
def test_command_that_cannot_run(run_env, tmp_path, command, mode, status, message):
    env, dirs = run_env
    command, message = command.format(tmp=tmp_path), message.format(tmp=tmp_path)
    if mode:
        Path(command).write_bytes(b"\x7fELF garbage")
        Path(command).chmod(mode)
    before = run_namespaces()
    proc = pycni_run(env, dirs, "--net", "front", "--", command)
    assert proc.returncode == status
    assert proc.stderr == f"pycni: run failed: {message}\n"
    assert reservations(dirs["data"], "front") == []
    assert run_namespaces() <= before


CHILD = r"""
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
me = os.stat("/proc/self/ns/net").st_ino
names = []
for name in os.listdir("/run/netns"):
    try:
        if os.stat("/run/netns/" + name).st_ino == me:
            names.append(name)
    except OSError:
        pass
print("ready", names[0], os.getpid(), flush=True)
info = signal.sigwaitinfo({signal.SIGINT})
print("got", info.si_code, flush=True)
sys.stdin.readline()
print("again", signal.SIGINT in signal.sigpending(), flush=True)
"""


def test_ctrl_c_on_a_terminal_reaches_the_command_once(run_env):
    """The terminal signals the whole foreground group: the command got ^C
    already, pycni must not send it a second one."""
    import select

    env, dirs = run_env
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [
            *("setsid", "-c", "-w", sys.executable, "-m", "pycni", "run"),
            *("--cache-dir", str(dirs["cache"]), "--net", "front", "--"),
            *(sys.executable, "-c", CHILD),
        ],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    left: dict = {}
    seen = b""

    def wait_for(word: bytes) -> str:
        nonlocal seen
        while word not in seen or b"\n" not in seen[seen.index(word) :]:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, seen
            seen += os.read(master, 4096)
        return seen[seen.index(word) :].split(b"\n", 1)[0].decode().strip()

    with reaped(proc, left):
        try:
            _, left["netns"], pid = wait_for(b"ready ").split()
            left["pids"] = [int(pid)]
            os.write(master, b"\x03")  # ^C: SIGINT to the foreground process group
            assert wait_for(b"got ") == "got 128"  # SI_KERNEL: from the terminal
            os.write(master, b"\n")
            assert wait_for(b"again ") == "again False"
            assert proc.wait(timeout=120) == 0
        finally:
            os.close(master)
        assert not netns_exists(left["netns"])
        assert reservations(dirs["data"], "front") == []


@pytest.mark.kernel  # pycni demo makes its own namespaces
def test_demo_stopped_by_sigterm_leaves_nothing():
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pycni", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tag = ""
    try:
        for line in proc.stdout:
            if "sandbox host netns" in line:  # the sandbox exists, ADDs are next
                tag = line.rsplit("-", 1)[1].strip()
                break
        assert tag, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM
        assert err == "pycni: demo interrupted by SIGTERM\n"
        assert [n for n in os.listdir("/run/netns") if n.endswith(f"-{tag}")] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for name in os.listdir("/run/netns"):
            if tag and name.startswith("pycni-demo-") and name.endswith(f"-{tag}"):
                subprocess.run(["ip", "netns", "delete", name], check=False)
