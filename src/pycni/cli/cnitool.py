"""`pycni add|check|del NETWORK NETNS`, `pycni gc|status NETWORK`, as cnitool.

* the network is looked up by name in $NETCONFPATH (default /etc/cni/net.d);
* plugins are searched in $CNI_PATH; when it is unset, in /opt/cni/bin if
  `pycni install` put pycni's plugins there (otherwise an error says what to
  set);
* $CNI_ARGS ("K1=V1;K2=V2", every pair exactly two non-empty parts) becomes
  CNI_ARGS, $CAP_ARGS (a JSON object) the capability args;
* the interface is `-i/--ifname`, else a non-empty $CNI_IFNAME, else eth0;
* NETNS is made absolute and the container ID is "cnitool-" + the first 20
  hex digits of SHA-512(absolute NETNS), so every verb on one netns agrees;
* `add` prints the result (in the version the last plugin returned) as
  indented JSON on stdout; `gc` passes no valid attachments, so every cached
  attachment of the network is deleted. GC and STATUS concern a whole
  network, so they take no NETNS (one is refused, lest it read as if the
  command concerned one container).

Extra positional arguments of add/check/del are ignored, as cobra does.
"""

from __future__ import annotations

import os

from pycni.cli.main import UsageError, check_dir, cni_path, out, parse_args

DEFAULT_NET_DIR = "/etc/cni/net.d"

_ENV = """\
The network is looked up by name in $NETCONFPATH (default /etc/cni/net.d),
its plugins in $CNI_PATH (when unset: /opt/cni/bin if `pycni install` put
pycni's plugins there). CNI_ARGS ("K1=V1;K2=V2") and CAP_ARGS (a JSON object)
are passed on as cnitool passes them."""
_ATTACHMENT = """\
NETNS is the container's network namespace (e.g. /run/netns/ctr); the
container ID is derived from it as cnitool derives it, so every verb on one
NETNS agrees. The interface is -i/--ifname, else $CNI_IFNAME, else eth0.
"""
_GC_SCOPE = (
    "GC is network-wide: it runs DEL for every attachment of NETWORK in the "
    "cache (every container added to it with this --cache-dir), then the "
    "plugins' GC, which releases whatever they hold for attachments not in the cache"
)
_STATUS_SCOPE = (
    "STATUS is network-wide: it asks NETWORK's plugins whether they are ready "
    "to add containers, for no particular container"
)
HELP = {
    "add": _ATTACHMENT + "The result is printed as JSON.\n\n" + _ENV,
    "check": _ATTACHMENT + "\n" + _ENV,
    "del": _ATTACHMENT + "\n" + _ENV,
    "gc": _GC_SCOPE + ".\n\n" + _ENV,
    "status": _STATUS_SCOPE + ".\n\n" + _ENV,
}


def container_id(netns: str) -> str:
    """cnitool's container ID for an (absolute) netns path."""
    from pycni.netfilter.names import sha512  # the builtin module on 3.9-3.13, not hashlib

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
    if command in ("gc", "status"):
        if not positional:
            raise UsageError("requires 1 arg (NETWORK), received 0")
        if len(positional) > 1:
            scope = _GC_SCOPE if command == "gc" else _STATUS_SCOPE
            raise UsageError(f"takes NETWORK only, not a NETNS: {scope}")
        net_name, netns = positional[0], ""
    elif len(positional) < 2:
        raise UsageError(f"requires at least 2 arg(s), only received {len(positional)}")
    else:
        net_name, netns = positional[0], positional[1]

    from pycni.runtime.api import CNIConfig
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

    if command != "status":
        check_dir("cache dir", opts.cache_dir)
    from pycni.plugins.forkserver import ForkServerExecutor

    # pycni's installed plugins run forked from a warm server, not exec'd;
    # the server imports the network's plugins while the runtime goes on
    paths = cni_path()
    with ForkServerExecutor() as executor:
        executor.prepare(_plugin_types(net), paths)
        cni = CNIConfig(paths, cache_dir=opts.cache_dir, timeout=opts.timeout, executor=executor)
        return _run(cni, net, command, netns, cni_args, capability_args, opts.ifname)


def _run(cni, net, command: str, netns: str, cni_args, capability_args, ifname: str) -> int:
    """The verb through `cni` (a CNIConfig) on the network list `net`."""
    from pycni.runtime.api import RuntimeConf

    if command == "gc":
        cni.gc_network_list(net, None)
        return 0
    if command == "status":
        cni.get_status_network_list(net)
        return 0
    ifname = ifname or os.environ.get("CNI_IFNAME") or "eth0"
    netns = os.path.abspath(netns)
    rt = RuntimeConf(container_id(netns), netns, ifname, cni_args, capability_args)

    if command == "add":
        result = cni.add_network_list(net, rt)
        if result is not None:
            out(result.to_json(result.cni_version))
    elif command == "check":
        cni.check_network_list(net, rt)
    elif command == "del":
        cni.del_network_list(net, rt)
    else:  # pragma: no cover - the dispatch table only routes the five verbs here
        raise UsageError(f'unknown command "{command}"')
    return 0


def _plugin_types(net) -> list[str]:
    """The plugin types a network list runs: each plugin's, and its IPAM's."""
    types = []
    for plugin in net.plugins:
        types.append(plugin.type)
        ipam = plugin.raw.get("ipam") if isinstance(plugin.raw, dict) else None
        if isinstance(ipam, dict) and isinstance(ipam.get("type"), str):
            types.append(ipam["type"])
    return types


def _capability_args(text: str) -> dict | None:
    """CAP_ARGS as Go's json.Unmarshal into map[string]interface{} reads it."""
    from pycni.invoke import UntypedError
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
