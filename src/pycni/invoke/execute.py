"""Finding and executing plugins, and reading what they answer.

This module is imported by plugins that delegate (IPAM), so its top level
imports only `os`; everything else is imported where it is used. Plugins are
started with `os.posix_spawn` and talked to through pipes and `select.poll`
instead of `subprocess`, which costs more to import than a plugin call takes.

Behaviour copied from libcni:

* the environment is the caller's environment plus the six `CNI_*`
  variables, the CNI values winning (`plugin_env`);
* "text file busy" at exec time is retried, 6 attempts 1 s apart (a plugin
  binary still being written); unlike libcni, running out of attempts is an
  error, not an empty success;
* a failing plugin's error is read from stdout (`{"code", "msg", "details"}`,
  kept as a `CNIError` so callers can branch on the code); an empty stdout
  falls back to stderr, then to the exit status, with libcni's messages;
* on success the plugin's stderr is copied to ours;
* ADD results go through `fixupResultVersion` (a result without a
  `cniVersion` is taken to be in the config's version).

Added: an optional timeout per call. On expiry the plugin's process group gets
SIGTERM, then SIGKILL after `KILL_GRACE` seconds, and `PluginTimeoutError` is
raised.
"""

from __future__ import annotations

import os

from pycni.invoke.errors import PluginTimeoutError, UntypedError, plugin_error
from pycni.spec.errors import ERR_UNKNOWN, CNIError

#: exec attempts on ETXTBSY and the pause between them (libcni: 6 x 1 s)
ETXTBSY_ATTEMPTS = 6
ETXTBSY_DELAY = 1.0
#: seconds between SIGTERM and SIGKILL when a plugin times out
KILL_GRACE = 0.5

_SIGPIPE = 13
_SIGXFSZ = 25
_SIGKILL = 9
_SIGTERM = 15

# Go's names for the signals a plugin is likely to die of (syscall.Signal).
_GO_SIGNALS = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
}


def find_in_path(plugin: str, paths: list[str] | tuple[str, ...]) -> str:
    """libcni's FindInPath: the first regular file `dir/plugin` (exec bit not checked).

    Empty components of `paths` are skipped (Go would look in the current
    directory); they still show in the error message.
    """
    if not plugin:
        raise UntypedError("no plugin name provided")
    if os.sep in plugin:
        raise UntypedError(f"invalid plugin name: {plugin}")
    if not paths:
        raise UntypedError("no paths provided")
    import stat

    for directory in paths:
        if not directory:
            continue
        full = os.path.normpath(os.path.join(directory, plugin))
        try:
            if stat.S_ISREG(os.stat(full).st_mode):
                return full
        except (OSError, ValueError):
            continue
    listing = "[" + " ".join(paths) + "]"
    raise UntypedError(f'failed to find plugin "{plugin}" in path {listing}')


def plugin_env(
    command: str,
    container_id: str = "",
    netns: str = "",
    args: list | tuple = (),
    ifname: str = "",
    path: str = "",
    base: dict | None = None,
) -> dict:
    """The environment libcni gives a plugin: `base` (default os.environ) + CNI_*."""
    env = dict(os.environ if base is None else base)
    env["CNI_COMMAND"] = command
    env["CNI_CONTAINERID"] = container_id
    env["CNI_NETNS"] = netns
    env["CNI_ARGS"] = ";".join("=".join(kv) for kv in args)
    env["CNI_IFNAME"] = ifname
    env["CNI_PATH"] = path
    return env


def exec_plugin(
    path: str,
    stdin: bytes,
    env: dict | None = None,
    timeout: float | None = None,
    stderr=None,
    spawn=None,
) -> bytes:
    """Run one plugin (libcni's RawExec.ExecPlugin) and return its stdout.

    `env` is the complete environment (see `plugin_env`; None inherits ours).
    `timeout` (seconds, None = wait forever) bounds the whole call, retries
    included. On success the plugin's stderr is written to `stderr` (a binary
    or text stream, default `sys.stderr`). Raises `CNIError`.

    `spawn(path, env, new_group)` starts the process (default: posix_spawn);
    another way of starting it (pycni's fork server) returns an object with
    `_Run`'s interface, and everything after the start is shared, so the
    outcome is judged exactly as an exec's.
    """
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    if env is None:
        env = dict(os.environ)
    attempt = 0
    while True:
        attempt += 1
        try:
            run = (spawn or _Run)(path, env, timeout is not None)
            break
        except ValueError:  # a NUL byte in the path or environment: Go's EINVAL
            raise CNIError(
                ERR_UNKNOWN,
                f"netplugin failed with no error message: fork/exec {path}: invalid argument",
            )
        except OSError as err:
            msg = f"fork/exec {path}: {_go_errno(err)}"
            busy = err.errno == 26  # ETXTBSY
            if (
                busy
                and attempt < ETXTBSY_ATTEMPTS
                and (deadline is None or time.monotonic() + ETXTBSY_DELAY < deadline)
            ):
                time.sleep(ETXTBSY_DELAY)
                continue
            raise CNIError(ERR_UNKNOWN, f"netplugin failed with no error message: {msg}")
    out, err_out, status, timed_out = run.communicate(stdin, deadline)
    if timed_out:
        raise PluginTimeoutError(
            f"netplugin timed out after {timeout:g}s and was killed: {_exit_desc(status)}",
            err_out.decode("utf-8", "replace").strip(),
            timeout or 0.0,
        )
    if status != 0:
        raise plugin_error(_exit_desc(status), out, err_out)
    if err_out:
        _copy_stderr(err_out, stderr)
    return out


