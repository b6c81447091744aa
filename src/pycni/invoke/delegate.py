"""Delegating to another plugin (normally IPAM) with the reference semantics.

The delegate gets the caller's environment and the same complete config;
only CNI_COMMAND changes. It is looked up in CNI_PATH and run by the
executor given (default: exec'd).
"""

from __future__ import annotations

import os

from pycni.invoke.execute import result_from_output
from pycni.invoke.executor import DEFAULT, Executor
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result


def _run(
    command: str,
    plugin_type: str,
    stdin_data: bytes,
    environ: dict | None,
    executor: Executor | None,
) -> bytes:
    executor = executor or DEFAULT
    env = dict(os.environ if environ is None else environ)
    env["CNI_COMMAND"] = command
    paths = [p for p in env.get("CNI_PATH", "").split(os.pathsep) if p]
    return executor.exec_plugin(executor.find_in_path(plugin_type, paths), stdin_data, env)


def delegate_add(
    plugin_type: str,
    stdin_data: bytes,
    environ: dict | None = None,
    executor: Executor | None = None,
) -> Result:
    """ADD through the delegate, its output read as libcni reads a plugin's.

    A failed ADD is not undone here: the delegate's DEL releases everything
    its (container ID, ifname) owns, so after a refused duplicate ADD it
    would free the live attachment's address. Only when the ADD succeeded
    but its output cannot be read is the DEL sent, since the allocation is
    then this call's own.
    """
    out = _run("ADD", plugin_type, stdin_data, environ, executor)
    try:
        return result_from_output(stdin_data, out)
    except CNIError:
        delegate_del(plugin_type, stdin_data, environ, executor, best_effort=True)
        raise


def delegate_del(
    plugin_type: str,
    stdin_data: bytes,
    environ: dict | None = None,
    executor: Executor | None = None,
    best_effort: bool = False,
) -> None:
    try:
        _run("DEL", plugin_type, stdin_data, environ, executor)
    except CNIError:
        if not best_effort:
            raise


def delegate_check(
    plugin_type: str,
    stdin_data: bytes,
    environ: dict | None = None,
    executor: Executor | None = None,
) -> None:
    _run("CHECK", plugin_type, stdin_data, environ, executor)


def delegate_gc(
    plugin_type: str,
    stdin_data: bytes,
    environ: dict | None = None,
    executor: Executor | None = None,
) -> None:
    _run("GC", plugin_type, stdin_data, environ, executor)


def delegate_status(
    plugin_type: str,
    stdin_data: bytes,
    environ: dict | None = None,
    executor: Executor | None = None,
) -> None:
    _run("STATUS", plugin_type, stdin_data, environ, executor)
