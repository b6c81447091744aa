"""`pycni add|check|del|gc|status NETWORK NETNS`, exactly as cnitool.

* the network is looked up by name in $NETCONFPATH (default /etc/cni/net.d);
* plugins are searched in $CNI_PATH;
* $CNI_ARGS ("K1=V1;K2=V2", every pair exactly two non-empty parts) becomes
  CNI_ARGS, $CAP_ARGS (a JSON object) the capability args;
* the interface is `-i/--ifname`, else a non-empty $CNI_IFNAME, else eth0;
* NETNS is made absolute and the container ID is "cnitool-" + the first 20
  hex digits of SHA-512(absolute NETNS), so every verb on one netns agrees;
* `add` prints the result (in the version the last plugin returned) as
  indented JSON on stdout; `gc` passes no valid attachments, so every cached
  attachment of the network is deleted.

Extra positional arguments are ignored, as cobra does.
"""

from __future__ import annotations

import os
import sys

from pycni.cli.main import UsageError, cni_path, parse_args

DEFAULT_NET_DIR = "/etc/cni/net.d"


def container_id(netns: str) -> str:
    """cnitool's container ID for an (absolute) netns path."""
    try:
        from _sha512 import sha512  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - other Pythons
        from hashlib import sha512
    return "cnitool-" + sha512(netns.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def add(args: list[str]) -> int:
    return run("add", args)


def check(args: list[str]) -> int:
    return run("check", args)


def delete(args: list[str]) -> int:
    return run("del", args)


def gc(args: list[str]) -> int:
    return run("gc", args)


def status(args: list[str]) -> int:
    return run("status", args)


def run(command: str, args: list[str]) -> int:
    """One cnitool verb with the arguments after its name."""
    opts, positional, _ = parse_args(args, dash_dash=True)
    if len(positional) < 2:
        raise UsageError(f"requires at least 2 arg(s), only received {len(positional)}")
    net_name, netns = positional[0], positional[1]

    from pycni.runtime.api import CNIConfig, RuntimeConf
    from pycni.runtime.loader import load_network_conf

    net_dir = os.environ.get("NETCONFPATH") or DEFAULT_NET_DIR
    net = load_network_conf(net_dir, net_name)

    capability_args = None
    raw_caps = os.environ.get("CAP_ARGS", "")
    if raw_caps:
        capability_args = _capability_args(raw_caps)

    cni_args = None
    raw_args = os.environ.get("CNI_ARGS", "")
    if raw_args:
        from pycni.spec.args import parse_cnitool_args

        cni_args = parse_cnitool_args(raw_args)

    ifname = opts.ifname or os.environ.get("CNI_IFNAME") or "eth0"
    netns = os.path.abspath(netns)
    cni = CNIConfig(cni_path(), cache_dir=opts.cache_dir, timeout=opts.timeout)
    rt = RuntimeConf(container_id(netns), netns, ifname, cni_args, capability_args)

    if command == "add":
        result = cni.add_network_list(net, rt)
        if result is not None:
            sys.stdout.write(result.to_json(result.cni_version))
            sys.stdout.flush()
    elif command == "check":
        cni.check_network_list(net, rt)
    elif command == "del":
        cni.del_network_list(net, rt)
    elif command == "gc":
        cni.gc_network_list(net, None)
    elif command == "status":
        cni.get_status_network_list(net)
    else:  # pragma: no cover - the dispatch table only routes the five verbs here
        raise UsageError(f'unknown command "{command}"')
    return 0


def _capability_args(text: str) -> dict | None:
    """CAP_ARGS as Go's json.Unmarshal into map[string]interface{} reads it."""
    from pycni.runtime.invoke import UntypedError
    from pycni.spec.jsonutil import go_loads, json_kind

    try:
        value = go_loads(text)
    except ValueError as err:
        raise UntypedError(f"invalid CAP_ARGS: {err}")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UntypedError(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type "
            "map[string]interface {}"
        )
    return value