def fixup_result_version(netconf: bytes, stdout: bytes) -> tuple[str, dict]:
    """libcni's fixupResultVersion: (result version, result dict).

    A result with a non-empty string `cniVersion` keeps it; otherwise it is
    taken to be in the config's version (issue #895).
    """
    from pycni.spec.jsonutil import go_loads, json_kind

    conf_version = config_version(netconf)
    try:
        raw = go_loads(stdout)
    except ValueError as err:
        text = stdout.decode("utf-8", "replace")
        raise UntypedError(f"failed to unmarshal raw result: {err} result {text}")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        text = stdout.decode("utf-8", "replace")
        raise UntypedError(
            "failed to unmarshal raw result: json: cannot unmarshal "
            f"{json_kind(raw)} into Go value of type map[string]interface {{}} result {text}"
        )
    version = raw.get("cniVersion")
    if isinstance(version, str) and version:
        return version, raw
    raw["cniVersion"] = conf_version
    return conf_version, raw


def config_version(netconf: bytes) -> str:
    """Go's version.ConfigDecoder: the `cniVersion` of a config, "" meaning 0.1.0."""
    from pycni.spec.jsonutil import go_loads, json_kind

    try:
        doc = go_loads(netconf)
        version = doc.get("cniVersion") if isinstance(doc, dict) else None
        if version is not None and not isinstance(version, str):
            raise ValueError(
                f"json: cannot unmarshal {json_kind(version)} into Go struct field "
                "ConfigDecoder.cniVersion of type string"
            )
    except ValueError as err:
        raise UntypedError(f"decoding version from network config: {err}")
    return version or "0.1.0"


def exec_plugin_with_result(
    path: str,
    netconf: bytes,
    env: dict | None = None,
    timeout: float | None = None,
    stderr=None,
):
    """Run a plugin's ADD and parse its result (libcni's ExecPluginWithResult)."""
    return result_from_output(netconf, exec_plugin(path, netconf, env, timeout, stderr))


def result_from_output(netconf: bytes, out: bytes):
    """An ADD's stdout read as libcni reads it: fixupResultVersion, then the
    Result of that version."""
    from pycni.spec.result import Result

    version, raw = fixup_result_version(netconf, out)

    try:
        return Result.from_dict(raw, version)
    except CNIError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise UntypedError(str(err))


def get_version_info(path: str, timeout: float | None = None, executor=None) -> list[str]:
    """Ask a plugin for its supported versions (libcni's GetVersionInfo)."""
    from pycni.spec import version

    env = plugin_env("VERSION", netns="dummy", ifname="dummy", path="dummy")
    stdin = b'{"cniVersion":"' + version.CURRENT.encode() + b'"}'
    try:
        run = exec_plugin if executor is None else executor.exec_plugin
        out = run(path, stdin, env, timeout)
    except CNIError as err:
        if str(err) == "unknown CNI_COMMAND: VERSION":
            return ["0.1.0"]
        raise
    try:
        return list(version.decode_version_info(out))
    except ValueError as err:
        raise UntypedError(str(err))


# -- process handling -------------------------------------------------------


