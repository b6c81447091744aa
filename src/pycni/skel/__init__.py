"""The plugin SDK: turn handler functions into a CNI plugin executable.

`plugin_main` owns the whole protocol boundary: environment and stdin
parsing, the verb and version gates of the reference skel, and the one place
where errors become JSON on stdout. Handlers only ever see a `CmdArgs` and
raise `CNIError` (any other exception becomes code 999 with its message).

A plugin is declared by a `Plugin`: its about text, its versions, and either
its handlers or the name of the module that holds them (`cmd_add`,
`cmd_del`, `cmd_check`, `cmd_gc`, `cmd_status`). That module is imported only
once VERSION, the environment and stdin have been dealt with, so a VERSION
call or a malformed invocation never loads what the verbs need (netlink).
skel depends on `pycni.spec` only.
"""

from __future__ import annotations

import os
import sys

from pycni.launch import exit_without_finalizing
from pycni.spec import errors
from pycni.spec import version as versions
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import go_dumps

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from pycni.spec.result import Result

# Env vars in the order the reference reports them, with the verbs needing each.
_REQUIRED_ENV = (
    ("CNI_CONTAINERID", ("ADD", "DEL", "CHECK")),
    ("CNI_NETNS", ("ADD", "CHECK")),
    ("CNI_IFNAME", ("ADD", "DEL", "CHECK")),
    ("CNI_PATH", ("ADD", "DEL", "CHECK", "GC", "STATUS")),
)
_VERBS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
_ATTACHMENT_VERBS = ("ADD", "DEL", "CHECK")
# Verbs that need a minimum config version, and the version.
_VERB_MIN_VERSION = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}
_UNSET = object()


class Plugin:
    """A plugin's declaration: what skel needs to answer before any verb runs."""

    __slots__ = ("_handlers", "about", "supported", "verbs")

    _NAMES = (
        ("ADD", "cmd_add"),
        ("DEL", "cmd_del"),
        ("CHECK", "cmd_check"),
        ("GC", "cmd_gc"),
        ("STATUS", "cmd_status"),
    )

    def __init__(
        self,
        *,
        about: str = "",
        supported: tuple[str, ...] | list[str] = versions.ALL,
        verbs: str = "",
        add: Callable | None = None,
        delete: Callable | None = None,
        check: Callable | None = None,
        gc: Callable | None = None,
        status: Callable | None = None,
    ) -> None:
        self.about = about
        self.supported = tuple(supported)
        if not self.supported:
            raise ValueError("a plugin must support at least one CNI version")
        self.verbs = verbs
        given = (add, delete, check, gc, status)
        if verbs and any(given):
            raise ValueError("give either the verbs module or the handlers, not both")
        self._handlers: dict[str, Callable | None] | None = (
            None if verbs else {verb: fn for (verb, _), fn in zip(self._NAMES, given)}
        )

    def handler(self, command: str) -> Callable | None:
        """The handler of a verb; the verbs module is imported on first use."""
        if self._handlers is None:
            module = __import__(self.verbs, fromlist=["cmd_add"])  # no importlib: ~1 ms
            self._handlers = {verb: getattr(module, name, None) for verb, name in self._NAMES}
        return self._handlers.get(command)


