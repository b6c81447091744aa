"""Plugin dirs (CNI_PATH) for tests: the scriptable test plugin under its
type names, and launchers of pycni's own plugins on this interpreter."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

PLUGIN_SRC = Path(__file__).parent / "testplugin.py"
#: the type names the test plugin is installed under
PLUGIN_TYPES = ("testplugin", "testplugin2", "testplugin3")


def install_plugin(bin_dir: Path, name: str, source: Path = PLUGIN_SRC) -> Path:
    """Copy a test plugin script to bin_dir/name, run by this interpreter."""
    lines = source.read_text().splitlines(keepends=True)
    assert lines[0].startswith("#!")
    lines[0] = f"#!{sys.executable}\n"
    path = bin_dir / name
    path.write_text("".join(lines))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def install_plugins(bin_dir: Path) -> Path:
    for name in PLUGIN_TYPES:
        install_plugin(bin_dir, name)
    return bin_dir


def write_launcher(path: Path, module: str) -> Path:
    """An executable `path` running `module`'s main() on this interpreter
    (a plain script, not a pycni launcher: never delegated to in-process)."""
    path.write_text(f"#!{sys.executable}\nfrom {module} import main\nmain()\n")
    path.chmod(0o755)
    return path


def own_lib() -> str:
    """The directory pycni is imported from (the one holding `pycni/`)."""
    import pycni

    return str(Path(pycni.__file__).resolve().parent.parent)


def install_launchers(bindir: Path) -> Path:
    """Launchers of this checkout's plugins on this interpreter, so bridge
    runs host-local in-process (pycni.plugins.launcher.in_process_module)."""
    from pycni.plugins import PLUGINS
    from pycni.plugins.launcher import render

    bindir.mkdir(parents=True, exist_ok=True)
    for plugin_type, module in PLUGINS.items():
        path = bindir / plugin_type
        path.write_text(render(sys.executable, plugin_type, module, own_lib()))
        path.chmod(0o755)
    return bindir
