"""The CNI plugin dir a runtime test hands to podman or containerd.

`pycni`: a launcher of every plugin pycni ships (pycni.plugins.PLUGINS,
installed by `pycni install`'s own code), and for each type the runtime
needs that pycni does not ship yet, a symlink to the Go reference plugin in
/usr/lib/cni as a stand-in. `go`: every needed type from /usr/lib/cni, the
control run that tells a pycni failure from a harness or kernel problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

GO_PLUGIN_DIR = Path("/usr/lib/cni")
PLUGIN_SETS = ("pycni", "go")


class PluginDir:
    """A plugin dir and where each needed type comes from."""

    def __init__(self, path: Path, pycni: Iterable[str], go: Iterable[str]) -> None:
        self.path = path
        self.pycni = tuple(sorted(pycni))
        self.go = tuple(sorted(go))

    def source(self, plugin_type: str) -> str:
        """Who runs plugin_type in this dir: "pycni" or "go"."""
        return "pycni" if plugin_type in self.pycni else "go"

    def describe(self) -> str:
        return f"pycni: {', '.join(self.pycni) or '-'}; Go stand-ins: {', '.join(self.go) or '-'}"


def missing_go(types: Iterable[str]) -> list[str]:
    return [t for t in types if not os.access(GO_PLUGIN_DIR / t, os.X_OK)]


def make_plugin_dir(dest: Path, plugin_set: str, types: Iterable[str]) -> PluginDir:
    """Fill dest for plugin_set ("pycni" or "go") so that every type in
    `types` is there; the caller skips first if missing_go() names any."""
    from pycni.plugins import PLUGINS

    dest.mkdir(parents=True, exist_ok=True)
    needed = set(types)
    ours: set[str] = set()
    if plugin_set == "pycni":
        from pycni.cli.install import install

        install(dest, os.environ.get("PYCNI_TEST_PYTHON") or None)
        ours = set(PLUGINS) & needed
    elif plugin_set != "go":
        raise ValueError(plugin_set)
    stand_ins = needed - ours
    for name in stand_ins:
        (dest / name).symlink_to(GO_PLUGIN_DIR / name)
    return PluginDir(dest, ours, stand_ins)