class CmdArgs:
    """One plugin invocation: the CNI environment plus the stdin config."""

    __slots__ = (
        "_conf",
        "_prev",
        "args",
        "command",
        "container_id",
        "ifname",
        "netns",
        "netns_override",
        "path",
        "stdin_data",
    )

    def __init__(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: str = "",
        path: list[str] | None = None,
        stdin_data: bytes = b"{}",
        netns_override: bool = False,
    ) -> None:
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = args
        self.path = path or []
        self.stdin_data = stdin_data
        self.netns_override = netns_override
        self._conf: dict | None = None
        self._prev: object = _UNSET

    @classmethod
    def from_env(cls, environ: dict[str, str], stdin_data: bytes) -> CmdArgs:
        path = environ.get("CNI_PATH", "")
        return cls(
            command=environ.get("CNI_COMMAND", ""),
            container_id=environ.get("CNI_CONTAINERID", ""),
            netns=environ.get("CNI_NETNS", ""),
            ifname=environ.get("CNI_IFNAME", ""),
            args=environ.get("CNI_ARGS", ""),
            path=path.split(os.pathsep) if path else [],
            stdin_data=stdin_data,
            netns_override=environ.get("CNI_NETNS_OVERRIDE", "").lower() in ("1", "true"),
        )

    @property
    def conf(self) -> dict:
        """The stdin config as a dict (decoded once)."""
        if self._conf is None:
            self._conf = decode_config(self.stdin_data)
        return self._conf

    @property
    def cni_version(self) -> str:
        """The config's `cniVersion` ("" or absent: 0.1.0), read as Go's
        ConfigDecoder reads it: any other type is a decoding error."""
        from pycni.spec.jsonutil import ci_get, json_kind

        value = ci_get(self.conf, "cniVersion")
        if value is not None and not isinstance(value, str):
            raise CNIError(
                errors.ERR_DECODING_FAILURE,
                f"decoding version from network config: json: cannot unmarshal "
                f"{json_kind(value)} into Go struct field ConfigDecoder.cniVersion of type string",
            )
        return value or "0.1.0"

    @property
    def prev_result(self) -> Result | None:
        """prevResult parsed as the config's version, or None."""
        if self._prev is _UNSET:
            from pycni.spec.result import parse_prev_result

            self._prev = parse_prev_result(self.conf)
        return self._prev  # type: ignore[return-value]

    @property
    def valid_attachments(self) -> list[tuple[str, str]] | None:
        """GC's still-valid attachments; None when the runtime sent no list.

        None and [] differ: an empty list means every attachment is stale.
        """
        conf = self.conf
        for key in ("cni.dev/valid-attachments", "cni.dev/attachments"):
            if key in conf:
                return _parse_attachments(key, conf[key])
        return None


def _parse_attachments(key: str, value: object) -> list[tuple[str, str]]:
    """[(containerID, ifname)] as Go decodes []types.GCAttachment: null is
    empty, a missing or null field is "", any other non-string an error."""
    from pycni.spec.jsonutil import ci_get, json_kind

    if value is None:
        return []
    if not isinstance(value, list):
        raise CNIError(
            errors.ERR_DECODING_FAILURE, f"invalid {key}: {json_kind(value)}, expected a list"
        )
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise CNIError(errors.ERR_DECODING_FAILURE, f"invalid {key} entry: {json_kind(item)}")
        pair = []
        for field in ("containerID", "ifname"):
            text = ci_get(item, field)
            if text is not None and not isinstance(text, str):
                raise CNIError(
                    errors.ERR_DECODING_FAILURE,
                    f"invalid {key} entry: {field} is a {json_kind(text)}, not a string",
                )
            pair.append(text or "")
        out.append((pair[0], pair[1]))
    return out


def decode_config(data: bytes) -> dict:
    from pycni.spec.jsonutil import go_loads

    try:
        conf = go_loads(data)
    except ValueError as err:
        raise CNIError(errors.ERR_DECODING_FAILURE, f"error unmarshall network config: {err}")
    if not isinstance(conf, dict):
        raise CNIError(
            errors.ERR_DECODING_FAILURE, "error unmarshall network config: not a JSON object"
        )
    return conf


