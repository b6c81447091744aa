"""`pycni install` / `pycni uninstall`: put pycni's plugins into a CNI bin dir.

Form chosen by measured start-up (docs/performance.md): one small launcher
script per plugin type, run by the host's real python3 with `-I -S` (no site
import, no user paths), importing a private copy of the package from
`<bin dir>/.pycni/`: its modules compiled into one bundle file
(`pycni.bundle`), and as bytecode beside the sources. The launcher answers
VERSION itself (`pycni.launch`). A zipapp was slower: zipimport reads and
decompresses on every exec.

Only what install wrote is ever removed: launchers carry a marker line and
are listed in `.pycni/MANIFEST`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pycni.plugins import PLUGINS
from pycni.plugins.launcher import (
    COMMAND,
    LIB_DIR,
    MANIFEST,
    MARKER,
    render,
    render_command,
)
from pycni.spec.errors import CNIError

# The CPython versions pycni runs on (inclusive), and where an OS keeps the
# python3 it maintains: the distribution's own, which its updates keep working.
SUPPORTED = ((3, 9), (3, 13))
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/libexec/platform-python", "/bin/python3")

# Asked of a candidate interpreter with flags and code that any Python, 2.7
# included, understands, so that an unsupported one is named, not crashed on.
_PROBE = (
    "import os, sys; "
    "sys.stdout.write('%d.%d.%d\\n' % tuple(sys.version_info[:3])); "
    "sys.stdout.write(os.path.realpath(getattr(sys, '_base_executable', None) or sys.executable))"
)


class Interpreter:
    """A python3 resolved to the binary that really runs (no shim, no venv link)."""

    __slots__ = ("path", "version")

    def __init__(self, path: str, version: tuple[int, int, int]) -> None:
        self.path = path
        self.version = version

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def supported(self) -> bool:
        return SUPPORTED[0] <= self.version[:2] <= SUPPORTED[1]


def supported_range() -> str:
    (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED
    return f"{lo_major}.{lo_minor} to {hi_major}.{hi_minor}"


def system_python() -> str:
    """The python3 the OS maintains, else the real binary behind this process."""
    for candidate in SYSTEM_PYTHONS:
        if os.access(candidate, os.X_OK):
            return candidate
    return getattr(sys, "_base_executable", "") or sys.executable


def probe(python: str) -> Interpreter:
    """Run `python` once to learn its version and the real binary behind it.

    A pyenv shim or a venv's link is resolved by the interpreter itself, so
    launchers name the binary that runs and pay no shell start-up per exec.
    """
    import subprocess

    if not os.access(python, os.X_OK) or os.path.isdir(python):
        raise CNIError(7, f"python interpreter {python} is not an executable file")
    try:
        proc = subprocess.run(
            [python, "-E", "-s", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CNIError(7, f"python interpreter {python} could not be run: {err}")
    lines = proc.stdout.splitlines()
    try:
        version = tuple(int(part) for part in lines[0].split("."))
        real = lines[1]
    except (IndexError, ValueError):
        detail = (proc.stderr.strip().splitlines() or ["no output"])[0].strip()
        raise CNIError(7, f"{python} does not look like a Python interpreter: {detail}")
    if proc.returncode != 0 or len(version) != 3 or not os.path.isabs(real):
        raise CNIError(7, f"{python} does not look like a Python interpreter")
    return Interpreter(real, version)


def choose_python(python: str | None = None) -> Interpreter:
    """The interpreter launchers will name: `python` or the system's, in range."""
    interp = probe(python or system_python())
    if not interp.supported():
        raise CNIError(
            7,
            f"{python or 'the system python3'} is Python {interp.version_text} "
            f"({interp.path}); pycni's plugins need Python {supported_range()} "
            "(choose one with --python PATH)",
        )
    return interp


def install(bin_dir: str | Path, python: str | None = None, force: bool = False) -> list[str]:
    """Install every plugin into bin_dir; return the plugin types written.

    Nothing is written unless the interpreter is in the supported range.
    """
    bin_dir = Path(bin_dir).resolve()
    python = choose_python(python).path
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
    _bundle(python, lib)
    for plugin_type, module in PLUGINS.items():
        _write_launcher(bin_dir / plugin_type, python, plugin_type, module, lib)
    (lib / COMMAND).parent.mkdir()
    _write_executable(lib / COMMAND, render_command(python, str(lib)))
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


def bare_startup_ms(python: str, runs: int = 21) -> float:
    """Median wall time of `python -I -S -c pass`: the floor every plugin exec pays."""
    import time

    samples = []
    with open(os.devnull, "rb") as null:
        fds = [null.fileno()] * 3
        for _ in range(runs):
            start = time.perf_counter()
            pid = os.posix_spawn(
                python,
                [python, "-I", "-S", "-c", "pass"],
                {},
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)],
            )
            os.waitpid(pid, 0)
            samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2] * 1000


