"""Helpers of the portmap plugin tests: configs, runs, the state witnesses
(`nft list table`, `iptables-save -t nat` normalized) and the reference's
nftables rule text.

`reference_nft_script` is a port of the reference's nftables backend
(plugins/meta/portmap/portmap_nftables.go, forwardPorts, at the HEAD of
containernetworking/plugins): the same transaction, written as the `nft`
commands knftables sends. Applied with the `nft` binary in a twin sandbox
netns, it is the witness the plugin's own netlink-built rules are compared
with.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

from pycni.skel.testing import Outcome, run_plugin

PLUGIN = "pycni.plugins.meta.portmap"
GO_PLUGIN = Path("/usr/lib/cni/portmap")
NETWORK = "pmnet"
TABLE = "cni_hostport"

V4 = "198.18.0.5/24"
V6 = "fd00:18::5/64"


def prev_result(ips=(V4, V6), sandbox: str = "/run/netns/pm-x", ifname: str = "eth0") -> dict:
    """What bridge would hand portmap: bridge, host veth, container interface."""
    return {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "pmbr0", "mac": "02:00:00:00:00:01"},
            {"name": "pmveth0", "mac": "02:00:00:00:00:02"},
            {"name": ifname, "mac": "02:00:00:00:00:03", "sandbox": sandbox},
        ],
        "ips": [{"address": a, "interface": 2} for a in ips],
    }


def mapping(host: int, ctr: int, proto: str = "tcp", host_ip: str | None = None) -> dict:
    m: dict = {"hostPort": host, "containerPort": ctr, "protocol": proto}
    if host_ip is not None:
        m["hostIP"] = host_ip
    return m


#: every protocol, hostIPs of both families and both unspecified forms
MIXED_MAPPINGS = [
    mapping(8080, 80),
    mapping(8083, 83, "udp", "198.18.1.1"),
    mapping(9000, 90, "sctp"),
    mapping(9001, 91, "tcp", "fd00:1::1"),
    mapping(9002, 92, "udp", "0.0.0.0"),
    mapping(9003, 93, "tcp", "::"),
]


def make_conf(
    mappings: list[dict] | None,
    prev: dict | None = None,
    cni_version: str = "1.0.0",
    name: str = NETWORK,
    **keys,
) -> dict:
    conf: dict = {"cniVersion": cni_version, "name": name, "type": "portmap"}
    conf.update(keys)
    if mappings is not None:
        conf["runtimeConfig"] = {"portMappings": mappings}
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def run(
    command: str,
    conf: dict,
    ct=None,
    container_id: str = "pmctr",
    plugin: str = PLUGIN,
    **kw,
) -> Outcome:
    """One verb in the calling thread's netns (the sandbox host)."""
    return run_plugin(
        plugin,
        command,
        conf,
        netns=ct.path if ct is not None else "",
        container_id=container_id,
        **kw,
    )


# --- witnesses ---------------------------------------------------------------------------


def tool(*argv: str, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr}"
    return proc.stdout


def nft_table(family: str) -> str:
    """`nft list table <family> cni_hostport` ('' when there is none)."""
    proc = subprocess.run(["nft", "list", "table", family, TABLE], capture_output=True, text=True)
    return proc.stdout


def nft_ruleset() -> str:
    return tool("nft", "list", "ruleset")


def nft_rules_with_comment(comment: str) -> list[str]:
    """The rule lines of the calling netns's ruleset commented `comment`."""
    return [line.strip() for line in nft_ruleset().splitlines() if f'comment "{comment}"' in line]


_COUNTERS = re.compile(r"\[\d+:\d+\]")


def nat_table(v6: bool = False) -> list[str]:
    """`iptables-save -t nat` (or ip6tables-save) without comment lines and
    counters, in the tool's order."""
    out = tool("ip6tables-save" if v6 else "iptables-save", "-t", "nat")
    return [_COUNTERS.sub("[0:0]", line) for line in out.splitlines() if not line.startswith("#")]


def nat_tables() -> dict[str, list[str]]:
    return {"ipv4": nat_table(False), "ipv6": nat_table(True)}


#: what `iptables-save -t nat` shows of an untouched nat table
BUILTIN_NAT = [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    "COMMIT",
]
#: the chains portmap creates once and never removes
TOP_CHAINS = (
    ":CNI-HOSTPORT-DNAT - [0:0]",
    ":CNI-HOSTPORT-MASQ - [0:0]",
    ":CNI-HOSTPORT-SETMARK - [0:0]",
)


