"""The layers of docs/architecture.md, held against the code's imports.

Every import of every module under src/pycni counts, also those inside
functions; only imports under `if TYPE_CHECKING:` (annotations) do not.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.plugins import PLUGINS

SRC = Path(__file__).resolve().parent.parent / "src"

# layer -> the pycni layers it may import (besides itself). `faultpoint`
# (named test steps) and `fsutil` (file-system helpers), which import only
# os, sit below everything; so do `bundle` (the installed copy's importer)
# and `launch` (what a launcher runs), which import only posix and sys.
ALLOWED = {
    "spec": {"faultpoint"},
    "faultpoint": set(),
    "fsutil": set(),
    "bundle": set(),
    "launch": {"bundle"},
    "invoke": {"spec", "faultpoint"},
    "skel": {"spec", "invoke", "faultpoint", "launch"},
    "kernel": {"spec", "faultpoint"},
    "netfilter": {"spec", "kernel", "faultpoint"},
    "runtime": {"spec", "invoke", "faultpoint", "fsutil"},
    "plugins": {
        "spec",
        "invoke",
        "skel",
        "kernel",
        "netfilter",
        "faultpoint",
        "fsutil",
        "bundle",
    },
    "cli": {
        "spec",
        "invoke",
        "skel",
        "kernel",
        "netfilter",
        "runtime",
        "plugins",
        "faultpoint",
        "fsutil",
    },
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path) -> set[str]:
    """The pycni modules `path` imports at run time (resolved relative imports)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("pycni"))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.startswith("pycni"):
                    for alias in child.names:
                        sub = f"{base}.{alias.name}"
                        found.add(sub if _is_module(sub) else base)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted((SRC / "pycni").rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layers_import_downward_only():
    wrong = []
    for module, deps in graph().items():
        own = layer(module)
        if own not in ALLOWED:
            continue
        for dep in deps:
            other = layer(dep)
            if other and other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    """Tarjan's strongly connected components over module imports."""
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            # a package's own __init__ importing its submodules is not a cycle
            if w not in edges or v.startswith(w + "."):
                continue
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            connect(v)
    assert not cycles, cycles


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_version_imports_no_kernel_module(plugin_type):
    """skel answers VERSION before the verbs module, and its netlink, loads."""
    module = PLUGINS[plugin_type]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"from {module} import main; main()"],
        env={**os.environ, "CNI_COMMAND": "VERSION"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"supportedVersions"' in proc.stdout
    loaded = [line.rpartition("|")[2].strip() for line in proc.stderr.splitlines()]
    assert f"{module}.verbs" not in loaded and module in loaded
    heavy = [
        m for m in loaded if m.startswith(("pycni.kernel", "pycni.invoke", "pycni.plugins.pkg"))
    ]
    assert heavy == [], heavy


# What a plugin's verbs must not load just by being imported: each costs
# milliseconds on every exec (contextlib pulls in collections and functools).
HEAVY = (
    "contextlib",
    "importlib",
    "typing",
    "dataclasses",
    "enum",
    "re",
    "json",
    "ipaddress",
    "socket",
    "subprocess",
    "ctypes",
    "hashlib",
)


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_verbs_import_nothing_heavy(plugin_type):
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); import {PLUGINS[plugin_type]}.verbs; "
        f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == []
