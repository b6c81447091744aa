"""Helpers of the bridge plugin tests: config building and kernel state readers."""

from __future__ import annotations

import json
from pathlib import Path

from support.cni import HostLocalNet
from support.sandbox import in_netns, ip_json, iptables_save

PLUGIN = "pycni.plugins.main.bridge"


class Net(HostLocalNet):
    """Builds bridge configs for one test and runs the plugin against them."""

    PLUGIN = PLUGIN

    def __init__(self, brname: str, data_dir: Path, cni_path: list[str]) -> None:
        super().__init__(data_dir, cni_path, "pycnet")
        self.brname = brname

    def conf(
        self,
        cni_version: str = "1.0.0",
        subnets=("198.18.5.0/24",),
        l2: bool = False,
        ipam: dict | None = None,
        **keys,
    ) -> dict:
        c: dict = {
            "cniVersion": cni_version,
            "name": self.name,
            "type": "bridge",
            "bridge": self.brname,
        }
        if l2:
            c["ipam"] = {}
        elif ipam is not None:
            c["ipam"] = ipam
        else:
            c["ipam"] = self.host_local(subnets)
        c.update(keys)
        return c


# --- reading kernel state back -----------------------------------------------------


def links(netns: str | None = None) -> dict[str, dict]:
    return {link["ifname"]: link for link in ip_json("-d", "link", "show", netns=netns)}


def veths_on(brname: str) -> list[dict]:
    return [
        link
        for link in links().values()
        if link.get("master") == brname and link["ifname"].startswith("veth")
    ]


def addrs(dev: str, netns: str | None = None, scope: str = "global") -> list[str]:
    out = []
    for entry in ip_json("addr", "show", "dev", dev, netns=netns):
        for a in entry.get("addr_info", []):
            if a.get("scope") == scope:
                out.append(f"{a['local']}/{a['prefixlen']}")
    return out


def routes(netns: str | None = None, family: str = "-4") -> list[dict]:
    return ip_json(family, "route", "show", netns=netns)


def sysctl_in(netns: str | None, name: str) -> str:
    path = "/proc/sys/" + name
    if netns is None:
        with open(path) as f:
            return f.read().strip()
    proc = in_netns(netns, "cat", path, capture_output=True, text=True)
    return proc.stdout.strip()


def brport(dev: str) -> dict:
    """Bridge-port flags of `dev` as `ip -d` reports them (info_slave_data)."""
    info = ip_json("-d", "link", "show", dev)[0].get("linkinfo", {})
    return info.get("info_slave_data", {})


def dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


# --- whole-state snapshots for the differential tests ---------------------------------

HOST_SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")
LINK_SYSCTLS = ("net/ipv6/conf/{}/accept_ra",)
CONTAINER_SYSCTLS = (
    "net/ipv6/conf/{}/accept_dad",
    "net/ipv6/conf/{}/enhanced_dad",
    "net/ipv4/conf/{}/arp_notify",
    "net/ipv6/conf/{}/disable_ipv6",
    "net/ipv6/conf/lo/disable_ipv6",
)
_PORT_FLAGS = ("hairpin", "isolated", "learning", "flood", "state")


def _norm_name(name: str | None, brname: str) -> str | None:
    if name is None:
        return None
    if name == brname:
        return "<br>"
    if name.startswith(brname + "."):
        return "<br>" + name[len(brname) :]
    if name.startswith("veth") and len(name) == 12:
        return "veth*"
    return name


def _links_state(netns: str | None, brname: str) -> dict:
    out = {}
    for link in ip_json("-d", "link", "show", netns=netns):
        name = _norm_name(link["ifname"], brname)
        info = link.get("linkinfo", {})
        entry = {
            "kind": info.get("info_kind"),
            "slave_kind": info.get("info_slave_kind"),
            "flags": sorted(link.get("flags", [])),
            "mtu": link.get("mtu"),
            "operstate": link.get("operstate"),
            "master": _norm_name(link.get("master"), brname),
            "promiscuity": link.get("promiscuity"),
            "num_tx_queues": link.get("num_tx_queues"),
            "addrs": [],
        }
        data = info.get("info_data") or {}
        if entry["kind"] == "bridge":
            entry["vlan_filtering"] = data.get("vlan_filtering")
        slave = info.get("info_slave_data") or {}
        for flag in _PORT_FLAGS:
            if flag in slave:
                entry["port_" + flag] = slave[flag]
        out.setdefault(name, []).append(entry)
    for entry in ip_json("addr", "show", netns=netns):
        name = _norm_name(entry["ifname"], brname)
        for a in entry.get("addr_info", []):
            if a.get("scope") == "link":
                rec = f"{a['family']} link-local/{a['prefixlen']}"
            else:
                rec = f"{a['local']}/{a['prefixlen']} scope {a.get('scope')}"
                if a.get("noprefixroute"):
                    rec += " noprefixroute"
                if a.get("nodad"):
                    rec += " nodad"
            for link in out[name]:
                link["addrs"].append(rec)
    for entries in out.values():
        for e in entries:
            e["addrs"].sort()
        entries.sort(key=lambda e: json.dumps(e, sort_keys=True))
    return out


def _routes_state(netns: str | None, brname: str) -> list[str]:
    out = []
    for family in ("-4", "-6"):
        for r in ip_json(family, "route", "show", "table", "all", netns=netns):
            if r.get("table") == "local":
                continue
            parts = [family, r.get("type", "unicast"), r["dst"]]
            if r.get("gateway"):
                parts.append("via " + r["gateway"])
            for hop in r.get("nexthops", []):
                parts.append(
                    f"nexthop via {hop.get('gateway')} dev {_norm_name(hop.get('dev'), brname)}"
                )
            parts.append("dev " + str(_norm_name(r.get("dev"), brname)))
            for key in ("table", "protocol", "scope", "metric", "prefsrc", "pref"):
                if key in r:
                    parts.append(f"{key} {r[key]}")
            if r.get("flags"):
                parts.append("flags " + ",".join(sorted(r["flags"])))
            out.append(" ".join(parts))
    return sorted(out)


