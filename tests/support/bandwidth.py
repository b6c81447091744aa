"""Helpers of the bandwidth plugin tests: a veth pair to chain after, the
kernel state read back with `tc` and `ip`, and the netlink messages a plugin
process sends, read with strace."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from pycni.skel.testing import Outcome, plugin_argv, run_plugin

from support.sandbox import ip, ip_json

PLUGIN = "pycni.plugins.meta.bandwidth"
GO_PLUGIN = Path("/usr/lib/cni/bandwidth")


class Attachment:
    """A veth pair made by hand in the sandbox host netns the test thread is
    in: `host` (bwh<hex>) there, `ifname` in the container netns `ct`, both
    up; `prev(version)` is the prevResult an interface plugin would pass."""

    def __init__(
        self,
        ct,
        ifname: str = "eth0",
        host: str | None = None,
        mtu: int = 1500,
        addrs: tuple[str, str] | None = None,
        container_id: str | None = None,
    ) -> None:
        self.ct = ct
        self.ifname = ifname
        self.host = host or "bwh" + secrets.token_hex(4)
        self.container_id = container_id or "bwctr-" + secrets.token_hex(4)
        ip("link", "add", self.host, "mtu", str(mtu), "type", "veth", "peer", "name", ifname,
           "netns", ct.name)  # fmt: skip
        ip("link", "set", self.host, "up")
        ip("link", "set", ifname, "up", netns=ct.name)
        if addrs:
            ip("addr", "add", addrs[0], "dev", self.host)
            ip("addr", "add", addrs[1], "dev", ifname, netns=ct.name)
        self.host_mac = link(self.host)["address"]
        self.ct_mac = link(ifname, ct.name)["address"]

    def prev(self, version: str = "1.0.0", **extra) -> dict:
        return {
            "cniVersion": version,
            "interfaces": [
                {"name": self.host, "mac": self.host_mac},
                {"name": self.ifname, "mac": self.ct_mac, "sandbox": self.ct.path},
            ],
            "ips": [{"address": "198.18.40.2/24", "interface": 1}],
            **extra,
        }

    def conf(self, version: str = "1.0.0", name: str = "bwnet", prev: bool = True, **keys) -> dict:
        c: dict = {"cniVersion": version, "name": name, "type": "bandwidth", **keys}
        if prev:
            c["prevResult"] = self.prev(version)
        return c

    def run(self, command: str, conf, plugin: str = PLUGIN, **kw) -> Outcome:
        kw.setdefault("netns", self.ct.path)
        kw.setdefault("container_id", self.container_id)
        kw.setdefault("ifname", self.ifname)
        return run_plugin(plugin, command, conf, **kw)


# --- kernel state -------------------------------------------------------------------------


def link(name: str, netns: str | None = None) -> dict:
    return ip_json("-d", "link", "show", "dev", name, netns=netns)[0]


def ifbs(netns: str | None = None) -> dict[str, dict]:
    return {x["ifname"]: x for x in ip_json("-d", "link", "show", "type", "ifb", netns=netns)}


def tc_json(*args: str) -> list:
    """`tc -j <args>` in the netns the calling thread is in."""
    out = subprocess.run(["tc", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def qdiscs(dev: str) -> list[dict]:
    """The qdiscs of `dev` as `tc -j qdisc show` reports them, the default
    (noqueue, handle 0:) left out."""
    return [q for q in tc_json("qdisc", "show", "dev", dev) if q.get("handle") != "0:"]


def filters(dev: str) -> list[dict]:
    return tc_json("filter", "show", "dev", dev, "ingress")


def normalized(entries: list[dict], names: dict[str, str]) -> list[dict]:
    """tc JSON with device names replaced (`names`: name -> placeholder)."""
    text = json.dumps(entries)
    for name, placeholder in names.items():
        text = text.replace(f'"{name}"', f'"{placeholder}"')
    return json.loads(text)


# --- what a plugin sends, through strace ----------------------------------------------------

_SENDTO = re.compile(r"^\d+\s+sendto\(\d+, ")
_DUMP = re.compile(r"^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2}){1,16})")


def traced_run(plugin: str, command: str, conf: dict, log: Path, **env: str) -> tuple:
    """Run `plugin` (a path, or a pycni module) under strace: its Outcome and
    the netlink messages it sent, as (type, flags, payload) tuples."""
    environ = {**os.environ, "CNI_COMMAND": command, "CNI_PATH": "/nonexistent", **env}
    argv = ["strace", "-f", "-qq", "-e", "trace=sendto", "-e", "write=all", "-o", str(log)]
    argv += [plugin] if os.sep in plugin else plugin_argv(plugin)
    proc = subprocess.run(argv, input=json.dumps(conf).encode(), capture_output=True, env=environ)
    outcome = Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    return outcome, sent_messages(log.read_text())


def sent_messages(strace_text: str) -> list[tuple[int, int, bytes]]:
    msgs: list[bytearray] = []
    for line in strace_text.splitlines():
        if _SENDTO.match(line):
            msgs.append(bytearray())
            continue
        m = _DUMP.match(line)
        if m and msgs:
            msgs[-1] += bytes.fromhex(m.group(1).replace(" ", ""))
    out = []
    for raw in msgs:
        if len(raw) < 16:
            continue
        mtype = int.from_bytes(raw[4:6], sys.byteorder)
        flags = int.from_bytes(raw[6:8], sys.byteorder)
        out.append((mtype, flags, bytes(raw[16:])))
    return out
