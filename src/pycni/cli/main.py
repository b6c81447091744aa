"""`pycni`: entry point, global options and the subcommand dispatch table.

    pycni [--cache-dir DIR] [--timeout SECONDS] [-i IFNAME] COMMAND [ARGS...]

`COMMANDS` maps each subcommand to `(module, function, synopsis, help)`; the
module is imported only when its subcommand runs, and the function is called
as `function(argv) -> int` with the arguments after the subcommand name. The
global options given before the subcommand are in `options()`; `parse_args`
takes them (and `-h/--help`) anywhere among a subcommand's own arguments.

Subcommands raise `CNIError` (`Failure` for the command line's own errors),
`UsageError` or `ShowHelp`, and print through `out()`. `main` is the single
boundary that turns any exception into one line on stderr -- never a
traceback -- with non-printable characters escaped (`printable`). Exit
status: 0 ok, 1 failure, 2 usage error (as argparse), 128+N interrupted by
signal N.
"""

from __future__ import annotations

import sys

from pycni.spec.errors import ERR_INTERNAL, CNIError

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
        "NETWORK",
        "network-wide: DEL every cached attachment of NETWORK, then GC its plugins",
    ),
    "status": (
        "pycni.cli.cnitool",
        "status",
        "NETWORK",
        "network-wide: ask NETWORK's plugins whether they are ready",
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
        "[--net NAME]... [--] COMMAND [ARG...]",
        "run COMMAND in a new netns attached to networks",
    ),
    "ipam": (
        "pycni.cli.ipam",
        "main",
        "SUBCOMMAND [--database PATH]",
        "manage the sql IPAM database: init, pools, show, release-node, check",
    ),
    "demo": (
        "pycni.cli.demo",
        "main",
        "[bridge|dhcp|cluster]",
        "a self-contained demo in a sandbox (bridge network, macvlan + DHCP, or three "
        "nodes on one PostgreSQL pool)",
    ),
}

DEFAULT_CACHE_DIR = "/var/lib/cni"
#: where `pycni install` puts the plugins by default; used when CNI_PATH is
#: unset and a pycni installation is there
DEFAULT_BIN_DIR = "/opt/cni/bin"
#: the longest --timeout: the runtime waits with poll(2), in int milliseconds
MAX_TIMEOUT = (2**31 - 2) // 1000
#: exit status of every usage error (argparse's)
EXIT_USAGE = 2

_GLOBAL_OPTIONS = (
    f"  --cache-dir DIR     result cache directory (default {DEFAULT_CACHE_DIR})",
    "  --timeout SECONDS   kill a plugin call that runs longer (default and inf: no limit)",
    "  -i, --ifname NAME   interface name (default $CNI_IFNAME, else eth0)",
    "  -h, --help          show this help",
)


class UsageError(Exception):
    """Wrong command line; printed with a pointer to --help, exit status 2."""


class ShowHelp(Exception):
    """-h/--help among a subcommand's arguments: print its usage, exit 0."""


class Failure(CNIError):
    """A failure of the command line itself, not of a plugin: printed without a
    CNI code; `status` is the exit status (127: command not found, ...)."""

    def __init__(self, msg: str, status: int = 1, code: int = ERR_INTERNAL) -> None:
        super().__init__(code, msg)
        self.status = status


class OutputError(Exception):
    """Writing to stdout failed (closed, disk full, ...)."""


class Interrupted(BaseException):
    """A stop signal (INT, TERM, HUP, QUIT) ended the command early; exit 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        import signal

        try:
            return f"interrupted by {signal.Signals(self.signum).name}"
        except ValueError:
            return f"interrupted by signal {self.signum}"


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
    args: list[str],
    flags: tuple[str, ...] = (),
    dash_dash: bool = False,
    values: tuple[str, ...] = (),
    command_line: bool = False,
) -> tuple[Options, list[str], dict[str, list[str]]]:
    """A subcommand's arguments: (global options, positionals, given flags).

    `flags` are boolean flags, `values` flags that take a value (`--net X`,
    `--net=X`); `given` maps each flag given to its values ([] for a boolean
    one). Global options and -h/--help (ShowHelp) may come anywhere before
    "--"; any other flag is a UsageError. With `dash_dash`, everything after
    "--" is positional; with `command_line`, so is everything from the first
    positional on (a command and its own arguments, as `run` takes them).
    """
    opts = options()
    positional: list[str] = []
    given: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        used = take_option(opts, args, i)
        if used:
            i += used
            continue
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg in ("-h", "--help"):
            raise ShowHelp()
        if arg in flags:
            given[arg] = []
        elif name in values:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"flag needs an argument: {name}")
                i += 1
                value = args[i]
            given.setdefault(name, []).append(value)
        elif (dash_dash or command_line) and arg == "--":
            positional += args[i + 1 :]
            break
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown flag: {arg}")
        elif command_line:
            positional += args[i:]
            break
        else:
            positional.append(arg)
        i += 1
    return opts, positional, given


def argument_parser(command: str, description: str):
    """An argparse parser for `pycni COMMAND` whose errors are UsageErrors, so
    that `main` prints them like every other usage error (escaped, exit 2)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):
            raise UsageError(message)

    return Parser(prog=f"pycni {command}", description=description)


