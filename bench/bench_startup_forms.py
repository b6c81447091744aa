#!/usr/bin/env python3
"""Which installed form starts faster: small launchers or one zipapp?

Builds both forms of pycni's plugins in a temp dir, runs each plugin's VERSION
repeatedly on the host's real python3 with -I -S, and prints the medians.
This is the measurement behind `pycni install` writing launchers.

Usage: .venv/bin/python bench/bench_startup_forms.py [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from pycni.cli.install import LIB_DIR, install, system_python
from pycni.plugins import PLUGINS

DISPATCH = """import os, sys
PLUGINS = {plugins!r}
name = os.path.basename(sys.argv[0])
module = __import__(PLUGINS[name], fromlist=["main"])
module.main()
"""


def build_zipapp(lib: Path, out_dir: Path, python: str) -> Path:
    """One zipapp (with bytecode) plus a symlink per plugin type."""
    archive = out_dir / "pycni.pyz"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((lib / "pycni").rglob("*.py")):
            rel = path.relative_to(lib)
            zf.write(path, rel)
            cached = path.parent / "__pycache__"
            for pyc in cached.glob(f"{path.stem}.*.pyc"):
                zf.write(pyc, rel.with_suffix(".pyc"))
        zf.writestr("__main__.py", DISPATCH.format(plugins=PLUGINS))
    exe = out_dir / "pycni-zipapp"
    exe.write_bytes(f"#!{python} -IS\n".encode() + archive.read_bytes())
    exe.chmod(0o755)
    for plugin_type in PLUGINS:
        (out_dir / plugin_type).symlink_to(exe.name)
    return out_dir


def median_ms(exe: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [str(exe)],
            env={"CNI_COMMAND": "VERSION"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    opts = parser.parse_args()
    python = system_python()
    with tempfile.TemporaryDirectory() as tmp:
        launchers = Path(tmp) / "launchers"
        install(launchers, python)
        zipped = build_zipapp(launchers / LIB_DIR, Path(tmp), python)
        print(f"VERSION start-up, median of {opts.runs} (ms), python {python}")
        print(f"{'plugin':<12}{'launcher':>10}{'zipapp':>10}")
        for plugin_type in PLUGINS:
            a = median_ms(launchers / plugin_type, opts.runs)
            b = median_ms(zipped / plugin_type, opts.runs)
            print(f"{plugin_type:<12}{a:>10.1f}{b:>10.1f}")
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    raise SystemExit(main())