def check(bin_dir: str | Path) -> tuple[bool, list[str]]:
    """What runs the plugins installed in bin_dir: (all usable, report lines)."""
    from pycni.plugins.launcher import parse

    bin_dir = Path(bin_dir).resolve()
    manifest = bin_dir / LIB_DIR / MANIFEST
    if not manifest.is_file():
        return False, [f"no pycni installation in {bin_dir} (run `pycni install` first)"]
    by_python: dict[str, list[str]] = {}
    broken = []
    for plugin_type in manifest.read_text().split():
        try:
            with open(bin_dir / plugin_type, "rb") as f:
                parsed = parse(f.read(1024))
        except OSError:
            parsed = None
        if parsed is None:
            broken.append(plugin_type)
        else:
            by_python.setdefault(parsed[0], []).append(plugin_type)
    ok = not broken
    lines = [f"missing or altered launchers: {', '.join(broken)}"] if broken else []
    for python, types in sorted(by_python.items()):
        lines.append(f"plugins {', '.join(types)} run on {python}")
        try:
            interp = probe(python)
        except CNIError as err:
            ok = False
            lines.append(f"  unusable: {err.msg}")
            continue
        verdict = "supported" if interp.supported() else f"NOT in {supported_range()}"
        ok = ok and interp.supported()
        lines.append(f"  Python {interp.version_text} ({verdict})")
        lines.append(
            f"  bare start-up (python -I -S -c pass): {bare_startup_ms(python):.1f} ms median"
        )
    return ok, lines


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


def _bundle(python: str, lib: Path) -> None:
    """Write the bundle of compiled modules (`pycni.bundle`) with the
    interpreter that will run the plugins, from the copy at its final path
    so that tracebacks name the installed sources."""
    import subprocess

    code = (
        f"import sys; sys.path.insert(0, {str(lib)!r}); "
        f"from pycni import bundle; bundle.build({str(lib)!r})"
    )
    proc = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(lib, ignore_errors=True)
        raise CNIError(
            999, f"bundling pycni with {python} failed: {(proc.stdout + proc.stderr).strip()}"
        )


def _write_launcher(path: Path, python: str, plugin_type: str, module: str, lib: Path) -> None:
    _write_executable(path, render(python, plugin_type, module, str(lib)))


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.pycni-tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(path)  # atomic: a runtime never execs a half-written file


def main(argv: list[str]) -> int:
    from pycni.cli.main import DEFAULT_BIN_DIR, argument_parser, check_dir, out, printable

    parser = argument_parser("install", "Install pycni plugins into a CNI bin dir.")
    parser.add_argument(
        "--cni-bin-dir",
        default=DEFAULT_BIN_DIR,
        help=f"where to install (default {DEFAULT_BIN_DIR}, used when CNI_PATH is unset)",
    )
    parser.add_argument(
        "--python",
        default=None,
        help=(
            f"interpreter the plugins run on, Python {supported_range()} "
            "(default: the system's python3, resolved to its real path)"
        ),
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="report the interpreter the installed plugins use and its start-up; install nothing",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace plugins of the same name that pycni did not install",
    )
    opts = parser.parse_args(argv)
    check_dir("CNI bin dir", opts.cni_bin_dir)
    if opts.check:
        ok, lines = check(opts.cni_bin_dir)
        out("".join(printable(line) + "\n" for line in lines))
        return 0 if ok else 1
    bin_dir = Path(opts.cni_bin_dir).resolve()
    for plugin_type in install(bin_dir, opts.python, opts.force):
        out(printable(f"installed {plugin_type} -> {bin_dir / plugin_type}") + "\n")
    command = bin_dir / LIB_DIR / COMMAND
    out(
        printable(
            f"pycni command of this installation: {command} (put it on PATH: "
            "its runtime runs these plugins as forks, not new interpreters)"
        )
        + "\n"
    )
    return 0


def main_uninstall(argv: list[str]) -> int:
    from pycni.cli.main import DEFAULT_BIN_DIR, argument_parser, check_dir, out, printable

    parser = argument_parser("uninstall", "Remove what `pycni install` put into a dir.")
    parser.add_argument("--cni-bin-dir", default=DEFAULT_BIN_DIR)
    opts = parser.parse_args(argv)
    check_dir("CNI bin dir", opts.cni_bin_dir)
    removed = uninstall(opts.cni_bin_dir)
    for plugin_type in removed:
        out(printable(f"removed {plugin_type}") + "\n")
    if not removed:
        out(printable(f"nothing installed by pycni in {opts.cni_bin_dir}") + "\n")
    return 0
