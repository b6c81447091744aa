"""containerd 1.6 and `ctr run --cni`, private to one test.

containerd runs from a config of the test's own (root, state, gRPC and
ttrpc sockets, the `opt` plugin's dir all in the temp dir; the CRI plugin,
which would run CNI itself, disabled), inside the sandbox host netns and a
private mount namespace (rt_mountns), and is stopped by PID.

`ctr run --cni` builds its go-cni object with WithDefaultConf only (see
cmd/ctr/commands/run/run.go in containerd v1.6.20): the config is the first
file of /etc/cni/net.d, plugins come from /opt/cni/bin, libcni's cache is
/var/lib/cni; no flag or environment variable moves them. So the mount
namespace puts the test's conf dir, plugin dir and cache dir there.

Two limits of ctr that shape the tests:
- `ctr run --cni -d` never runs CNI DEL (only a foreground `ctr run` does,
  when its task exits; `ctr task kill/delete` and `ctr container delete`
  know nothing of CNI), so the tests run ctr in the foreground, in the
  background of the test, and end the container with `ctr task kill`.
- ctr passes no capability arguments (no portMappings), so the portmap
  plugin gets its mappings from a static `runtimeConfig` in the conflist,
  which libcni passes through unchanged to a plugin without capabilities.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from rt_image import OCI_NAME
from rt_mountns import MountNamespace
from rt_plugins import PluginDir
from rt_state import remove_cgroup

IMAGE = OCI_NAME


def missing() -> str | None:
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2", "runc", "nsenter", "unshare"):
        if not shutil.which(tool):
            return f"{tool} not installed (Debian packages containerd, runc: make deps)"
    return None


def config_toml(work: Path) -> str:
    return f"""\
version = 2
root = "{work / "root"}"
state = "{work / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{work / "containerd.sock"}"

[ttrpc]
  address = "{work / "containerd.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{work / "opt"}"
"""


class Containerd:
    """A containerd daemon of the test's own, and ctr against it."""

    def __init__(self, work: Path, plugins: PluginDir, conf_dir: Path, timeout: float = 30) -> None:
        self.work = work
        self.plugins = plugins
        #: what ctr sees as /etc/cni/net.d
        self.conf_dir = conf_dir
        for d in ("root", "state", "opt", "cni"):
            (work / d).mkdir(parents=True, exist_ok=True)
        self.cni_dir = work / "cni"
        self.sock = work / "containerd.sock"
        self.namespace = f"rt-{secrets.token_hex(4)}"
        #: the cgroup every container of this test runs in (removed after)
        self.cgroup = f"rt-ctr-{secrets.token_hex(4)}"
        (work / "config.toml").write_text(config_toml(work))
        self.ns = MountNamespace(
            work / "mnt",
            {
                "/etc/cni/net.d": conf_dir,
                "/opt/cni/bin": plugins.path,
                "/var/lib/cni": self.cni_dir,
            },
        )
        self.runs: list[subprocess.Popen] = []
        self.log = open(work / "containerd.log", "wb")  # noqa: SIM115 (closed in close())
        self.daemon = self.ns.popen(
            ["containerd", "--config", str(work / "config.toml")],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + timeout
        while not self.sock.is_socket():
            if self.daemon.poll() is not None or time.monotonic() > end:
                self.close()
                raise RuntimeError(f"containerd did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def log_text(self) -> str:
        self.log.flush()
        return (self.work / "containerd.log").read_text(errors="replace")[-4000:]

    def ctr_argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", self.namespace, *args]

    def ctr(self, *args: str, timeout: float = 60, check: bool = True):
        return self.ns.run(self.ctr_argv(*args), timeout=timeout, check=check)

    def run_cni(self, name: str, *command: str, image: str = IMAGE) -> subprocess.Popen:
        """`ctr run --cni` in the foreground (so that it runs CNI DEL when the
        task exits), as a background process of the test."""
        argv = self.ctr_argv(
            "run", "--cni", "--null-io", "--rm",
            "--cgroup", f"/{self.cgroup}/{name}",
            image, name, *command,
        )  # fmt: skip
        proc = self.ns.popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.runs.append(proc)
        return proc

    def wait_task(
        self, name: str, run: subprocess.Popen, status: str = "RUNNING", timeout: float = 30
    ) -> int:
        """The PID of task `name` once it has `status` (`ctr run` sets up CNI
        before it starts the task, so RUNNING means networked); fails with
        ctr's output if its `ctr run` process ended first."""
        end = time.monotonic() + timeout
        while True:
            if run.poll() is not None:
                out = run.stdout.read() if run.stdout else ""
                raise AssertionError(f"ctr run {name} exited {run.returncode}:\n{out}")
            for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
                fields = line.split()
                if fields[:1] == [name] and fields[2:3] == [status]:
                    return int(fields[1])
            if time.monotonic() > end:
                raise AssertionError(f"task {name} not {status}:\n{self.log_text()}")
            time.sleep(0.1)

    def stop(self, name: str, proc: subprocess.Popen, timeout: float = 30) -> str:
        """`ctr task kill -s KILL`, then wait for the foreground `ctr run` to
        run CNI DEL and delete task and container; its output."""
        self.ctr("task", "kill", "--signal", "SIGKILL", name)
        out, _ = proc.communicate(timeout=timeout)
        return out

    def close(self) -> None:
        """Stop every `ctr run`, task and container, containerd (by PID),
        then kill what is left in the test's cgroup and end the namespace."""
        try:
            if self.daemon.poll() is None:
                tasks = self.ctr("task", "ls", "--quiet", check=False).stdout.split()
                for task in tasks:
                    self.ctr("task", "kill", "--signal", "SIGKILL", task, check=False)
            for proc in self.runs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.communicate(timeout=20)
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            if self.daemon.poll() is None:
                for task in self.ctr("task", "ls", "--quiet", check=False).stdout.split():
                    self.ctr("task", "delete", "--force", task, check=False)
                for c in self.ctr("container", "ls", "--quiet", check=False).stdout.split():
                    self.ctr("container", "delete", c, check=False)
        finally:
            self._stop_daemon()
            remove_cgroup(self.cgroup)
            self.ns.close()
            self.log.close()

    def _shim_pids(self) -> list[int]:
        pids = []
        task_dir = self.work / "state" / "io.containerd.runtime.v2.task"
        for pidfile in task_dir.glob("*/*/shim.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().strip()))
        return pids

    def _stop_daemon(self) -> None:
        shims = self._shim_pids()
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        for pid in shims:
            with contextlib.suppress(OSError):
                # a stale pid file must not make us kill someone else's process
                if Path(f"/proc/{pid}/comm").read_text().startswith("containerd-shim"):
                    os.kill(pid, signal.SIGKILL)
