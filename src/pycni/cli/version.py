"""`pycni version [PLUGIN] [--json]`: the spec versions a plugin supports.

Without PLUGIN, prints pycni's own version and the spec version it
implements. With PLUGIN, finds it in $CNI_PATH, runs its VERSION command and
prints `<plugin> (<path>): 0.1.0, 0.2.0, ...`, or with --json the list as
JSON.
"""

from __future__ import annotations

import sys

from pycni.cli.main import UsageError, cni_path, parse_args


def main(args: list[str]) -> int:
    opts, positional, given = parse_args(args, ("--json",))
    as_json = "--json" in given
    from pycni import __version__
    from pycni.spec import version

    if not positional:
        if as_json:
            import json

            sys.stdout.write(
                json.dumps(
                    {
                        "pycni": __version__,
                        "cniVersion": version.CURRENT,
                        "supportedVersions": list(version.ALL),
                    }
                )
                + "\n"
            )
        else:
            sys.stdout.write(
                f"pycni {__version__}, CNI spec {version.CURRENT} "
                f"(supports {', '.join(version.ALL)})\n"
            )
        return 0
    if len(positional) > 1:
        raise UsageError("expected one PLUGIN")
    plugin = positional[0]

    from pycni.runtime import invoke

    path = invoke.find_in_path(plugin, cni_path())
    supported = invoke.get_version_info(path, opts.timeout)
    if as_json:
        import json

        sys.stdout.write(
            json.dumps({"plugin": plugin, "path": path, "supportedVersions": supported}) + "\n"
        )
    else:
        sys.stdout.write(f"{plugin} ({path}): {', '.join(supported)}\n")
    return 0
