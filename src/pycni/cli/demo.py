"""`pycni demo`: the main job, end to end, inside a throwaway sandbox.

A sandbox "host" namespace stands in for the machine, so the demo is safe
anywhere: two container namespaces are attached to the built-in default
network (bridge + host-local + portmap) by the pycni runtime executing the
installed pycni plugins, they ping each other, a service in one answers on a
host port of the sandbox host, CHECK passes, DEL removes everything, and
the sandbox goes away -- also when the demo is stopped with INT, TERM, HUP
or QUIT (see `pycni.cli.signals`).
"""

from __future__ import annotations

import time

from pycni.cli import defaultnet
from pycni.cli.demo_sandbox import DemoFailed, Sandbox, check_all, ms, say, table

HELP = """\
Everything happens in namespaces the demo creates and removes: a sandbox
"host" namespace stands in for this machine, so the real host's interfaces,
routes and sysctls are not touched. Needs root."""


HOST_PORT = 8080
CTR_PORT = 80
PORT_MAPPING = {"hostPort": HOST_PORT, "containerPort": CTR_PORT, "protocol": "tcp"}
GREETING = b"hello from container a"


def _port_mapping_round_trip(server_ns: str, client_ns: str, host_ip: str) -> bytes:
    """Serve one connection on CTR_PORT in the server's netns (a thread
    inside it) and connect from the client's netns to host_ip:HOST_PORT."""
    import socket
    import threading

    from pycni.kernel import netns

    with netns.enter(server_ns):
        listener = socket.create_server(("0.0.0.0", CTR_PORT))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(GREETING)
        except OSError:
            pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        with netns.enter(client_ns):
            client = socket.create_connection((host_ip, HOST_PORT), timeout=10)
        with client:
            return client.recv(64)
    except OSError as err:
        return str(err).encode()
    finally:
        server.join(10)
        listener.close()


def run_demo(out=say, trap=None) -> None:
    """The demo; `trap` (a `signals.Trap`) is held while the sandbox is removed."""
    from pycni.cli.install import install
    from pycni.kernel import netns
    from pycni.kernel.netlink import RtNetlink
    from pycni.runtime import CNIConfig, RuntimeConf

    box = Sandbox()
    try:
        box.host = box.new_netns("host")
        with netns.enter(box.host):
            bin_dir = box.tmp / "bin"
            install(bin_dir)
            data_dir = box.tmp / "networks"
            cni = CNIConfig(path=[str(bin_dir)], cache_dir=str(box.tmp / "cache"), timeout=30)
            net = defaultnet.default_network(str(data_dir))
            lo_net = defaultnet.loopback_network()
            out("pycni demo: two containers on the default network, in a throwaway sandbox\n")
            out(f"  sandbox host netns  {box.host}")
            out(f"  plugins             {bin_dir} (pycni install)")
            out(
                f"  network             {net.name}: bridge {defaultnet.DEFAULT_BRIDGE} + "
                f"host-local {defaultnet.DEFAULT_SUBNET} + portmap\n"
            )

            containers = {}
            for name in ("a", "b"):
                path = box.new_netns(f"ctr-{name}")
                caps = {"portMappings": [PORT_MAPPING]} if name == "a" else {}
                rt = RuntimeConf(
                    container_id=f"pycni-demo-{name}-{box.tag}",
                    netns=path,
                    ifname="eth0",
                    capability_args=caps,
                )
                start = time.monotonic()
                cni.add_network_list(lo_net, RuntimeConf(rt.container_id, path, "lo"))
                result = cni.add_network_list(net, rt)
                out(f"[1] ADD   container {name}: ok ({ms(start)})")
                containers[name] = (rt, result)

            rows = [["CONTAINER", "IFACE", "MAC", "ADDRESS", "GATEWAY", "ROUTES"]]
            for name, (_, result) in containers.items():
                iface = next(i for i in result.interfaces if i.sandbox)
                for ip in result.ips:
                    rows.append(
                        [
                            name,
                            iface.name,
                            iface.mac,
                            ip.address,
                            ip.gateway or "-",
                            ", ".join(f"{r.dst} via {r.gw or ip.gateway}" for r in result.routes)
                            or "-",
                        ]
                    )
            out("\n" + table(rows) + "\n")

            from pycni.cli.ping import ping

            for src, dst in (("a", "b"), ("b", "a")):
                target = containers[dst][1].ips[0].address.split("/")[0]
                rtts = ping(containers[src][0].netns, target, count=3)
                if not rtts:
                    raise DemoFailed(f"ping {src} -> {dst} ({target}): no reply")
                out(
                    f"[2] PING  {src} -> {dst} ({target}): {len(rtts)}/3 replies, "
                    f"best {min(rtts) * 1000:.3f} ms"
                )

            gateway = containers["a"][1].ips[0].gateway
            for client in ("b", "host"):
                client_ns = containers["b"][0].netns if client == "b" else box.host
                reply = _port_mapping_round_trip(containers["a"][0].netns, client_ns, gateway)
                if reply != GREETING:
                    raise DemoFailed(f"port {HOST_PORT} from {client}: {reply!r}")
                out(
                    f"[3] PORT  {client} -> {gateway}:{HOST_PORT} (sandbox host) -> "
                    f"a:{CTR_PORT}: {reply.decode()!r}"
                )

            check_all(out, cni, net, containers)

            for name, (rt, _) in containers.items():
                start = time.monotonic()
                cni.del_network_list(net, rt)
                cni.del_network_list(lo_net, RuntimeConf(rt.container_id, rt.netns, "lo"))
                out(f"[5] DEL   container {name}: ok ({ms(start)})")

            with RtNetlink() as nl:
                bridge = nl.link_get(name=defaultnet.DEFAULT_BRIDGE)
                ports = [link.name for link in nl.link_list() if link.master == bridge.index]
            store = data_dir / net.name
            held = sorted(
                p.name
                for p in store.iterdir()
                if p.name != "lock" and not p.name.startswith("last_reserved_ip")
            )
            cached = [a.container_id for a in cni.get_cached_attachments("")]
            from pycni.netfilter.nftables import Nft

            with Nft() as c:
                mapped = [r for fam in ("ip", "ip6") for r in c.rules(fam, "cni_hostport")]
                mapped = [r for r in mapped if r.comment.startswith("pycni-demo-")]
            out("\n[6] LEFT  after DEL:")
            out(f"      {'veths on ' + defaultnet.DEFAULT_BRIDGE:<17}{', '.join(ports) or 'none'}")
            out(f"      IP reservations  {', '.join(held) or 'none'}")
            out(f"      cached results   {', '.join(cached) or 'none'}")
            out(f"      port mappings    {len(mapped) or 'none'}")
            if ports or held or cached or mapped:
                raise DemoFailed("DEL left state behind")
    finally:
        box.close(trap)
    box.verify_removed(out, 17)


def main(argv: list[str]) -> int:
    from pycni.cli.main import UsageError, out, parse_args
    from pycni.cli.signals import Trap

    _, positional, _ = parse_args(argv)
    if len(positional) > 1 or positional[:1] not in ([], ["bridge"], ["dhcp"], ["cluster"]):
        raise UsageError("takes one optional argument: bridge (the default), dhcp or cluster")
    demo = run_demo
    if positional == ["dhcp"]:
        from pycni.cli.demo_dhcp import run_demo as demo
    elif positional == ["cluster"]:
        from pycni.cli.demo_cluster import run_demo as demo
    with Trap() as trap:
        demo(trap=trap)
    out("\ndemo ok\n")
    return 0
