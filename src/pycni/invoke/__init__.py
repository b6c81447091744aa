"""Finding, running and delegating to plugins (Go's pkg/invoke).

Used by the runtime (`pycni.runtime`) and by plugins that delegate (through
`pycni.invoke.delegate`); it depends on `pycni.spec` only. Its modules
import nothing heavy at the top: a delegating plugin pays for what it uses.

- `execute`: find_in_path, plugin_env, exec_plugin (posix_spawn, pipes, poll,
  timeout), result decoding (fixupResultVersion), get_version_info;
- `errors`: UntypedError, PluginTimeoutError, wrap_error, a failed plugin's
  error output decoded;
- `executor`: `Executor`, the replaceable "find and run" object;
- `delegate`: delegate_add/del/check/gc/status through an executor.
"""

from __future__ import annotations

from pycni.invoke.errors import (
    PluginTimeoutError,
    UntypedError,
    go_quote,
    plugin_error,
    wrap_error,
)
from pycni.invoke.execute import (
    config_version,
    exec_plugin,
    exec_plugin_with_result,
    find_in_path,
    fixup_result_version,
    get_version_info,
    plugin_env,
    result_from_output,
)
from pycni.invoke.executor import DEFAULT, Executor

__all__ = [
    "DEFAULT",
    "Executor",
    "PluginTimeoutError",
    "UntypedError",
    "config_version",
    "exec_plugin",
    "exec_plugin_with_result",
    "find_in_path",
    "fixup_result_version",
    "get_version_info",
    "go_quote",
    "plugin_env",
    "plugin_error",
    "result_from_output",
    "wrap_error",
]
