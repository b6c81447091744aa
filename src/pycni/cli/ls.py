"""`pycni ls [DIR] [--validate] [--json]`: the networks of a config directory.

Lists every `.conflist`, then every `.conf`/`.json` file of DIR (default
$NETCONFPATH, else /etc/cni/net.d) in lookup order, with its network name,
version and plugin chain, and a status:

* `ok` -- `pycni add NAME ...` will use this file;
* `invalid: <error>` -- the file does not load (with --validate also: a
  plugin is missing from $CNI_PATH or does not support the version);
* `shadowed by <file>` -- an earlier file defines the same name;
* `unreachable: <file> is broken` -- libcni's lookup reads the files in this
  order and stops at the first that does not parse: every conflist, then
  every `.conf`/`.json` (a `.conf` whose name is invalid still parses), so
  the networks after it cannot be found by name;
* `skipped: <kind>, not a regular file` -- a FIFO, socket or device with a
  config name; lookups pass over it without opening it.

File names and errors are printed with non-printable characters escaped.
Exit status 0 unless DIR is missing, not a directory or cannot be read.
"""

from __future__ import annotations

import os

from pycni.cli.main import Failure, UsageError, cni_path, out, parse_args, printable

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.cli.main import Options

HELP = """\
DIR defaults to $NETCONFPATH, else /etc/cni/net.d. Files are listed in the
order `pycni add` looks them up; STATUS says whether `pycni add NAME` would
use the file: ok, invalid, shadowed by an earlier file, unreachable (a broken
file earlier stops every lookup, as in libcni), or skipped (not a regular
file). --validate also asks each plugin in $CNI_PATH whether it supports the
config's version; --json prints the rows as JSON."""


def main(args: list[str]) -> int:
    opts, positional, given = parse_args(args, ("--json", "--validate"))
    as_json = "--json" in given
    if len(positional) > 1:
        raise UsageError("expected at most one DIR")
    from pycni.runtime.loader import DEFAULT_CONF_DIR, load_all_networks

    directory = positional[0] if positional else (os.environ.get("NETCONFPATH") or DEFAULT_CONF_DIR)
    if not os.path.isdir(directory):
        if os.path.lexists(directory):
            raise Failure(f"config dir {directory} is not a directory")
        raise Failure(f"config dir {directory} does not exist")
    rows = describe(load_all_networks(directory), "--validate" in given, opts)
    if as_json:
        import json

        out(json.dumps(rows, indent=4) + "\n")
        return 0
    if not rows:
        out(printable(f"no network configurations in {directory}") + "\n")
        return 0
    table: list[tuple[str, ...]] = [("NAME", "VERSION", "PLUGINS", "FILE", "STATUS")]
    for row in rows:
        cells = (
            row["name"] or "-",
            row["cniVersion"] or "-",
            ",".join(row["plugins"]) or "-",
            row["file"],
            row["status"],
        )
        table.append(tuple(printable(cell) for cell in cells))
    widths = [max(len(r[c]) for r in table) for c in range(4)]
    for r in table:
        out("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] + "\n")
    return 0


def describe(entries: list, validate: bool = False, opts: Options | None = None) -> list[dict]:
    """One dict per file: file, name, cniVersion, plugins, valid, status, error."""
    from pycni.runtime.loader import NotRegularFile
    from pycni.spec.errors import CNIError

    cni = None
    if validate:
        from pycni.runtime.api import CNIConfig

        cni = CNIConfig(
            cni_path(),
            timeout=opts.timeout if opts else None,
            locking=False,
        )
    rows = []
    seen: dict[str, str] = {}
    broken = ""  # the first file that stops every lookup after it
    for path, item in entries:
        row: dict = {
            "file": path,
            "name": "",
            "cniVersion": "",
            "plugins": [],
            "valid": False,
            "status": "",
            "error": "",
        }
        rows.append(row)
        if isinstance(item, NotRegularFile):
            row["error"] = str(item)
            row["status"] = f"skipped: {item.kind}, not a regular file"
            continue
        if isinstance(item, CNIError):
            row["error"] = str(item)
            row["status"] = "invalid: " + _one_line(str(item))
            if not broken and _stops_lookups(path):
                broken = path
            continue
        row["name"] = item.name
        row["cniVersion"] = item.cni_version
        row["plugins"] = [p.type for p in item.plugins]
        if item.name in seen:
            row["status"] = f"shadowed by {seen[item.name]}"
            continue
        if broken:
            row["status"] = f"unreachable: {broken} is broken"
            row["error"] = f"lookups stop at the broken {broken}"
            continue
        seen[item.name] = path
        if cni is not None:
            try:
                cni.validate_network_list(item)
            except CNIError as err:
                row["error"] = str(err)
                row["status"] = "invalid: " + _one_line(str(err))
                continue
        row["valid"] = True
        row["status"] = "ok"
    return rows


def _stops_lookups(path: str) -> bool:
    """Whether a file that failed to load also ends libcni's lookups: a broken
    conflist does; a `.conf`/`.json` only if it does not even parse as a plugin
    config (LoadConf compares the names of those that do)."""
    if path.endswith(".conflist"):
        return True
    from pycni.runtime import loader
    from pycni.spec.errors import CNIError

    try:
        loader.plugin_conf_from_bytes(loader._read(path))
    except CNIError:
        return True
    return False


def _one_line(text: str) -> str:
    return "; ".join(line for line in text.splitlines() if line.strip()) or text
