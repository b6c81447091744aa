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
    return invoke.exec_plugin(plugin, stdin_data, env)


def delegate_add(plugin_type: str, stdin_data: bytes, environ: dict | None = None) -> Result:
    """ADD through the delegate; if it fails, DEL it so it holds nothing."""
    import json

    from pycni.spec.result import Result

    try:
        out = _run("ADD", plugin_type, stdin_data, environ)
        raw = json.loads(out or b"{}") or {}
        if not raw.get("cniVersion"):  # libcni's fixupResultVersion
            raw["cniVersion"] = json.loads(stdin_data).get("cniVersion") or "0.1.0"
        result = Result.from_dict(raw)
    except (ValueError, AttributeError, CNIError) as err:
        delegate_del(plugin_type, stdin_data, environ, best_effort=True)
        if isinstance(err, CNIError):
            raise
        raise CNIError(6, f"failed to unmarshal result of {plugin_type}: {err}")
    return result


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
