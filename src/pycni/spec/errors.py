"""CNI error values.

A CNIError is raised once, where the problem is found, and printed as JSON at
exactly one boundary (the skel for plugins, the CLI for the runtime).
"""

from __future__ import annotations

ERR_UNKNOWN = 0
ERR_INCOMPATIBLE_CNI_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENVIRONMENT_VARIABLES = 4
ERR_IO_FAILURE = 5
ERR_DECODING_FAILURE = 6
ERR_INVALID_NETWORK_CONFIG = 7
ERR_INVALID_NETNS = 8
ERR_TRY_AGAIN_LATER = 11
ERR_PLUGIN_NOT_AVAILABLE = 50
ERR_LIMITED_CONNECTIVITY = 51
ERR_INTERNAL = 999


class CNIError(Exception):
    """An error with a CNI code; `str()` matches Go's types.Error.Error()."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        # All three in args so the error survives pickling (multiprocessing).
        super().__init__(code, msg, details)
        self.code = code
        self.msg = msg
        self.details = details

    def __str__(self) -> str:
        return f"{self.msg}; {self.details}" if self.details else self.msg

    def __repr__(self) -> str:
        return f"CNIError({self.code}, {self.msg!r}, {self.details!r})"

    def to_dict(self, cni_version: str | None = None) -> dict:
        """The error object; `cniVersion` first when given (the spec asks
        for it, Go omits it), `details` only when set (Go's omitempty)."""
        out: dict = {}
        if cni_version:
            out["cniVersion"] = cni_version
        out["code"] = self.code
        out["msg"] = self.msg
        if self.details:
            out["details"] = self.details
        return out
