"""`pycni`: entry point, global options and the subcommand dispatch table.

    pycni [--cache-dir DIR] [--timeout SECONDS] [-i IFNAME] COMMAND [ARGS...]

`COMMANDS` maps each subcommand to `(module, function, synopsis, help)`; the
module is imported only when its subcommand runs, and the function is called
as `function(argv) -> int` with the arguments after the subcommand name. The
global options given before the subcommand are in `options()`. Subcommands
raise `CNIError` (or `UsageError`); `main` is the single boundary that turns
any exception into one line on stderr and exit status 1 -- never a traceback.
"""

from __future__ import annotations

import os
import sys

# name -> (module, function, arguments synopsis, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "add": (
        "pycni.cli.cnitool",
        "add",
        "NETWORK NETNS",
        "add the container of NETNS to NETWORK, print the result",
    ),
    "check": ("pycni.cli.cnitool", "check", "NETWORK NETNS", "check the container's attachment"),
    "del": ("pycni.cli.cnitool", "delete", "NETWORK NETNS", "remove the container from NETWORK"),
    "gc": (
        "pycni.cli.cnitool",
        "gc",
        "NETWORK NETNS",
        "delete every cached attachment of NETWORK, then GC its plugins",
    ),
    "status": (
        "pycni.cli.cnitool",
        "status",
        "NETWORK NETNS",
        "ask NETWORK's plugins whether they are ready",
    ),
    "version": (
        "pycni.cli.version",
        "main",
        "[PLUGIN] [--json]",
        "spec versions a plugin in CNI_PATH supports (or pycni's own)",
    ),
    "ls": (
        "pycni.cli.ls",
        "main",
        "[DIR] [--validate] [--json]",
        "list the networks of the config dir and whether each is usable",
    ),
    "install": (
        "pycni.cli.install",
        "main",
        "[--cni-bin-dir DIR] [--python PATH] [--check]",
        "install pycni's plugins into a CNI bin dir (or --check what runs them)",
    ),
    "uninstall": (
        "pycni.cli.install",
        "main_uninstall",
        "[--cni-bin-dir DIR]",
        "remove what install put there",
    ),
    "run": (
        "pycni.cli.run",
        "main",
        "[--net NAME]... -- COMMAND",
        "run COMMAND in a new netns attached to networks",
    ),
    "demo": ("pycni.cli.demo", "main", "", "a self-contained demo in a sandbox"),
}

DEFAULT_CACHE_DIR = "/var/lib/cni"


class UsageError(Exception):
    """Wrong command line; printed with a pointer to --help."""


class Options:
    """Global options, shared by every subcommand (see `options()`)."""

    __slots__ = ("cache_dir", "ifname", "prog", "timeout")

    def __init__(self) -> None:
        self.cache_dir = DEFAULT_CACHE_DIR
        self.timeout: float | None = None
        self.ifname = ""
        self.prog = "pycni"


_OPTIONS: Options | None = None


def options() -> Options:
    """The global options of the running command (defaults outside `main`)."""
    return _OPTIONS if _OPTIONS is not None else Options()


def take_option(opts: Options, args: list[str], i: int) -> int:
    """Parse the global option at args[i] into `opts`; return how many items it used
    (0 if args[i] is not a global option). Through `parse_args`, subcommands
    accept global options after their name too."""
    arg = args[i]
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        if name not in ("--cache-dir", "--timeout", "--ifname"):
            return 0
    elif arg.startswith("-i"):
        name, value = "-i", arg[2:]
        eq = "=" if value else ""
        if value.startswith("="):
            value = value[1:]
    else:
        return 0
    used = 1
    if not eq:
        if i + 1 >= len(args):
            raise UsageError(f"flag needs an argument: {name}")
        value = args[i + 1]
        used = 2
    if name == "--cache-dir":
        if not value:
            raise UsageError("--cache-dir needs a directory")
        opts.cache_dir = value
    elif name == "--timeout":
        opts.timeout = parse_timeout(value)
    else:
        opts.ifname = value
    return used