def container_lines(lines: list[str]) -> list[str]:
    """The lines of a nat dump that belong to a container: its CNI-DN- chain,
    its rules and the entry rules jumping to it."""
    return [line for line in lines if "CNI-DN-" in line]


def route_localnet(dev: str) -> str:
    return Path(f"/proc/sys/net/ipv4/conf/{dev}/route_localnet").read_text().strip()


# --- the reference's nftables rule text -----------------------------------------------------


def reference_nft_script(conf: dict, container_ip: str, container_id: str) -> str:
    """The `nft -f` text of the reference's forwardPorts for one family
    (as knftables writes its transaction: named priorities as numbers)."""
    addr = ipaddress.ip_interface(container_ip).ip
    v6 = addr.version == 6
    fam = "ip6" if v6 else "ip"
    key = "conditionsV6" if v6 else "conditionsV4"
    conditions = " ".join(conf.get(key) or [])
    snat = conf.get("snat", True)
    masq_all = conf.get("masqAll", False)
    t = f"{fam} {TABLE}"
    lines = [
        f'add table {t} {{ comment "CNI portmap plugin" ; }}',
        f"add chain {t} hostports",
        f"add chain {t} hostip_hostports",
        f"add chain {t} hostports_all",
        f"flush chain {t} hostports_all",
        f"add rule {t} hostports_all jump hostip_hostports",
        f"add rule {t} hostports_all jump hostports",
    ]
    for hook in ("prerouting", "output"):
        lines += [
            f"add chain {t} {hook} {{ type nat hook {hook} priority -100 ; }}",
            f"flush chain {t} {hook}",
            f"add rule {t} {hook} {conditions} fib daddr type local jump hostports_all".replace(
                "  ", " "
            ),
        ]
    if snat:
        lines.append(f"add chain {t} masquerading {{ type nat hook postrouting priority 100 ; }}")
    target = f"[{addr}]" if v6 else str(addr)
    for m in conf.get("runtimeConfig", {}).get("portMappings", []):
        match = ""
        host_ip = m.get("hostIP", "")
        if host_ip:
            hip = ipaddress.ip_address(host_ip)
            if (hip.version == 6) != v6:
                continue
            if not hip.is_unspecified:
                match = f"{fam} daddr {host_ip} "
        lines.append(
            f"add rule {t} hostports {match}{m['protocol']} dport {m['hostPort']} "
            f'dnat to {target}:{m["containerPort"]} comment "{container_id}"'
        )
    if snat:
        src = ("::/0" if v6 else "0.0.0.0/0") if masq_all else str(addr)
        lines.append(
            f"add rule {t} masquerading {fam} saddr {src} {fam} daddr {addr} masquerade "
            f'comment "{container_id}"'
        )
        if not v6 and not masq_all:
            lines.append(
                f"add rule {t} masquerading {fam} saddr 127.0.0.1 {fam} daddr {addr} "
                f'masquerade comment "{container_id}"'
            )
    return "\n".join(lines) + "\n"


def apply_nft(script: str) -> None:
    tool("nft", "-f", "-", stdin=script)


# --- traffic -------------------------------------------------------------------------------

#: a TCP server: accepts, sends "pong <its port>" and closes, forever
SERVER = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"pong " + sys.argv[2].encode())
    c.close()
"""

#: a TCP client: connects, prints what it got ("" on failure)
CLIENT = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print(s.recv(100).decode())
except OSError as e:
    print("error", e)
"""


class Server:
    """A TCP server in netns `ns` (stopped by its PID in close()); bound to
    "::" it answers IPv4 too."""

    def __init__(self, ns_name: str, bind: str, port: int) -> None:
        import sys

        argv = ["ip", "netns", "exec", ns_name, sys.executable, "-c", SERVER, bind, str(port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline() if self.proc.stdout else b""
        if line.strip() != b"ready":
            err = self.proc.stderr.read() if self.proc.stderr else b""
            self.close()
            raise RuntimeError(f"server did not start: {err!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def connect(host: str, port: int, ns_name: str | None = None, timeout: float = 2.0) -> str:
    """What a client in netns `ns_name` (the calling thread's netns if None)
    receives from host:port."""
    import sys

    argv = [sys.executable, "-c", CLIENT, host, str(port), str(timeout)]
    if ns_name is not None:
        argv = ["ip", "netns", "exec", ns_name, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
