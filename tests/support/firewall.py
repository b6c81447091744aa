"""Helpers of the firewall plugin tests: configs, runs, and the state witnesses
(iptables-save / ip6tables-save of table filter, `nft -j list ruleset`)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from pycni.skel.testing import Outcome, run_plugin

PLUGIN = "pycni.plugins.meta.firewall"
GO_PLUGIN = Path("/usr/lib/cni/firewall")
NETWORK = "fwnet"


def prev_result(ips=("198.18.0.5/24",), bridge: str = "fwbr0", cni_version: str = "1.0.0") -> dict:
    """What `bridge` would hand the firewall: bridge, host veth, container eth0."""
    return {
        "cniVersion": cni_version,
        "interfaces": [
            {"name": bridge, "mac": "02:00:00:00:00:01"},
            {"name": "veth1234", "mac": "02:00:00:00:00:02"},
            {"name": "eth0", "mac": "02:00:00:00:00:03", "sandbox": "/run/netns/x"},
        ],
        "ips": [{"address": a, "interface": 2} for a in ips],
    }


def make_conf(cni_version: str = "1.0.0", prev: dict | None = None, **keys) -> dict:
    conf: dict = {"cniVersion": cni_version, "name": NETWORK, "type": "firewall"}
    conf.update(keys)
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def run(plugin: str, command: str, conf: dict, ct, container_id: str = "fwctr", **kw) -> Outcome:
    """One verb, in the calling thread's netns (the sandbox host)."""
    return run_plugin(
        plugin,
        command,
        conf,
        netns=ct.path if ct is not None else "",
        container_id=container_id,
        path=[str(GO_PLUGIN.parent)],
        **kw,
    )


def _tool(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr}"
    return proc.stdout


_COUNTERS = re.compile(r"\[\d+:\d+\]")


def filter_table(v6: bool = False) -> list[str]:
    """`iptables-save -t filter` (or ip6tables-save) of the calling thread's
    netns without comments and counters, in the tool's order."""
    out = _tool("ip6tables-save" if v6 else "iptables-save", "-t", "filter")
    return [_COUNTERS.sub("[0:0]", line) for line in out.splitlines() if not line.startswith("#")]


def filter_tables() -> dict[str, list[str]]:
    return {"ipv4": filter_table(False), "ipv6": filter_table(True)}


def iptables(*args: str, v6: bool = False) -> None:
    _tool("ip6tables" if v6 else "iptables", *args)


def nft_ruleset() -> list[dict]:
    """`nft -j list ruleset` without metainfo and handles: the objects as nft sees them."""
    data = json.loads(_tool("nft", "-j", "list", "ruleset"))
    out = []
    for item in data["nftables"]:
        if "metainfo" in item:
            continue
        ((kind, body),) = item.items()
        body = {k: v for k, v in body.items() if k != "handle"}
        out.append({kind: body})
    return out


def nft_rules(chain: str, table: str = "cni_firewall") -> list[dict]:
    return [
        item["rule"]
        for item in nft_ruleset()
        if "rule" in item and item["rule"]["table"] == table and item["rule"]["chain"] == chain
    ]


def nft_text() -> str:
    return _tool("nft", "list", "ruleset")


def nft(*args: str) -> None:
    _tool("nft", *args)


# --- traffic -----------------------------------------------------------------------------


class Routed:
    """Containers behind the sandbox host, which routes between them.

    Container i gets 198.18.<i>.2/24 on eth0, its peer `fwh<i>` in the host
    (or a port of bridge `fwbr<b>`) and the gateway 198.18.<i>.1 on the host
    side; the host forwards (ip_forward=1). Built in the calling thread's
    netns (the sandbox host)."""

    def __init__(self, netns_factory, host) -> None:
        self.factory = netns_factory
        self.host = host
        self.cts: dict[int, object] = {}

    def add(self, i: int, bridge: str | None = None):
        from support.sandbox import ip

        ct = self.factory(f"c{i}")
        host_if = f"fwh{i}"
        ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ct.name)
        gw_dev = host_if
        if bridge is not None:
            if not _link_exists(bridge):
                ip("link", "add", bridge, "type", "bridge")
                ip("link", "set", bridge, "up")
            ip("link", "set", host_if, "master", bridge)
            gw_dev = bridge
        ip("addr", "add", f"198.18.{i}.1/24", "dev", gw_dev)
        ip("link", "set", host_if, "up")
        ip("addr", "add", f"198.18.{i}.2/24", "dev", "eth0", netns=ct.name)
        ip("link", "set", "eth0", "up", netns=ct.name)
        ip("route", "add", "default", "via", f"198.18.{i}.1", netns=ct.name)
        _forward_in_sandbox(self.host)
        self.cts[i] = ct
        return ct

    @staticmethod
    def addr(i: int) -> str:
        return f"198.18.{i}.2"

    def ping(self, src: int, dst: int) -> bool:
        """One ICMP echo from container `src` to `dst` answered within 1 s
        (there is no ping binary here: a raw socket in a child process)."""
        import sys

        from support.sandbox import in_netns

        proc = in_netns(
            self.cts[src].name,
            sys.executable,
            "-c",
            _PING,
            self.addr(dst),
            capture_output=True,
        )
        return proc.returncode == 0


_PING = """
import os, select, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
dst = sys.argv[1]
ident = os.getpid() & 0xFFFF
body = struct.pack("!HH", ident, 1) + b"pycni-firewall"
pkt = struct.pack("!BBH", 8, 0, 0) + body
pkt = struct.pack("!BBH", 8, 0, csum(pkt)) + body
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(pkt, (dst, 0))
end = time.monotonic() + 1.0
while time.monotonic() < end:
    r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
    if not r:
        break
    data, addr = s.recvfrom(2048)
    icmp = data[(data[0] & 0x0F) * 4:]
    if addr[0] == dst and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"""


def _link_exists(name: str) -> bool:
    from support.sandbox import ip

    return bool(ip("-o", "link", "show", "dev", name, check=False).strip())


def _forward_in_sandbox(host) -> None:
    """ip_forward=1 in the calling thread's netns, which must be the sandbox `host`."""
    import os

    own, sandbox = os.stat("/proc/thread-self/ns/net"), os.stat(host.path)
    assert (own.st_dev, own.st_ino) == (sandbox.st_dev, sandbox.st_ino), "not in the sandbox"
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")