def parse_args(
    args: list[str], flags: tuple[str, ...] = (), dash_dash: bool = False
) -> tuple[Options, list[str], set[str]]:
    """A subcommand's arguments: (global options, positionals, which of the
    boolean `flags` were given). Global options may come anywhere; any other
    flag is a UsageError. With `dash_dash`, everything after "--" is
    positional."""
    opts = options()
    positional: list[str] = []
    given: set[str] = set()
    i = 0
    while i < len(args):
        used = take_option(opts, args, i)
        if used:
            i += used
            continue
        arg = args[i]
        if arg in flags:
            given.add(arg)
        elif dash_dash and arg == "--":
            positional += args[i + 1 :]
            break
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown flag: {arg}")
        else:
            positional.append(arg)
        i += 1
    return opts, positional, given


def cni_path() -> list[str]:
    """The directories of $CNI_PATH ([] when it is unset or empty)."""
    value = os.environ.get("CNI_PATH", "")
    return value.split(os.pathsep) if value else []


def parse_timeout(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"invalid --timeout {value!r}: not a number of seconds")
    if seconds != seconds or seconds < 0:
        raise UsageError(f"invalid --timeout {value!r}")
    return seconds or None


def usage(prog: str = "pycni") -> str:
    width = max(len(n) + len(c[2]) for n, c in COMMANDS.items()) + 1
    lines = [
        f"usage: {prog} [--cache-dir DIR] [--timeout SECONDS] [-i IFNAME] COMMAND [ARGS...]",
        "",
        "Run CNI plugins like cnitool, with the networks of $NETCONFPATH (default",
        "/etc/cni/net.d) and the plugins of $CNI_PATH. CNI_ARGS, CAP_ARGS and CNI_IFNAME",
        "are read as cnitool does.",
        "",
        "commands:",
    ]
    for name, (_mod, _func, synopsis, text) in COMMANDS.items():
        lines.append(f"  {(name + ' ' + synopsis).ljust(width)}  {text}")
    lines += [
        "",
        "options:",
        f"  --cache-dir DIR     result cache directory (default {DEFAULT_CACHE_DIR})",
        "  --timeout SECONDS   kill a plugin that runs longer (default: no limit)",
        "  -i, --ifname NAME   interface name (default $CNI_IFNAME, else eth0)",
        "  -h, --help          show this help",
        "  --version           show pycni's version",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    global _OPTIONS
    args = list(sys.argv[1:] if argv is None else argv)
    opts = _OPTIONS = Options()
    command = ""
    try:
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("-h", "--help"):
                sys.stdout.write(usage(opts.prog))
                return 0
            if arg == "--version":
                from pycni import __version__

                sys.stdout.write(f"pycni {__version__}\n")
                return 0
            used = take_option(opts, args, i)
            if used:
                i += used
                continue
            if arg == "--":
                i += 1
                break
            if arg.startswith("-") and arg != "-":
                raise UsageError(f"unknown flag: {arg}")
            break
        rest = args[i:]
        if not rest:
            sys.stderr.write(usage(opts.prog))
            return 1
        command = rest[0]
        if command == "help":
            sys.stdout.write(usage(opts.prog))
            return 0
        entry = COMMANDS.get(command)
        if entry is None:
            raise UsageError(f'unknown command "{command}"')
        module = __import__(entry[0], fromlist=[entry[1]])
        return int(getattr(module, entry[1])(rest[1:]) or 0)
    except UsageError as err:
        where = f" {command}" if command in COMMANDS else ""
        _fail(f"{opts.prog}{where}: {err} (see '{opts.prog} --help')")
        return 1
    except KeyboardInterrupt:
        _fail(f"{opts.prog}: interrupted")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except BaseException as err:  # the one boundary: no traceback, ever
        if isinstance(err, SystemExit):
            code = err.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        _fail(f"{opts.prog}: {command + ' failed: ' if command else ''}{describe_error(err)}")
        return 1


def describe_error(err: BaseException) -> str:
    """One line: the error text, with " (CNI error N)" for typed CNI errors."""
    from pycni.spec.errors import CNIError

    text = str(err) or err.__class__.__name__
    text = "; ".join(line for line in text.splitlines() if line.strip()) or text
    if isinstance(err, CNIError):
        from pycni.runtime.invoke import UntypedError

        if err.code and not isinstance(err, UntypedError):
            text += f" (CNI error {err.code})"
    elif isinstance(err, OSError) and not isinstance(err, BrokenPipeError):
        text = f"{err.strerror or text}" + (f": {err.filename}" if err.filename else "")
    return text


def _fail(line: str) -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _quiet_stdout()
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _quiet_stdout() -> None:
    """After EPIPE on stdout, point it at /dev/null so the exit flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