class _Run:
    """One plugin process with its three pipes."""

    def __init__(self, path: str, env: dict, new_group: bool) -> None:
        self.new_group = new_group
        fds: list[int] = []
        try:
            in_r, in_w = _pipe(fds)
            out_r, out_w = _pipe(fds)
            err_r, err_w = _pipe(fds)
            actions = [
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ]
            kwargs: dict = {"file_actions": actions, "setsigdef": (_SIGPIPE, _SIGXFSZ)}
            if new_group:
                kwargs["setpgroup"] = 0
            self.pid = os.posix_spawn(path, [path], env, **kwargs)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        self.stdin, self.stdout, self.stderr = in_w, out_r, err_r

    def kill(self, sig: int) -> None:
        try:
            if self.new_group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def communicate(self, data: bytes, deadline: float | None) -> tuple[bytes, bytes, int, bool]:
        """Feed stdin, collect stdout/stderr, reap. -> (out, err, wait status, timed out).

        Like Go, waits for both the exit and EOF on stdout/stderr (a descendant
        holding them open keeps us waiting), bounded by `deadline`.
        """
        import select
        import time

        out: list[bytes] = []
        err: list[bytes] = []
        sinks = {self.stdout: out, self.stderr: err}
        poller = select.poll()
        pipes: set[int] = set()
        view = memoryview(data)
        if view:
            os.set_blocking(self.stdin, False)
            poller.register(self.stdin, select.POLLOUT)
            pipes.add(self.stdin)
        else:
            os.close(self.stdin)
        for fd in (self.stdout, self.stderr):
            poller.register(fd, select.POLLIN)
            pipes.add(fd)
        pidfd = self._exit_fd()
        if pidfd >= 0:
            poller.register(pidfd, select.POLLIN)
        exited = False
        status = 0
        timed_out = False
        killed_at: float | None = None
        try:
            while not (exited and (not pipes or killed_at is not None)):
                now = time.monotonic()
                wait: float | None = None
                if killed_at is not None:
                    wait = max(0.0, killed_at + KILL_GRACE - now)
                elif deadline is not None:
                    wait = max(0.0, deadline - now)
                if pidfd < 0 and not exited:
                    wait = 0.01 if wait is None else min(wait, 0.01)
                events = poller.poll(None if wait is None else int(wait * 1000) + 1)
                for fd, _ev in events:
                    if fd == pidfd:
                        poller.unregister(pidfd)
                        exited, status = self._reap()
                    elif fd == self.stdin:
                        try:
                            view = view[os.write(fd, view[:65536]) :]
                        except BlockingIOError:
                            continue
                        except OSError:  # EPIPE: the plugin does not read stdin
                            view = view[:0]
                        if not view:
                            poller.unregister(fd)
                            pipes.discard(fd)
                            os.close(fd)
                    else:
                        chunk = os.read(fd, 65536)
                        if chunk:
                            sinks[fd].append(chunk)
                        else:
                            poller.unregister(fd)
                            pipes.discard(fd)
                            os.close(fd)
                if pidfd < 0 and not exited:
                    exited, status = self._reap(block=False)
                now = time.monotonic()
                if killed_at is not None:
                    if not exited and now >= killed_at + KILL_GRACE:
                        self.kill(_SIGKILL)
                        exited, status = self._reap()
                elif deadline is not None and now >= deadline:
                    if exited and not pipes:
                        break
                    timed_out = True
                    if exited:
                        break  # only descendants still hold the pipes
                    self.kill(_SIGTERM)
                    killed_at = now
        except BaseException:
            if not exited:
                self.kill(_SIGKILL)
                self._reap()
            raise
        finally:
            for fd in pipes:
                os.close(fd)
            if pidfd >= 0:
                os.close(pidfd)
        return b"".join(out), b"".join(err), status, timed_out

    def _exit_fd(self) -> int:
        """A file descriptor that polls readable once the process has exited
        (owned by `communicate`, which closes it), or -1: poll `_reap`."""
        try:
            return os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            return -1

    def _reap(self, block: bool = True) -> tuple[bool, int]:
        while True:
            try:
                pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            except InterruptedError:
                continue
            except ChildProcessError:
                return True, 0
            return pid != 0, status


def _pipe(fds: list[int]) -> tuple[int, int]:
    r, w = os.pipe()
    fds += (r, w)
    # Keep the pipes off fds 0-2 or dup2 onto the same number would be a no-op
    # that leaves FD_CLOEXEC set in the child.
    if r < 3 or w < 3:
        import fcntl

        if r < 3:
            r = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 3)
            fds.append(r)
        if w < 3:
            w = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 3)
            fds.append(w)
    return r, w


def _exit_desc(status: int) -> str:
    """Go's ExitError text: "exit status 1", "signal: killed"."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = _GO_SIGNALS.get(sig)
        if name is None:
            try:
                import signal

                name = (signal.strsignal(sig) or f"signal {sig}").lower()
            except (ValueError, ImportError):
                name = f"signal {sig}"
        desc = f"signal: {name}"
        if os.WCOREDUMP(status):
            desc += " (core dumped)"
        return desc
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    return f"wait status {status}"


def _go_errno(err: OSError) -> str:
    text = err.strerror or os.strerror(err.errno or 0)
    return text[:1].lower() + text[1:]


def _copy_stderr(data: bytes, stream=None) -> None:
    if stream is None:
        import sys

        stream = sys.stderr
    try:
        buf = getattr(stream, "buffer", None)
        if buf is not None:
            stream.flush()
            buf.write(data)
            buf.flush()
        else:
            stream.write(data.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass  # stderr is informational only
