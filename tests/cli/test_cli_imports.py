"""What the `pycni` command imports: only what the verb needs.

`pycni --help` and `pycni version` are answered from the dispatch table and
the spec constants, so their module sets are compared with a short
allow-list: a new import on that path fails here, not on a stopwatch. `pycni
add`, which loads the runtime, must stay clear of the heavy modules (the
runtime process itself; the plugins have their own guard).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.plugin_dirs import install_launchers, own_lib

# Run as an installed `pycni` launcher runs it: -I -S, the package on sys.path.
_PROBE = (
    "import sys; sys.path.insert(0, {lib!r}); before = set(sys.modules); "
    "from pycni.cli.main import main; status = main(sys.argv[1:]); "
    "import posix; posix.write({fd}, repr(sorted(set(sys.modules) - before)).encode()); "
    "raise SystemExit(status)"
)

#: modules `pycni --help` may import beyond the bare interpreter's
HELP_ALLOWED = {
    "__future__",
    "pycni",
    "pycni.cli",
    "pycni.cli.main",
    "pycni.spec",
    "pycni.spec.errors",
}
#: and `pycni version`
VERSION_ALLOWED = HELP_ALLOWED | {"pycni.cli.version", "pycni.spec.version"}
#: never in the runtime process of `pycni add`
HEAVY = {
    "subprocess",
    "json",
    "re",
    "enum",
    "typing",
    "dataclasses",
    "socket",
    "hashlib",
    "threading",
    "ipaddress",
    "argparse",
    "locale",
    "signal",
    "selectors",
}


def imported(*args: str, env: dict | None = None) -> tuple[set[str], subprocess.CompletedProcess]:
    r, w = os.pipe()
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _PROBE.format(lib=own_lib(), fd=w), *args],
            capture_output=True,
            env=env if env is not None else {"PATH": os.environ.get("PATH", "")},
            pass_fds=(w,),
        )
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    assert text, proc.stderr
    return set(ast.literal_eval(text)), proc


def test_help_imports_the_allow_list_only() -> None:
    modules, proc = imported("--help")
    assert proc.returncode == 0 and b"usage: pycni" in proc.stdout
    assert modules <= HELP_ALLOWED, sorted(modules - HELP_ALLOWED)


def test_version_imports_the_allow_list_only() -> None:
    modules, proc = imported("version")
    assert proc.returncode == 0 and b"CNI spec" in proc.stdout
    assert modules <= VERSION_ALLOWED, sorted(modules - VERSION_ALLOWED)


def test_add_runtime_imports_nothing_heavy(tmp_path: Path, container_ns) -> None:
    """A real `pycni add` / `pycni del` of a loopback network, with pycni's
    launchers in CNI_PATH (so the fork server runs them)."""
    bindir = install_launchers(tmp_path / "bin")
    conf = tmp_path / "conf"
    conf.mkdir()
    doc = {"cniVersion": "1.0.0", "name": "pyfs-lo", "plugins": [{"type": "loopback"}]}
    (conf / "lo.conflist").write_text(json.dumps(doc))
    env = {"PATH": os.environ.get("PATH", ""), "NETCONFPATH": str(conf), "CNI_PATH": str(bindir)}
    cache = ["--cache-dir", str(tmp_path / "cache")]
    for verb in ("add", "del"):
        modules, proc = imported(*cache, verb, "pyfs-lo", container_ns.path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert not modules & HEAVY, sorted(modules & HEAVY)
        assert "pycni.plugins.forkserver" in modules
        # the plugin ran in a child: its modules are not the runtime's
        assert "pycni.plugins.main.loopback.verbs" not in modules
        if verb == "add":
            assert json.loads(proc.stdout)["cniVersion"] == "1.0.0"


@pytest.mark.parametrize("args", [("--help",), ("version",)])
def test_probe_sees_imports(args: tuple[str, ...]) -> None:
    """The probe itself works: the command's own module is among what it saw."""
    modules, _proc = imported(*args)
    assert "pycni.cli.main" in modules