def plugin_main(
    plugin: Plugin | None = None,
    *,
    add: Callable | None = None,
    delete: Callable | None = None,
    check: Callable | None = None,
    gc: Callable | None = None,
    status: Callable | None = None,
    supported: tuple[str, ...] | list[str] = versions.ALL,
    about: str = "",
) -> None:
    """Run one CNI verb from the process environment and exit.

    Give a `Plugin`, or the handlers (and versions, about) directly.

    A closed stdin is CNI error 5 (as Go's skel reports a failed read). A
    closed stdout, or one that fails (disk full, ...), cannot carry a result
    or an error: that is one line on stderr and exit status 1; with stdout
    closed from the start the verb is not run at all.
    """
    import gc as collector  # `gc` is the GC verb's handler here

    # A plugin process lives for one verb: collecting cycles cannot pay for
    # itself, and collections while the verbs module is unmarshalled cost
    # about 10% of its import.
    collector.disable()
    closed = reserve_std_fds()
    name = os.path.basename(sys.argv[0] if sys.argv else "") or "plugin"
    if 1 in closed or sys.stdout is None:
        _stderr_line(f"{name}: stdout is closed: nowhere to write the result; nothing done")
        sys.exit(1)
    stdin = None if 0 in closed or sys.stdin is None else sys.stdin.buffer
    stdout = _Utf8Writer(sys.stdout.buffer)
    try:
        if plugin is None:
            plugin = Plugin(
                about=about,
                supported=supported,
                add=add,
                delete=delete,
                check=check,
                gc=gc,
                status=status,
            )
        code = run(os.environ, stdin, stdout, sys.stderr or _Discard(), plugin)
        stdout.flush()
    except OutputError as err:
        try:  # what is still buffered must not fail again at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        except OSError:
            pass
        _stderr_line(f"{name}: cannot write to stdout: {err}")
        code = 1
    exit_without_finalizing(code)


def reserve_std_fds() -> tuple[int, ...]:
    """Put /dev/null on whichever of fds 0, 1, 2 is closed; return those fds.

    Otherwise the next file opened would become stdin, stdout or stderr, and a
    result or an error could be written into it.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        try:
            new = os.open(os.devnull, os.O_RDWR)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
            else:
                os.set_inheritable(fd, True)
        except OSError:
            pass
    return tuple(closed)


class OutputError(Exception):
    """Writing to stdout failed: the message is the OS's reason."""


def _stderr_line(line: str) -> None:
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


class _Discard:
    """stderr when fd 2 was closed."""

    def write(self, text: str) -> None:
        pass


