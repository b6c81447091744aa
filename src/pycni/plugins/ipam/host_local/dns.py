"""resolv.conf parsing for the `resolvConf` option (the reference's dns.go)."""

from __future__ import annotations

from pycni.spec.errors import ERR_IO_FAILURE, CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import DNS


def parse_resolv_conf_text(text: str) -> tuple[list[str], str, list[str], list[str]]:
    """(nameservers, domain, search, options) of resolv.conf text.

    Lines are trimmed; empty lines and lines starting with '#' or ';' are
    skipped, as are lines with a keyword but no value. `nameserver` takes
    its first value, `domain` the first value of its last line, `search` and
    `options` accumulate all values. Unknown keywords are ignored.
    """
    nameservers: list[str] = []
    domain = ""
    search: list[str] = []
    options: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        key = fields[0]
        if key == "nameserver":
            nameservers.append(fields[1])
        elif key == "domain":
            domain = fields[1]
        elif key == "search":
            search.extend(fields[1:])
        elif key == "options":
            options.extend(fields[1:])
    return nameservers, domain, search, options


def parse_resolv_conf(path: str) -> DNS:
    """The DNS settings of the file at `path`; CNIError (I/O) if unreadable."""
    from pycni.spec.result import DNS

    try:
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise CNIError(ERR_IO_FAILURE, f"failed to read resolvConf {path}: {reason}")
    return DNS(*parse_resolv_conf_text(data.decode("utf-8", "replace")))
