"""`pycni install` / `pycni uninstall`: put pycni's plugins into a CNI bin dir.

Form chosen by measured start-up (docs/performance.md): one small launcher
script per plugin type, run by the host's real python3 with `-I -S` (no site
import, no user paths), importing a private copy of the package with
precompiled bytecode from `<bin dir>/.pycni/`. A zipapp was slower: zipimport
reads and decompresses on every exec.

Only what install wrote is ever removed: launchers carry a marker line and
are listed in `.pycni/MANIFEST`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pycni.plugins import PLUGINS
from pycni.plugins.launcher import MARKER, render
from pycni.spec.errors import CNIError

LIB_DIR = ".pycni"
MANIFEST = "MANIFEST"


def host_python() -> str:
    """The real interpreter behind this one (not a venv link or a pyenv shim)."""
    base = getattr(sys, "_base_executable", "") or sys.executable
    return os.path.realpath(base)


def install(bin_dir: str | Path, python: str | None = None, force: bool = False) -> list[str]:
    """Install every plugin into bin_dir; return the plugin types written."""
    bin_dir = Path(bin_dir).resolve()
    python = python or host_python()
    if not os.access(python, os.X_OK):
        raise CNIError(7, f"python interpreter {python} is not executable")
    bin_dir.mkdir(parents=True, exist_ok=True)
    clashes = [t for t in PLUGINS if (bin_dir / t).exists() and not _is_ours(bin_dir / t)]
    if clashes and not force:
        raise CNIError(
            7,
            f"{bin_dir} already has plugins not installed by pycni: "
            f"{', '.join(sorted(clashes))} (use --force to replace them)",
        )
    lib = bin_dir / LIB_DIR
    staging = bin_dir / (LIB_DIR + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    _copy_package(staging / "pycni")
    _compile(python, staging)
    (staging / MANIFEST).write_text("".join(f"{t}\n" for t in PLUGINS))
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    for plugin_type, module in PLUGINS.items():
        _write_launcher(bin_dir / plugin_type, python, plugin_type, module, lib)
    return list(PLUGINS)


def uninstall(bin_dir: str | Path) -> list[str]:
    """Remove exactly what install put into bin_dir; return the types removed."""
    bin_dir = Path(bin_dir).resolve()
    lib = bin_dir / LIB_DIR
    manifest = lib / MANIFEST
    if not manifest.exists():
        return []
    removed = []
    for plugin_type in manifest.read_text().split():
        path = bin_dir / plugin_type
        if "/" not in plugin_type and path.is_file() and _is_ours(path):
            path.unlink()
            removed.append(plugin_type)
    shutil.rmtree(lib)
    return removed


def _is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return MARKER.encode() in head


def _copy_package(dest: Path) -> None:
    source = Path(__file__).resolve().parent.parent
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _compile(python: str, lib: Path) -> None:
    """Byte-compile with the interpreter that will run the plugins."""
    import subprocess

    proc = subprocess.run(
        [python, "-I", "-m", "compileall", "-q", str(lib)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        shutil.rmtree(lib, ignore_errors=True)
        raise CNIError(
            999, f"byte-compiling pycni with {python} failed: {(proc.stdout + proc.stderr).strip()}"
        )


def _write_launcher(path: Path, python: str, plugin_type: str, module: str, lib: Path) -> None:
    tmp = path.with_name(f".{path.name}.pycni-tmp")
    tmp.write_text(render(python, plugin_type, module, str(lib)))
    tmp.chmod(0o755)
    tmp.replace(path)  # atomic: a runtime never execs a half-written file


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="pycni install", description="Install pycni plugins into a CNI bin dir."
    )
    parser.add_argument("--cni-bin-dir", default="/opt/cni/bin")
    parser.add_argument(
        "--python",
        default=None,
        help="interpreter the plugins run on (default: the host's real python3)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace plugins of the same name that pycni did not install",
    )
    opts = parser.parse_args(argv)
    for plugin_type in install(opts.cni_bin_dir, opts.python, opts.force):
        print(f"installed {plugin_type} -> {Path(opts.cni_bin_dir).resolve() / plugin_type}")
    return 0


def main_uninstall(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="pycni uninstall", description="Remove what `pycni install` put into a dir."
    )
    parser.add_argument("--cni-bin-dir", default="/opt/cni/bin")
    opts = parser.parse_args(argv)
    removed = uninstall(opts.cni_bin_dir)
    for plugin_type in removed:
        print(f"removed {plugin_type}")
    if not removed:
        print(f"nothing installed by pycni in {opts.cni_bin_dir}")
    return 0
