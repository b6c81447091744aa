"""The launcher scripts `pycni install` writes, recognising them again, and
the executor that runs pycni's own delegates in-process.

A launcher runs one plugin package of a private pycni copy on the host's
real python3. When a pycni plugin delegates to another pycni plugin (bridge
to host-local) and CNI_PATH resolves to a launcher of this very
installation, the delegate can run in-process (`EXECUTOR`): the same code
on the same interpreter, but without a second interpreter start-up on every
container ADD. Anything else is exec'd.
"""

from __future__ import annotations

import io
import os
import sys

from pycni.invoke import Executor, plugin_error
from pycni.plugins import PLUGINS

MARKER = "# pycni launcher"
# An installation: <bin dir>/<type> launchers, <bin dir>/.pycni/ the package
# copy, and .pycni/MANIFEST the launchers written.
LIB_DIR = ".pycni"
MANIFEST = "MANIFEST"

TEMPLATE = """#!{python} -IS
{marker}: {type} (written by `pycni install`, removed by `pycni uninstall`)
import sys
sys.path.insert(0, {lib!r})
from pycni.launch import run
run({module!r}, {version!r})
"""
_RUN = "run('"
# The installation's `pycni` command, <bin dir>/.pycni/bin/pycni.
COMMAND = "bin/pycni"
COMMAND_TEMPLATE = """#!{python} -IS
{marker}: the pycni command (written by `pycni install`, removed by `pycni uninstall`)
import sys
sys.path.insert(0, {lib!r})
from pycni.launch import activate_bundle, exit_without_finalizing
activate_bundle()
from pycni.cli.main import main
exit_without_finalizing(main())
"""


def render(
    python: str, plugin_type: str, module: str, lib: str, version_answer: bytes | None = None
) -> str:
    """The launcher text; `version_answer` is the plugin's VERSION output,
    by default computed from the plugin's declaration."""
    if version_answer is None:
        from pycni.spec.version import version_info_json

        plugin = __import__(module, fromlist=["PLUGIN"]).PLUGIN
        version_answer = version_info_json(plugin.supported).encode()
    return TEMPLATE.format(
        python=python,
        marker=MARKER,
        type=plugin_type,
        lib=lib,
        module=module,
        version=version_answer,
    )


def render_command(python: str, lib: str) -> str:
    return COMMAND_TEMPLATE.format(python=python, marker=MARKER, lib=lib)


def parse(head: bytes) -> tuple[str, str, str] | None:
    """(python, lib dir, module) of a launcher's text, None if it is not one."""
    lines = head.decode("utf-8", "replace").split("\n")
    if len(lines) < 7 or not lines[1].startswith(MARKER):
        return None
    shebang, insert, import_line, run_line = lines[0], lines[3], lines[4], lines[5]
    if not (shebang.startswith("#!") and shebang.endswith(" -IS")):
        return None
    prefix, suffix = "sys.path.insert(0, '", "')"
    if not (insert.startswith(prefix) and insert.endswith(suffix)):
        return None
    lib = insert[len(prefix) : -len(suffix)]
    if "'" in lib or "\\" in lib:  # repr escaped something: not ours to guess
        return None
    if import_line != "from pycni.launch import run" or not run_line.startswith(_RUN):
        return None
    module = run_line[len(_RUN) :].partition("'")[0]
    if not module or not module.replace(".", "").replace("_", "").isalnum():
        return None
    return shebang[2:-4], lib, module


def in_process_module(path: str) -> str | None:
    """The plugin module to run in-process for the executable at `path`, if it
    is a launcher of this installation on this interpreter; else None."""
    try:
        with open(path, "rb") as f:
            parsed = parse(f.read(1024))
    except OSError:
        return None
    if parsed is None:
        return None
    python, lib, module = parsed
    own_lib = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    own_lib = os.path.dirname(own_lib)
    if module not in PLUGINS.values():
        return None
    if os.path.realpath(lib) != os.path.realpath(own_lib):
        return None
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return None
    return module


class LauncherExecutor(Executor):
    """Runs a launcher of this installation in-process, execs anything else."""

    def exec_plugin(
        self,
        path: str,
        stdin: bytes,
        env: dict | None = None,
        timeout: float | None = None,
        stderr=None,
    ) -> bytes:
        module = in_process_module(path)
        if module is None:
            return super().exec_plugin(path, stdin, env, timeout, stderr)
        return run_in_process(module, stdin, dict(os.environ) if env is None else env)


def run_in_process(module: str, stdin: bytes, env: dict) -> bytes:
    """Run a pycni plugin as its exec would, minus the exec: the same
    environment, stdin and skel boundary, its output judged exactly as a
    child process's output would be."""
    from pycni.skel import run

    out = io.StringIO()
    code = run(
        env, io.BytesIO(stdin), out, sys.stderr, __import__(module, fromlist=["PLUGIN"]).PLUGIN
    )
    data = out.getvalue().encode()
    if code != 0:
        raise plugin_error(f"exit status {code}", data, b"")
    return data


EXECUTOR = LauncherExecutor()