def _sysctl(netns: str | None, name: str) -> str:
    path = "/proc/sys/" + name
    if netns is None:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return "<missing>"
    proc = in_netns(netns, "cat", path, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "<missing>"


def snapshot(
    brname: str, ct_name: str, ifname: str = "eth0", skip_sysctls=(), settle: bool = False
) -> dict:
    """Links (kind, flags, master, mtu, port flags, addresses), routes and the
    sysctls the bridge plugin touches, in the sandbox host netns the test
    thread is in and in the container netns; random names are normalized."""
    host_links = _links_state(None, brname)
    host_routes = _routes_state(None, brname)
    if settle:
        # a bridge that lost its last port drops its carrier asynchronously
        for link in host_links.get("<br>", []):
            link["flags"] = [f for f in link["flags"] if f != "NO-CARRIER"]
            link.pop("operstate")
        host_routes = [r.replace(" flags linkdown", "") for r in host_routes]
    sysctls = {name: _sysctl(None, name) for name in HOST_SYSCTLS}
    for link in ip_json("link", "show"):
        for tmpl in LINK_SYSCTLS:
            sysctls[tmpl.format(_norm_name(link["ifname"], brname))] = _sysctl(
                None, tmpl.format(link["ifname"])
            )
    for tmpl in CONTAINER_SYSCTLS:
        sysctls["ct:" + tmpl.format(ifname)] = _sysctl(ct_name, tmpl.format(ifname))
    for name in skip_sysctls:
        sysctls.pop(name, None)
    return {
        "host_links": host_links,
        "host_routes": host_routes,
        "ct_links": _links_state(ct_name, brname),
        "ct_routes": _routes_state(ct_name, brname),
        "sysctls": sysctls,
        "nat": iptables_nat(),
    }


def iptables_nat() -> dict:
    out = {}
    for v6 in (False, True):
        lines = [
            line for line in iptables_save(v6).splitlines() if line and not line.startswith("#")
        ]
        out["ip6tables" if v6 else "iptables"] = lines
    return out


def normalize_result(result: dict, brname: str, netns: str) -> dict:
    """Random parts of a result (veth names, MACs, sandbox path) replaced;
    an empty "dns" dropped (Go prints "dns": {} for 1.x results)."""
    text = json.dumps(result)
    text = text.replace(netns, "<netns>").replace(brname, "<br>")
    out = json.loads(text)
    for intf in out.get("interfaces", []):
        if intf.get("name", "").startswith("veth"):
            intf["name"] = "veth*"
        if "mac" in intf:
            intf["mac"] = "<mac>"
    if out.get("dns") == {}:
        del out["dns"]
    return out


def go_plugin(name: str) -> Path:
    """A Go reference plugin from Debian's containernetworking-plugins, or skip."""
    import os

    import pytest

    path = Path("/usr/lib/cni") / name
    if not os.access(path, os.X_OK):
        pytest.skip(f"Go reference plugin {path} not installed")
    return path


def diff(go, py, path: str = "") -> list[str]:
    """The differing leaves of two JSON-like values, as "path: go != py"."""
    if isinstance(go, dict) and isinstance(py, dict):
        out = []
        for key in sorted(set(go) | set(py), key=str):
            out += diff(go.get(key, "<absent>"), py.get(key, "<absent>"), f"{path}/{key}")
        return out
    if isinstance(go, list) and isinstance(py, list) and len(go) == len(py):
        out = []
        for i, (a, b) in enumerate(zip(go, py)):
            out += diff(a, b, f"{path}[{i}]")
        return out
    return [] if go == py else [f"{path}: go={go!r} py={py!r}"]


def ping(src_ns, address: str, timeout: float = 2.0) -> bool:
    """One ICMP echo from inside `src_ns` (a sandbox Netns) to `address`
    (IPv4 or IPv6); True when the reply comes back. No ping binary needed."""
    import os
    import socket
    import struct
    import time

    from support.sandbox import entered

    v6 = ":" in address
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    with entered(src_ns):
        sock = socket.socket(family, socket.SOCK_RAW, proto)
    ident = os.getpid() & 0xFFFF
    kind, reply = (128, 129) if v6 else (8, 0)
    payload = b"pycni-bridge-test"
    header = struct.pack("!BBHHH", kind, 0, 0, ident, 1)
    data = header + payload
    csum = 0
    if not v6:  # the kernel fills in the ICMPv6 checksum
        padded = data + b"\0" * (len(data) % 2)
        words = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
        words = (words >> 16) + (words & 0xFFFF)
        csum = ~(words + (words >> 16)) & 0xFFFF
    packet = struct.pack("!BBHHH", kind, 0, csum, ident, 1) + payload
    deadline = time.monotonic() + timeout
    try:
        sock.settimeout(timeout)
        sock.sendto(packet, (address, 0))
        while time.monotonic() < deadline:
            try:
                raw, _ = sock.recvfrom(2048)
            except socket.timeout:  # an OSError, not TimeoutError, before 3.10
                return False
            icmp = raw if v6 else raw[(raw[0] & 0x0F) * 4 :]
            if len(icmp) >= 8 and icmp[0] == reply and struct.unpack("!H", icmp[4:6])[0] == ident:
                return True
        return False
    finally:
        sock.close()
