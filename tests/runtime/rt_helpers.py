"""Helpers shared by the runtime and CLI tests (test plugins, config files)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

PLUGIN_SRC = Path(__file__).parent / "plugins" / "testplugin.py"
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


def plugin(
    ptype: str = "testplugin", tag: str | None = None, log: Path | None = None, **extra: object
) -> dict:
    """A test plugin config object."""
    obj: dict = {"type": ptype}
    if tag:
        obj["tag"] = tag
    if log is not None:
        obj["log"] = str(log)
    obj.update(extra)
    return obj


def conflist(name: str, plugins: list[dict], version: str = "1.1.0", **extra: object) -> dict:
    doc: dict = {"cniVersion": version, "name": name, "plugins": plugins}
    doc.update(extra)
    return doc


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cache_files(cache_dir: Path) -> list[str]:
    results = cache_dir / "results"
    if not results.is_dir():
        return []
    return sorted(p.name for p in results.iterdir())


def file_mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)
