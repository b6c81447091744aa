"""`pycni demo dhcp`: the CNI talk's first order, macvlan + DHCP, in a sandbox.

Order matters: macvlan creates the container's interface on the sandbox
host's uplink, then DHCP runs through that interface (pycni's `dhcp daemon`
keeps the lease), then macvlan configures it with the leased address. The
LAN is a bridge in a namespace of its own with dnsmasq as its DHCP server;
the uplink is a veth from the sandbox host into it. Two containers get
leases, ping each other and the server, and DEL hands the leases back (the
server's lease file shows it). Nothing outside the sandbox is touched.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from pycni.cli.demo_sandbox import DemoFailed, Sandbox, check_all, ms, say, spawn, stop, table

LAN_BRIDGE = "lan0"
UPLINK = "uplink"
SERVER_CIDR = "198.18.64.1/24"
SERVER_IP = SERVER_CIDR.split("/")[0]
LEASE_RANGE = "198.18.64.100,198.18.64.150,255.255.255.0,2m"
NETWORK = "lan"


def _build_lan(host: str, lan: str) -> None:
    """lan0 (with the server's address) in `lan`, a veth from it to `host`'s uplink."""
    from pycni.kernel.netlink import RtNetlink

    with RtNetlink(lan) as nl:
        nl.link_add_bridge(LAN_BRIDGE)
        nl.link_add_veth("lanport", UPLINK, peer_netns=host)
        bridge = nl.link_get(LAN_BRIDGE)
        nl.link_set(nl.link_get("lanport"), master=bridge.index, up=True)
        nl.link_set(bridge, up=True)
        nl.addr_add(bridge.index, SERVER_CIDR)
    with RtNetlink(host) as nl:
        nl.link_set(nl.link_get(UPLINK), up=True)


def _wait_for_socket(path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DemoFailed(f"the dhcp daemon did not start: {log.read_text(errors='replace')}")
        time.sleep(0.02)


def leases(lease_file: Path) -> dict[str, str]:
    """dnsmasq's lease file as {address: client id}; the id is printed as
    text when it is pycni's "<type 0><container>/<network>/<ifname>"."""
    held = {}
    text = lease_file.read_text() if lease_file.exists() else ""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        client_id = fields[4]
        try:
            raw = bytes.fromhex(client_id.replace(":", ""))
            if raw[:1] == b"\0" and raw[1:].isascii():
                client_id = raw[1:].decode()
        except ValueError:
            pass
        held[fields[2]] = client_id
    return held


def network_bytes(socket_path: str) -> bytes:
    import json

    conf = {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "macvlan",
                "master": UPLINK,
                "mode": "bridge",
                "ipam": {"type": "dhcp", "daemonSocketPath": socket_path},
            }
        ],
    }
    return json.dumps(conf, indent=2).encode()


def run_demo(out=say, trap=None) -> None:
    from pycni.cli.install import install
    from pycni.cli.ping import ping
    from pycni.kernel import netns
    from pycni.runtime import CNIConfig, RuntimeConf
    from pycni.spec.config import network_config_list_from_bytes

    box = Sandbox()
    try:
        box.host = box.new_netns("host")
        lan = box.new_netns("lan")
        _build_lan(box.host, lan)
        lease_file = box.tmp / "dnsmasq.leases"
        dnsmasq = spawn(
            [
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                f"--interface={LAN_BRIDGE}",
                "--bind-interfaces",
                f"--dhcp-range={LEASE_RANGE}",
                f"--dhcp-leasefile={lease_file}",
                "--dhcp-authoritative",
                # dnsmasq pings an address for 3 s before it offers it; nobody
                # else is on this LAN, and the wait would hide the plugins' time
                "--no-ping",
            ],
            lan,
            box.tmp / "dnsmasq.log",
        )
        box.defer(stop, dnsmasq)
        bin_dir = box.tmp / "bin"
        install(bin_dir)
        socket_path = box.tmp / "run" / "dhcp.sock"
        daemon_log = box.tmp / "dhcp-daemon.log"
        daemon = spawn(
            [str(bin_dir / "dhcp"), "daemon", "-socketpath", str(socket_path)],
            box.host,
            daemon_log,
        )
        box.defer(stop, daemon)
        _wait_for_socket(socket_path, daemon, daemon_log)
        net = network_config_list_from_bytes(network_bytes(str(socket_path)))
        cni = CNIConfig(path=[str(bin_dir)], cache_dir=str(box.tmp / "cache"), timeout=60)
        out("pycni demo dhcp: macvlan + DHCP (the talk's first order), in a throwaway sandbox\n")
        out(f"  LAN                 bridge {LAN_BRIDGE} in {lan}, dnsmasq at {SERVER_IP}")
        out(f"  sandbox host netns  {box.host}, uplink {UPLINK} into the LAN")
        out(f"  network             {NETWORK}: macvlan (master {UPLINK}, bridge mode) + dhcp")
        out(f"  dhcp daemon         pid {daemon.pid}, {socket_path}\n")

        containers = {}
        with netns.enter(box.host):
            for name in ("a", "b"):
                rt = RuntimeConf(
                    f"pycni-demo-{name}-{box.tag}", box.new_netns(f"ctr-{name}"), "eth0"
                )
                start = time.monotonic()
                result = cni.add_network_list(net, rt)
                out(f"[1] ADD   container {name}: ok ({ms(start)}): macvlan, DHCP lease, configure")
                containers[name] = (rt, result)

        rows = [["CONTAINER", "IFACE", "MAC", "ADDRESS", "GATEWAY"]]
        for name, (_, result) in containers.items():
            iface = next(i for i in result.interfaces if i.sandbox)
            for ip in result.ips:
                rows.append([name, iface.name, iface.mac, ip.address, ip.gateway or "-"])
        out("\n" + table(rows) + "\n")
        held = leases(lease_file)
        for address, client_id in sorted(held.items()):
            out(f"[2] LEASE {address} to client id {client_id!r} (dnsmasq's lease file)")

        leased = {n: r.ips[0].address.split("/")[0] for n, (_, r) in containers.items()}
        for src, dst, target in (
            ("a", "b", leased["b"]),
            ("b", "a", leased["a"]),
            ("a", "server", SERVER_IP),
            ("b", "server", SERVER_IP),
        ):
            rtts = ping(containers[src][0].netns, target, count=3)
            if not rtts:
                raise DemoFailed(f"ping {src} -> {dst} ({target}): no reply")
            out(f"[3] PING  {src} -> {dst} ({target}): {len(rtts)}/3 replies")

        with netns.enter(box.host):
            check_all(out, cni, net, containers)
            for name, (rt, _) in containers.items():
                start = time.monotonic()
                cni.del_network_list(net, rt)
                out(f"[5] DEL   container {name}: ok ({ms(start)}): DHCPRELEASE, link deleted")

        left = leases(lease_file)
        cached = [a.container_id for a in cni.get_cached_attachments("")]
        out("\n[6] LEFT  after DEL:")
        out(f"      leases on the server  {', '.join(sorted(left)) or 'none'}")
        out(f"      cached results        {', '.join(cached) or 'none'}")
        if left or cached:
            raise DemoFailed("DEL left state behind")
    finally:
        box.close(trap)
    box.verify_removed(out, 22, note=", 2 processes")
