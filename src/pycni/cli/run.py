"""`pycni run`: run a command in a new netns attached to CNI networks.

The namespace lives exactly as long as the command: ADD before, DEL and
namespace removal after, also when the command fails or is interrupted.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile


def _plugin_path(tmp_holder: list[str]) -> list[str]:
    """CNI_PATH when set; otherwise a private install of pycni's plugins."""
    env = os.environ.get("CNI_PATH", "")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    from pycni.cli.install import install

    tmp = tempfile.mkdtemp(prefix="pycni-run-")
    tmp_holder.append(tmp)
    install(os.path.join(tmp, "bin"))
    return [os.path.join(tmp, "bin")]


def _networks(names: list[str]) -> list:
    from pycni.cli import defaultnet

    if not names:
        return [defaultnet.default_network()]
    from pycni.runtime import load_network_conf

    conf_dir = os.environ.get("NETCONFPATH", "/etc/cni/net.d")
    return [load_network_conf(conf_dir, name) for name in names]


def run(
    command: list[str],
    net_names: list[str],
    cache_dir: str = "/var/lib/cni",
    timeout: float | None = None,
) -> int:
    import subprocess

    from pycni.cli import defaultnet
    from pycni.kernel import netns
    from pycni.runtime import CNIConfig, RuntimeConf

    networks = _networks(net_names)
    tmp: list[str] = []
    name = f"pycni-run-{secrets.token_hex(4)}"
    attached: list = []
    path = ""
    cni = None
    try:
        cni = CNIConfig(path=_plugin_path(tmp), cache_dir=cache_dir, timeout=timeout)
        path = netns.create_named(name)
        lo = (defaultnet.loopback_network(), RuntimeConf(name, path, "lo"))
        for i, net in enumerate([lo[0], *networks]):
            rt = lo[1] if i == 0 else RuntimeConf(name, path, "eth0" if i == 1 else f"net{i - 1}")
            attached.append((net, rt))  # DEL follows even a failed ADD (spec)
            cni.add_network_list(net, rt)
        with netns.enter(path):
            child = subprocess.Popen(command)
        try:
            return child.wait()
        except KeyboardInterrupt:
            return child.wait()
    finally:
        errors = []
        for net, rt in reversed(attached if cni is not None else []):
            try:
                cni.del_network_list(net, rt)
            except Exception as err:  # keep tearing down: the netns must go
                errors.append(f"DEL {net.name} {rt.ifname}: {err}")
        if path:
            netns.delete_named(name)
        for t in tmp:
            shutil.rmtree(t, ignore_errors=True)
        for line in errors:
            print(f"pycni run: {line}", file=sys.stderr)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="pycni run",
        usage="pycni run [--net NAME]... -- COMMAND [ARG...]",
        description="Run COMMAND in a new network namespace attached to the named networks "
        "(eth0, net1, ...; the built-in default network when no --net is given).",
    )
    from pycni.cli.main import options

    globals_ = options()  # `pycni --cache-dir X run ...` works as well
    parser.add_argument("--net", action="append", default=[], metavar="NAME")
    parser.add_argument("--cache-dir", default=globals_.cache_dir)
    parser.add_argument("--timeout", type=float, default=globals_.timeout)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not command:
        parser.error("no command given")
    return run(command, opts.net, opts.cache_dir, opts.timeout)