def cni_path() -> list[str]:
    """The directories of $CNI_PATH; when it is unset or empty, the default bin
    dir if `pycni install` put its plugins there, else a Failure saying what
    to set (not libcni's bare "no paths provided")."""
    import os

    value = os.environ.get("CNI_PATH")
    if value:
        return value.split(os.pathsep)
    from pycni.plugins.launcher import LIB_DIR, MANIFEST

    if os.path.isfile(os.path.join(DEFAULT_BIN_DIR, LIB_DIR, MANIFEST)):
        return [DEFAULT_BIN_DIR]
    raise Failure(
        f"CNI_PATH is {'empty' if value is not None else 'not set'}: set it to the "
        f"directories of your CNI plugins, e.g. CNI_PATH={DEFAULT_BIN_DIR} (once `pycni "
        f"install` has put its plugins in {DEFAULT_BIN_DIR}, pycni finds them there by itself)"
    )


def parse_timeout(value: str) -> float | None:
    """--timeout: seconds, None for no limit (0 or inf); a UsageError naming
    the value when it is not a number, negative, or more than MAX_TIMEOUT."""
    if value.strip().lower().lstrip("+") in ("inf", "infinity"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"invalid --timeout {value!r}: not a number of seconds")
    if seconds != seconds:
        raise UsageError(f"invalid --timeout {value!r}: not a number of seconds")
    if seconds < 0:
        raise UsageError(f"invalid --timeout {value!r}: negative")
    if seconds > MAX_TIMEOUT:
        raise UsageError(
            f"invalid --timeout {value!r}: more than {MAX_TIMEOUT} seconds (24 days), the "
            "longest a plugin call can be timed; use inf for no limit"
        )
    return seconds or None


def check_dir(what: str, path: str) -> None:
    """A Failure in one sentence when `path` cannot be a directory because it,
    or the nearest existing parent, is something else; otherwise nothing (a
    missing directory is created by whoever needs it)."""
    import os
    import stat

    probe = os.path.abspath(path)
    while True:
        try:
            st = os.stat(probe)
            break
        except (FileNotFoundError, NotADirectoryError):
            parent = os.path.dirname(probe)
            if parent == probe:
                return
            probe = parent
        except OSError:
            return  # e.g. no permission: the operation reports it
    if stat.S_ISDIR(st.st_mode):
        return
    what_is = "a file, not a directory" if stat.S_ISREG(st.st_mode) else "not a directory"
    if probe == os.path.abspath(path):
        raise Failure(f"{what} {path} is {what_is}")
    raise Failure(f"{what} {path}: {probe} is {what_is}")


