"""`pycni ls [DIR] [--validate] [--json]`: the networks of a config directory.

Lists every `.conflist`, then every `.conf`/`.json` file of DIR (default
$NETCONFPATH, else /etc/cni/net.d) in lookup order, with its network name,
version and plugin chain, and a status:

* `ok` -- `pycni add NAME ...` will use this file;
* `invalid: <error>` -- the file does not load (with --validate also: a
  plugin is missing from $CNI_PATH or does not support the version);
* `shadowed by <file>` -- an earlier file defines the same name;
* `unreachable: <file> is broken` -- libcni stops every lookup at the first
  broken conflist, so networks after it cannot be found by name.

Exit status 0 unless DIR cannot be read.
"""

from __future__ import annotations

import os
import sys

from pycni.cli.main import UsageError, cni_path, parse_args

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.cli.main import Options


def main(args: list[str]) -> int:
    opts, positional, given = parse_args(args, ("--json", "--validate"))
    as_json = "--json" in given
    if len(positional) > 1:
        raise UsageError("expected at most one DIR")
    from pycni.runtime.loader import DEFAULT_CONF_DIR, load_all_networks

    directory = positional[0] if positional else (os.environ.get("NETCONFPATH") or DEFAULT_CONF_DIR)
    rows = describe(load_all_networks(directory), "--validate" in given, opts)
    if as_json:
        import json

        sys.stdout.write(json.dumps(rows, indent=4) + "\n")
        return 0
    if not rows:
        sys.stdout.write(f"no network configurations in {directory}\n")
        return 0
    table = [("NAME", "VERSION", "PLUGINS", "FILE", "STATUS")]
    for row in rows:
        table.append(
            (
                row["name"] or "-",
                row["cniVersion"] or "-",
                ",".join(row["plugins"]) or "-",
                row["file"],
                row["status"],
            )
        )
    widths = [max(len(r[c]) for r in table) for c in range(4)]
    for r in table:
        sys.stdout.write("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] + "\n")
    return 0


def describe(entries: list, validate: bool = False, opts: Options | None = None) -> list[dict]:
    """One dict per file: file, name, cniVersion, plugins, valid, status, error."""
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
    broken_conflist = ""
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
        if isinstance(item, CNIError):
            row["error"] = str(item)
            row["status"] = "invalid: " + _one_line(str(item))
            if path.endswith(".conflist") and not broken_conflist:
                broken_conflist = path
            continue
        row["name"] = item.name
        row["cniVersion"] = item.cni_version
        row["plugins"] = [p.type for p in item.plugins]
        if item.name in seen:
            row["status"] = f"shadowed by {seen[item.name]}"
            continue
        if broken_conflist:
            row["status"] = f"unreachable: {broken_conflist} is broken"
            row["error"] = f"lookups stop at the broken {broken_conflist}"
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


def _one_line(text: str) -> str:
    return "; ".join(line for line in text.splitlines() if line.strip()) or text
