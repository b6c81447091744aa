"""`pycni version [PLUGIN] [--json]`: the spec versions a plugin supports.

Without PLUGIN, prints pycni's own version and the spec version it
implements. With PLUGIN, finds it in $CNI_PATH, runs its VERSION command and
prints `<plugin> (<path>): 0.1.0, 0.2.0, ...`, or with --json the list as
JSON. Plugins are searched in $CNI_PATH, else in /opt/cni/bin when
`pycni install` put pycni's plugins there.
"""

from __future__ import annotations

from pycni.cli.main import UsageError, cni_path, out, parse_args, printable

HELP = """\
Without PLUGIN: pycni's version and the CNI spec versions it implements.
With PLUGIN: run the plugin's VERSION command and print the spec versions it
supports. PLUGIN is searched in $CNI_PATH; when CNI_PATH is unset, in
/opt/cni/bin if `pycni install` put pycni's plugins there."""


def main(args: list[str]) -> int:
    opts, positional, given = parse_args(args, ("--json",))
    as_json = "--json" in given
    from pycni import __version__
    from pycni.spec import version

    if not positional:
        if as_json:
            import json

            out(
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
            out(
                f"pycni {__version__}, CNI spec {version.CURRENT} "
                f"(supports {', '.join(version.ALL)})\n"
            )
        return 0
    if len(positional) > 1:
        raise UsageError("expected one PLUGIN")
    plugin = positional[0]

    from pycni import invoke

    path = invoke.find_in_path(plugin, cni_path())
    supported = invoke.get_version_info(path, opts.timeout)
    if as_json:
        import json

        out(json.dumps({"plugin": plugin, "path": path, "supportedVersions": supported}) + "\n")
    else:
        out(printable(f"{plugin} ({path}): {', '.join(supported)}") + "\n")
    return 0
