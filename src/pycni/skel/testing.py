"""Run a plugin's verbs from a test, the way a runtime would.

Plugins enter namespaces and exit the process, so each verb runs in a child
process with the CNI environment set, exactly like a runtime's exec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


class Outcome:
    """What one plugin execution produced."""

    __slots__ = ("exit_code", "stderr", "stdout")

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def json(self) -> dict | None:
        return json.loads(self.stdout) if self.stdout.strip() else None

    @property
    def error(self) -> dict | None:
        return None if self.ok else self.json

    def __repr__(self) -> str:
        return f"Outcome(exit={self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def plugin_argv(plugin: str) -> list[str]:
    """An executable, a .py script or "package.module"; Python runs on this
    interpreter, so the plugin sees the same installed pycni as the test."""
    if plugin.endswith(".py"):
        return [sys.executable, plugin]
    if os.sep in plugin:
        return [plugin]
    return [sys.executable, "-c", f"from {plugin} import main; main()"]


def run_plugin(
    plugin: str,
    command: str,
    conf: dict | bytes | None = None,
    *,
    netns: str = "",
    container_id: str = "test-container",
    ifname: str = "eth0",
    args: str = "",
    path: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Outcome:
    """Execute `plugin` with CNI_COMMAND=command and `conf` on stdin."""
    environ = dict(os.environ)
    environ.update(
        {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_ARGS": args,
            "CNI_PATH": os.pathsep.join(path or ["/nonexistent"]),
        }
    )
    if env:
        environ.update(env)
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf or {}).encode()
    proc = subprocess.run(
        plugin_argv(plugin), input=stdin, capture_output=True, env=environ, timeout=timeout
    )
    return Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


class PluginRunner:
    """Bind a plugin, a netns and the defaults of one attachment for a test."""

    def __init__(
        self,
        plugin: str,
        *,
        netns: str = "",
        container_id: str = "test-container",
        ifname: str = "eth0",
        path: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.plugin = plugin
        self.defaults = {
            "netns": netns,
            "container_id": container_id,
            "ifname": ifname,
            "path": path,
            "env": env,
        }

    def _run(self, command: str, conf, **overrides) -> Outcome:
        return run_plugin(self.plugin, command, conf, **{**self.defaults, **overrides})

    def add(self, conf, **kw) -> Outcome:
        return self._run("ADD", conf, **kw)

    def delete(self, conf, **kw) -> Outcome:
        return self._run("DEL", conf, **kw)

    def check(self, conf, **kw) -> Outcome:
        return self._run("CHECK", conf, **kw)

    def gc(self, conf, **kw) -> Outcome:
        return self._run("GC", conf, **kw)

    def status(self, conf, **kw) -> Outcome:
        return self._run("STATUS", conf, **kw)

    def version(self, **kw) -> Outcome:
        return self._run("VERSION", {"cniVersion": "1.1.0"}, **kw)
