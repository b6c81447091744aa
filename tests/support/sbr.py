"""Helpers of the sbr tests: a container netns with a veth, addresses and
routes as an interface plugin would leave them, prevResults naming them, and
the netns's rules and routes read back with `ip -j` for comparison.

Both ends of the veth stay in the container netns (sbr never looks outside
it), with fixed MACs and IPv6 DAD off, so the link-local addresses and
routes of a Go twin and a pycni twin are the same and stable at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pycni.skel.testing import Outcome, run_plugin

from support.sandbox import Netns, in_netns, ip, ip_json

PLUGIN = "pycni.plugins.meta.sbr"
GO_SBR = Path("/usr/lib/cni/sbr")
CONTAINER_ID = "sbr-ctr"
NETWORK = "sbrnet"
#: the prevResult's sandbox text: sbr only passes it through, so both twins
#: get the same one and their results compare without normalizing paths
SANDBOX = "/run/netns/sbr-sandbox"
GO_VERSIONS = ("0.3.1", "0.4.0", "1.0.0")


def macs(ifname: str) -> tuple[str, str]:
    """Fixed MACs of <ifname> and its peer (per name, so eth0 and eth1 differ)."""
    n = sum(ifname.encode()) & 0xFF
    return f"02:00:5e:18:{n:02x}:02", f"02:00:5e:18:{n:02x}:01"


def prepare(
    ns: Netns,
    *,
    ifname: str = "eth0",
    addrs: tuple[str, ...] = (),
    routes: tuple[str, ...] = (),
    rules: tuple[str, ...] = (),
) -> None:
    """Give `ns` a veth `ifname` (peer `sbrp-<ifname>`) up with `addrs`, then
    the `ip route add` argument strings `routes` and `ip rule add` strings
    `rules` (an IPv6 rule starts with "-6")."""
    sysctls = ("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
    in_netns(ns.name, "sysctl", "-qw", *sysctls, check=True, capture_output=True)
    mac, peer_mac = macs(ifname)
    peer = f"sbrp-{ifname}"
    ip("link", "add", ifname, "address", mac, "type", "veth", "peer", "name", peer,
       "address", peer_mac, netns=ns.name)  # fmt: skip
    ip("link", "set", ifname, "up", netns=ns.name)
    ip("link", "set", peer, "up", netns=ns.name)
    for addr in addrs:
        ip("addr", "add", addr, "dev", ifname, *(("nodad",) if ":" in addr else ()), netns=ns.name)
    wait_settled(ns, ifname)
    for route in routes:
        ip("route", "add", *route.split(), netns=ns.name)
    for rule in rules:
        words = rule.split()
        family = [words.pop(0)] if words[0] in ("-4", "-6") else []
        ip(*family, "rule", "add", *words, netns=ns.name)


def wait_settled(ns: Netns, ifname: str, timeout: float = 5.0) -> None:
    """Carrier up and no tentative IPv6 address, so routes stop changing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link = ip_json("link", "show", "dev", ifname, netns=ns.name)[0]
        tentative = ip_json("-6", "addr", "show", "tentative", netns=ns.name)
        if link.get("operstate") == "UP" and not tentative:
            return
        time.sleep(0.02)
    raise AssertionError(f"{ifname} in {ns.name} did not settle")


def state(ns: Netns) -> dict[str, list]:
    """The rules and the routes of every table, per family, as `ip -j`
    prints them, each list sorted (so it compares as a set)."""
    out = {}
    for fam in ("-4", "-6"):
        out[f"rules{fam}"] = _sorted(ip_json(fam, "rule", "show", netns=ns.name))
        out[f"routes{fam}"] = _sorted(ip_json(fam, "route", "show", "table", "all", netns=ns.name))
    return out


def _sorted(items: list) -> list:
    return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))


def rules_to(ns: Netns, table: int | str) -> list[tuple[int, str]]:
    """(priority, src) of the rules that look up `table`, both families."""
    out = []
    for fam in ("-4", "-6"):
        for rule in ip_json(fam, "rule", "show", netns=ns.name):
            if str(rule.get("table")) == str(table):
                out.append((rule["priority"], rule.get("src", "all")))
    return sorted(out)


def routes_in(ns: Netns, table: int | str) -> list[dict]:
    """The routes of one table ("main" included), both families (`ip -j`),
    sorted; a table that does not exist has none."""
    out = []
    for fam in ("-4", "-6"):
        for route in ip_json(fam, "route", "show", "table", "all", netns=ns.name):
            if str(route.get("table", "main")) == str(table):
                out.append(route)
    return _sorted(out)


def prev_result(
    ips: list[tuple[str, str | None, int | None]],
    interfaces: tuple[str, ...] = ("eth0",),
    routes: list[dict] | None = None,
    cni_version: str = "1.0.0",
) -> dict:
    """A prevResult: ips as (address, gateway or None, interface index or None)."""
    out: dict = {
        "cniVersion": cni_version,
        "interfaces": [{"name": name, "sandbox": SANDBOX} for name in interfaces],
        "ips": [],
    }
    for addr, gw, idx in ips:
        entry: dict = {"address": addr}
        if gw:
            entry["gateway"] = gw
        if idx is not None:
            entry["interface"] = idx
        if cni_version < "0.3":
            raise ValueError("use a 0.3.0+ prevResult")
        if cni_version in ("0.3.0", "0.3.1", "0.4.0"):
            entry["version"] = "6" if ":" in addr else "4"
        out["ips"].append(entry)
    if routes:
        out["routes"] = routes
    return out


def conf(prev: dict | None, cni_version: str = "1.0.0", **keys) -> dict:
    out: dict = {"cniVersion": cni_version, "name": NETWORK, "type": "sbr", **keys}
    if prev is not None:
        out["prevResult"] = prev
    return out


def run(
    plugin: str, command: str, config: dict | bytes, ns: Netns | str | None, ifname: str = "eth0"
) -> Outcome:
    netns = ns.path if isinstance(ns, Netns) else (ns or "")
    return run_plugin(
        plugin, command, config, netns=netns, container_id=CONTAINER_ID, ifname=ifname
    )


def normalize_result(result: dict | None) -> dict | None:
    """Go prints "dns": {} in 1.x results; pycni leaves an empty DNS out."""
    if result and result.get("dns") == {}:
        result = {k: v for k, v in result.items() if k != "dns"}
    return result
