"""Errors of plugin execution, and decoding a failed plugin's error output."""

from __future__ import annotations

from pycni.spec.errors import ERR_INTERNAL, ERR_UNKNOWN, CNIError


class UntypedError(CNIError):
    """An error that libcni returns as a plain Go error, without a CNI code.

    It carries code 999 (`ERR_INTERNAL`), the code Go's skel gives such an
    error when a plugin returns it, so a delegating plugin reports the same
    code as its Go twin. The CLI prints no code for it.
    """

    def __init__(self, msg: str, details: str = "") -> None:
        super().__init__(ERR_INTERNAL, msg, details)


class PluginTimeoutError(CNIError):
    """The plugin did not finish within the timeout and was killed."""

    def __init__(self, msg: str, details: str = "", timeout: float = 0.0) -> None:
        super().__init__(ERR_UNKNOWN, msg, details)
        self.timeout = timeout


def wrap_error(err: BaseException, prefix: str) -> CNIError:
    """`fmt.Errorf(prefix + ": %w", err)`: the same error class, code and details
    (and attributes, e.g. a timeout's), the message prefixed; `__cause__` is `err`."""
    if isinstance(err, CNIError):
        cls = type(err)
        new = cls.__new__(cls)
        new.__dict__.update(err.__dict__)
        new.msg = f"{prefix}: {err.msg}"
        new.args = (new.msg,)
    else:
        new = UntypedError(f"{prefix}: {err}")
    new.__cause__ = err
    return new


def go_quote(data: bytes | str) -> str:
    """Go's %q of plugin output (bytes are decoded as UTF-8, bad bytes replaced)."""
    from pycni.spec.jsonutil import go_quote as quote

    return quote(data.decode("utf-8", "replace") if isinstance(data, bytes) else data)


def plugin_error(exit_desc: str, stdout: bytes, stderr: bytes) -> CNIError:
    """libcni's RawExec.pluginErr: the error of a plugin that failed."""
    if not stdout:
        if not stderr:
            return CNIError(ERR_UNKNOWN, f"netplugin failed with no error message: {exit_desc}")
        return CNIError(ERR_UNKNOWN, f"netplugin failed: {go_quote(stderr)}: {exit_desc}")
    from pycni.spec.jsonutil import ci_get, go_loads, json_kind

    try:
        doc = go_loads(stdout)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ValueError(
                f"json: cannot unmarshal {json_kind(doc)} into Go value of type types.Error"
            )
        # Go decodes into types.Error, matching the keys case-insensitively.
        code = ci_get(doc, "code")
        if code is None:
            code = 0
        if isinstance(code, bool) or not isinstance(code, int) or code < 0:
            raise ValueError(
                f"json: cannot unmarshal {json_kind(code)} into Go struct field Error.code "
                "of type uint"
            )
        texts = []
        for key in ("msg", "details"):
            value = ci_get(doc, key)
            if value is not None and not isinstance(value, str):
                raise ValueError(
                    f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                    f"Error.{key} of type string"
                )
            texts.append(value or "")
        msg, details = texts
    except ValueError as perr:
        return CNIError(
            ERR_UNKNOWN,
            f"netplugin failed but error parsing its diagnostic message {go_quote(stdout)}: {perr}",
        )
    return CNIError(code, msg, details)
