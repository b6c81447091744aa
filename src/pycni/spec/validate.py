"""Name rules for network names, container IDs and interface names.

These strings become file paths, chain names and comments, so they are
checked before anything else touches them.
"""

from __future__ import annotations

from pycni.spec.errors import (
    ERR_INVALID_ENVIRONMENT_VARIABLES,
    ERR_INVALID_NETWORK_CONFIG,
    ERR_UNKNOWN_CONTAINER,
    CNIError,
)

_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("_.-")


def is_valid_name(name: str) -> bool:
    """^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$ without importing re."""
    return bool(name) and name[0] in _FIRST and all(c in _REST for c in name)


def network_name(name: object) -> None:
    """libcni's network name rule (code 7); the name becomes a file name."""
    if not name:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "missing network name")
    if not isinstance(name, str) or not is_valid_name(name):
        raise CNIError(
            ERR_INVALID_NETWORK_CONFIG, "invalid characters found in network name", str(name)
        )


def container_id(cid: str) -> None:
    """libcni's container ID rule: empty is code 3, bad characters code 4."""
    if not cid:
        raise CNIError(ERR_UNKNOWN_CONTAINER, "missing containerID")
    if not is_valid_name(cid):
        raise CNIError(ERR_INVALID_ENVIRONMENT_VARIABLES, "invalid characters in containerID", cid)


def interface_name(name: str) -> None:
    """The kernel's interface name rules, as Go's ValidateInterfaceName checks them."""
    if not name:
        raise CNIError(ERR_INVALID_ENVIRONMENT_VARIABLES, "interface name is empty")
    if _byte_length(name) > 15:
        raise CNIError(
            ERR_INVALID_ENVIRONMENT_VARIABLES,
            "interface name is too long",
            "interface name should be less than 16 characters",
        )
    if name in (".", ".."):
        raise CNIError(ERR_INVALID_ENVIRONMENT_VARIABLES, "interface name is . or ..")
    if any(c in "/:" or c.isspace() for c in name):
        raise CNIError(
            ERR_INVALID_ENVIRONMENT_VARIABLES,
            "interface name contains / or : or whitespace characters",
        )
    if "\0" in name:
        raise CNIError(ERR_INVALID_ENVIRONMENT_VARIABLES, "interface name contains a NUL character")


def config_interface_name_problem(name: str) -> str:
    """Why an interface name from a JSON config cannot name a link, or "".

    Beyond the kernel's rules: a NUL would silently cut the name short in the
    kernel, and a lone surrogate (JSON "\\ud800") has no UTF-8 form at all.
    """
    if not name:
        return "it is empty"
    if "\0" in name:
        return "it contains a NUL character"
    if any("\ud800" <= c <= "\udfff" for c in name):
        return "it is not valid Unicode (a lone surrogate)"
    if len(name.encode()) > 15:
        return "it is longer than 15 bytes"
    if name in (".", ".."):
        return "it is . or .."
    if any(c in "/:" or c.isspace() for c in name):
        return "it contains '/', ':' or whitespace"
    return ""


def _byte_length(name: str) -> int:
    """Length in bytes as the kernel sees it; undecodable bytes of an
    environment variable come back as surrogate escapes, one byte each."""
    try:
        return len(name.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(name.encode("utf-8", "surrogatepass"))