class _Utf8Writer:
    """stdout as UTF-8 whatever the locale: results may carry non-ASCII text.

    A failed write or flush is an OutputError."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer) -> None:
        self._buffer = buffer

    def write(self, text: str) -> None:
        try:
            self._buffer.write(text.encode())
        except OSError as err:
            raise OutputError(err.strerror or str(err)) from None

    def flush(self) -> None:
        try:
            sys.stdout.flush()
            self._buffer.flush()
        except OSError as err:
            raise OutputError(err.strerror or str(err)) from None


def run(environ, stdin, stdout, stderr, plugin: Plugin) -> int:
    """plugin_main without the process: returns the exit code (for tests,
    and for running a plugin in-process).

    `stdin` None means stdin is closed (CNI error 5). An OutputError from
    `stdout` is not turned into JSON (it could not be written either).
    """
    supported = plugin.supported
    command = environ.get("CNI_COMMAND", "")
    if command == "VERSION":
        stdout.write(versions.version_info_json(supported))
        return 0
    if not command and plugin.about:
        stderr.write(f"{plugin.about}\nCNI protocol versions supported: {', '.join(supported)}\n")
        return 0
    args: CmdArgs | None = None
    try:
        args = parse_invocation(environ, stdin)
        handler = gate(args, plugin)
        if handler is None:
            return 0
        outcome = handler(args)
        if args.command == "ADD":
            if outcome is None:
                raise CNIError(errors.ERR_INTERNAL, "plugin ADD handler returned no result")
            stdout.write(outcome.to_json(args.cni_version))
        return 0
    except OutputError:
        raise
    except CNIError as err:
        _print_error(stdout, err, args)
    except Exception as err:  # the one boundary where any failure becomes JSON
        _print_error(stdout, CNIError(errors.ERR_INTERNAL, str(err) or type(err).__name__), args)
    return 1


def parse_invocation(environ, stdin) -> CmdArgs:
    """An invocation's CmdArgs from its environment and stdin, validated as
    `run` validates it (a daemon serving a plugin's verbs gets the same
    checks and the same errors); raises CNIError."""
    command = environ.get("CNI_COMMAND", "")
    missing = ["CNI_COMMAND"] if not command else []
    missing += [name for name, verbs in _REQUIRED_ENV if command in verbs and not environ.get(name)]
    if missing:
        raise CNIError(
            errors.ERR_INVALID_ENVIRONMENT_VARIABLES,
            f"required env variables [{','.join(missing)}] missing",
        )
    if stdin is None:
        raise CNIError(errors.ERR_IO_FAILURE, "error reading from stdin: stdin is closed")
    try:
        data = stdin.read()
    except OSError as err:
        raise CNIError(errors.ERR_IO_FAILURE, f"error reading from stdin: {err.strerror or err}")
    args = CmdArgs.from_env(environ, data)
    if command not in _VERBS:
        raise CNIError(errors.ERR_INVALID_ENVIRONMENT_VARIABLES, f"unknown CNI_COMMAND: {command}")
    from pycni.spec import validate

    validate.network_name(args.conf.get("name"))
    if command in _ATTACHMENT_VERBS:
        validate.container_id(args.container_id)
        validate.interface_name(args.ifname)
    return args


def gate(args: CmdArgs, plugin: Plugin) -> Callable | None:
    """Apply the reference's version gates; return the handler to run
    (None: the plugin does not implement this GC or STATUS, which is no
    error)."""
    command = args.command
    supported = plugin.supported
    config_version = args.cni_version
    minimum = _VERB_MIN_VERSION.get(command)
    if minimum:
        try:
            if not versions.gte(config_version, minimum):
                raise CNIError(
                    errors.ERR_INCOMPATIBLE_CNI_VERSION, f"config version does not allow {command}"
                )
            if not any(versions.gte(v, config_version) for v in supported):
                raise CNIError(
                    errors.ERR_INCOMPATIBLE_CNI_VERSION, f"plugin version does not allow {command}"
                )
        except ValueError as err:
            raise CNIError(errors.ERR_DECODING_FAILURE, str(err))
    if config_version not in supported:
        raise CNIError(
            errors.ERR_INCOMPATIBLE_CNI_VERSION,
            "incompatible CNI versions",
            f'config is "{config_version}", plugin supports {versions.go_quote_list(supported)}',
        )
    if command in ("ADD", "DEL") and not args.netns_override:
        _check_netns_differs(args.netns)
    handler = plugin.handler(command)
    if handler is None and command in ("ADD", "DEL", "CHECK"):
        raise CNIError(errors.ERR_INTERNAL, f"plugin does not implement {command}")
    return handler


def _check_netns_differs(netns: str) -> None:
    """Refuse to configure the plugin's own netns (the reference's code 8).

    Done before the handler rather than after it, so nothing is changed in
    the wrong namespace. An unopenable path is left for the handler.
    """
    if not netns:
        return
    try:
        target = os.stat(netns)
        own = os.stat("/proc/thread-self/ns/net")
    except OSError:
        return
    if (target.st_dev, target.st_ino) == (own.st_dev, own.st_ino):
        raise CNIError(
            errors.ERR_INVALID_NETNS,
            "plugin's netns and netns from CNI_NETNS should not be the same",
        )


def _print_error(stdout, err: CNIError, args: CmdArgs | None) -> None:
    cni_version = None
    if args is not None:
        try:
            cni_version = args.cni_version
        except CNIError:
            cni_version = None
    stdout.write(go_dumps(err.to_dict(cni_version)))
