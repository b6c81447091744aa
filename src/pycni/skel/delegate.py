"""Run a delegated plugin (normally IPAM) with the reference semantics.

The delegate gets the same environment and the same complete config as the
calling plugin; only CNI_COMMAND changes. It is looked up in CNI_PATH.
"""

from __future__ import annotations

import os

from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result


def _run(command: str, plugin_type: str, stdin_data: bytes, environ: dict | None = None) -> bytes:
    from pycni.runtime import invoke

    env = dict(os.environ if environ is None else environ)
    env["CNI_COMMAND"] = command
    paths = [p for p in env.get("CNI_PATH", "").split(os.pathsep) if p]
    plugin = invoke.find_in_path(plugin_type, paths)
    from pycni.plugins.launcher import in_process_module

    module = in_process_module(plugin)
    if module is not None:
        return _run_in_process(module, stdin_data, env)
    return invoke.exec_plugin(plugin, stdin_data, env)


def _run_in_process(module: str, stdin_data: bytes, env: dict) -> bytes:
    """Run a pycni plugin of this installation as its exec would, minus the exec.

    It gets the same environment, stdin and skel boundary, and its output is
    judged exactly as a child process's output would be.
    """
    import io
    import sys

    from pycni.runtime import invoke
    from pycni.skel import run

    handlers = __import__(module, fromlist=["HANDLERS"]).HANDLERS
    out = io.StringIO()
    code = run(env, io.BytesIO(stdin_data), out, sys.stderr, **handlers)
    data = out.getvalue().encode()
    if code != 0:
        raise invoke.plugin_error(f"exit status {code}", data, b"")
    return data


def delegate_add(plugin_type: str, stdin_data: bytes, environ: dict | None = None) -> Result:
    """ADD through the delegate, its output read as libcni reads a plugin's
    (fixupResultVersion, then the result of that version).

    A failed ADD is not undone here: the delegate's DEL releases everything
    its (container ID, ifname) owns, so after a refused duplicate ADD it
    would free the live attachment's address. Only when the ADD succeeded
    but its output cannot be read is the DEL sent, since the allocation is
    then this call's own.
    """
    from pycni.runtime import invoke
    from pycni.spec.result import Result

    out = _run("ADD", plugin_type, stdin_data, environ)
    try:
        version, raw = invoke.fixup_result_version(stdin_data, out)
        return Result.from_dict(raw, version)
    except CNIError:
        delegate_del(plugin_type, stdin_data, environ, best_effort=True)
        raise


def delegate_del(
    plugin_type: str, stdin_data: bytes, environ: dict | None = None, best_effort: bool = False
) -> None:
    try:
        _run("DEL", plugin_type, stdin_data, environ)
    except CNIError:
        if not best_effort:
            raise


def delegate_check(plugin_type: str, stdin_data: bytes, environ: dict | None = None) -> None:
    _run("CHECK", plugin_type, stdin_data, environ)


def delegate_gc(plugin_type: str, stdin_data: bytes, environ: dict | None = None) -> None:
    _run("GC", plugin_type, stdin_data, environ)


def delegate_status(plugin_type: str, stdin_data: bytes, environ: dict | None = None) -> None:
    _run("STATUS", plugin_type, stdin_data, environ)
