"""How a plugin is found and run, as one replaceable object (Go's invoke.Exec).

The runtime and delegating plugins never exec a plugin directly: they ask an
executor. `Executor` finds plugins in CNI_PATH and execs them; a subclass can
run some plugins another way (pycni's plugins run pycni's own delegates
in-process, see `pycni.plugins.launcher`), and tests can record calls.
"""

from __future__ import annotations

from pycni.invoke import execute


class Executor:
    """Finds plugins in a path list and runs each as a process."""

    def find_in_path(self, plugin: str, paths: list[str] | tuple[str, ...]) -> str:
        """The plugin's executable (libcni's FindInPath); raises UntypedError."""
        return execute.find_in_path(plugin, paths)

    def exec_plugin(
        self,
        path: str,
        stdin: bytes,
        env: dict | None = None,
        timeout: float | None = None,
        stderr=None,
    ) -> bytes:
        """Run the plugin at `path`, return its stdout; raises CNIError."""
        return execute.exec_plugin(path, stdin, env, timeout, stderr)


DEFAULT = Executor()