def printable(text: str) -> str:
    """`text` with every non-printable character escaped (`\\x1b`, `\\n`,
    `\\u202e`, an undecodable file-name byte as `\\xff`), so that names from
    disk or the command line cannot drive the terminal."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that os.fsdecode could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def out(text: str) -> None:
    """Write `text` to stdout; an OutputError if stdout is closed or fails."""
    stream = sys.stdout
    if stream is None:
        raise OutputError("stdout is closed")
    try:
        stream.write(text)
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputError(err.strerror or str(err)) from None


def flush_out() -> None:
    stream = sys.stdout
    if stream is None:
        return
    try:
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputError(err.strerror or str(err)) from None


def usage(prog: str = "pycni") -> str:
    width = max(len(n) + len(c[2]) for n, c in COMMANDS.items()) + 1
    lines = [
        f"usage: {prog} [--cache-dir DIR] [--timeout SECONDS] [-i IFNAME] COMMAND [ARGS...]",
        "",
        "Run CNI plugins like cnitool, with the networks of $NETCONFPATH (default",
        f"/etc/cni/net.d) and the plugins of $CNI_PATH (default: {DEFAULT_BIN_DIR} once `pycni",
        "install` put pycni's plugins there). CNI_ARGS, CAP_ARGS and CNI_IFNAME are",
        "read as cnitool does. `pycni COMMAND --help` tells more about a command.",
        "",
        "commands:",
    ]
    for name, (_mod, _func, synopsis, text) in COMMANDS.items():
        lines.append(f"  {(name + ' ' + synopsis).ljust(width)}  {text}")
    lines += [
        "",
        "`pycni run` without --net uses a built-in network that changes this host:",
        "bridge pycni0, IPv4 forwarding on, 198.18.0.0/24 (see `pycni run --help`).",
    ]
    lines += ["", "options (before or after COMMAND):", *_GLOBAL_OPTIONS]
    lines.append("  --version           show pycni's version")
    lines += ["", "Exit status: 0 ok, 1 failure, 2 usage error, 128+N killed by signal N."]
    return "\n".join(lines) + "\n"


def command_usage(name: str, prog: str = "pycni") -> str:
    """`pycni NAME --help`: synopsis, help, the module's HELP text, options."""
    module_name, _func, synopsis, text = COMMANDS[name]
    lines = [f"usage: {prog} {name} {synopsis}".rstrip(), "", text[:1].upper() + text[1:] + "."]
    module = sys.modules.get(module_name)
    extra = getattr(module, "HELP", "")
    if isinstance(extra, dict):
        extra = extra.get(name, "")
    for paragraph in extra.strip("\n").split("\n\n") if extra else ():
        if max(len(line) for line in paragraph.splitlines()) > 79:
            import textwrap

            paragraph = textwrap.fill(" ".join(paragraph.split()), 79)
        lines += ["", paragraph]
    lines += ["", "options:", *_GLOBAL_OPTIONS]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    global _OPTIONS
    _reserve_std_fds()  # no file opened later may stand in for a closed 0, 1 or 2
    args = list(sys.argv[1:] if argv is None else argv)
    opts = _OPTIONS = Options()
    command = ""
    try:
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("-h", "--help"):
                out(usage(opts.prog))
                flush_out()
                return 0
            if arg == "--version":
                from pycni import __version__

                out(f"pycni {__version__}\n")
                flush_out()
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
            _stderr(usage(opts.prog))
            return EXIT_USAGE
        command = rest[0]
        if command == "help":
            topic = rest[1] if len(rest) > 1 else ""
            if topic in COMMANDS:
                __import__(COMMANDS[topic][0])
                out(command_usage(topic, opts.prog))
            elif topic:
                raise UsageError(f'unknown command "{topic}"')
            else:
                out(usage(opts.prog))
            flush_out()
            return 0
        entry = COMMANDS.get(command)
        if entry is None:
            raise UsageError(f'unknown command "{command}"')
        module = __import__(entry[0], fromlist=[entry[1]])
        try:
            status = int(getattr(module, entry[1])(rest[1:]) or 0)
        except ShowHelp:
            out(command_usage(command, opts.prog))
            status = 0
        flush_out()
        return status
    except UsageError as err:
        where = f" {command}" if command in COMMANDS else ""
        _fail(f"{opts.prog}{where}: {err} (see '{opts.prog}{where} --help')")
        return EXIT_USAGE
    except OutputError as err:
        _quiet_stdout()
        what = f"{command} failed: " if command else ""
        _fail(f"{opts.prog}: {what}cannot write to stdout: {err}")
        return 1
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except Interrupted as err:
        _fail(f"{opts.prog}: {command + ' ' if command else ''}{err}")
        _notes(opts.prog, command, err)
        return 128 + err.signum
    except KeyboardInterrupt:
        _fail(f"{opts.prog}: interrupted")
        return 130
    except BaseException as err:  # the one boundary: no traceback, ever
        if isinstance(err, SystemExit):
            code = err.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        with_code = command not in ("install", "uninstall")
        _fail(
            f"{opts.prog}: {command + ' failed: ' if command else ''}"
            f"{describe_error(err, with_code)}"
        )
        _notes(opts.prog, command, err)
        return err.status if isinstance(err, Failure) else 1


def _reserve_std_fds() -> None:
    """skel.reserve_std_fds without its imports (and without `os`, which
    `pycni --help` does not otherwise need): /dev/null on a closed 0, 1, 2."""
    import posix

    for fd in (0, 1, 2):
        try:
            posix.fstat(fd)
            continue
        except OSError:
            pass
        try:
            new = posix.open("/dev/null", posix.O_RDWR)
            if new != fd:
                posix.dup2(new, fd)
                posix.close(new)
            else:
                posix.set_inheritable(fd, True)
        except OSError:
            pass


def describe_error(err: BaseException, with_code: bool = True) -> str:
    """One line: the error text, with " (CNI error N)" for typed CNI errors
    (unless not `with_code`); an OSError, also one wrapped into a CNIError's
    message, reads "<strerror>: <file>" instead of Python's "[Errno N] ..."."""
    text = str(err) or err.__class__.__name__
    if isinstance(err, CNIError):
        cause = err.__cause__
        if isinstance(cause, OSError) and str(cause) in text:
            text = text.replace(str(cause), _os_text(cause))
        from pycni.invoke import UntypedError

        if with_code and err.code and not isinstance(err, (UntypedError, Failure)):
            text += f" (CNI error {err.code})"
    elif isinstance(err, OSError) and not isinstance(err, BrokenPipeError):
        text = _os_text(err)
    return "; ".join(line for line in text.splitlines() if line.strip()) or text


def _os_text(err: OSError) -> str:
    text = err.strerror or str(err)
    if err.filename is not None and str(err.filename) not in text:
        text += f": {err.filename}"
    return text


def _notes(prog: str, command: str, err: BaseException) -> None:
    """Secondary failures attached to `err` (e.g. a teardown's), one line each."""
    for note in getattr(err, "pycni_notes", ()):
        _fail(f"{prog} {command}: {note}")


def _fail(line: str) -> None:
    """One line on stderr, non-printable characters escaped."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        _quiet_stdout()
    _stderr(printable(line) + "\n")


def _stderr(text: str) -> None:
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _quiet_stdout() -> None:
    """After a failed write to stdout, point fd 1 at /dev/null so that the
    flush at exit (of what is still buffered) is silent."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except (OSError, ValueError):
        pass
