"""`pycni demo cluster`: containers on three nodes leasing from one
PostgreSQL pool, in a sandbox.

A throwaway PostgreSQL server (pgserver.py: a temp dir, a unix socket, no
TCP port) holds the pool; three "nodes", each a sandbox host netns with
its own `sql daemon` (started through the installed launcher, as the
systemd unit starts it) and a bridge network on the shared pool. Two
containers per node get addresses, the pool's blocks show which node
claimed what, same-node containers ping each other, and DEL returns every
lease and block. Nothing outside the sandbox is touched.
"""

from __future__ import annotations

import time

from pycni.cli.demo_sandbox import DemoFailed, Sandbox, ms, say, spawn, stop, table

NODES = ("node1", "node2", "node3")
SUBNET = "198.18.96.0/22"
NETWORK = "cluster"
ROLE, DATABASE = "cni", "cni_ipam"


def network_bytes(node: str, dsn: str, socket_path: str) -> bytes:
    import json

    conf = {
        "cniVersion": "1.1.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni-cluster0",
                "isGateway": True,
                "ipam": {
                    "type": "sql",
                    "database": {"engine": "postgres", "dsn": dsn},
                    "node": node,
                    "daemonSocketPath": socket_path,
                    "ranges": [[{"subnet": SUBNET}]],
                },
            }
        ],
    }
    return json.dumps(conf, indent=2).encode()


def _start_daemon(box: Sandbox, bin_dir, node: str, host: str):
    """`<bin>/sql daemon` in the node's netns, until it listens."""
    import subprocess

    socket_path = box.tmp / node / "sql.sock"
    log = box.tmp / f"{node}-daemon.log"
    proc = spawn([str(bin_dir / "sql"), "daemon", "-socketpath", str(socket_path)], host, log)
    box.defer(stop, proc)
    deadline = time.monotonic() + 20
    while "listening on" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DemoFailed(f"the sql daemon of {node} did not start: {log.read_text()}")
        time.sleep(0.02)
    assert isinstance(proc, subprocess.Popen)
    return proc, str(socket_path)


def run_demo(out=say, trap=None) -> None:
    from pycni.cli import ipam
    from pycni.cli.install import install
    from pycni.cli.pgserver import PgServer, available
    from pycni.cli.ping import ping
    from pycni.kernel import netns
    from pycni.runtime import CNIConfig, RuntimeConf
    from pycni.spec.config import network_config_list_from_bytes

    reason = available()
    if reason:
        raise DemoFailed(reason)
    box = Sandbox()
    try:
        start = time.monotonic()
        server = PgServer.create()
        box.defer(server.destroy)
        server.create_role(ROLE)
        server.create_database(DATABASE, owner=ROLE)
        dsn = server.dsn(user=ROLE, dbname=DATABASE)
        out("pycni demo cluster: three nodes, one PostgreSQL pool (sql IPAM), in a sandbox\n")
        out(f"  database   PostgreSQL, pid {server.pid}, socket in {server.sockdir} ({ms(start)})")
        ipam.main(["init", "--database", dsn])
        bin_dir = box.tmp / "bin"
        install(bin_dir)
        cni = CNIConfig(path=[str(bin_dir)], cache_dir=str(box.tmp / "cache"), timeout=60)
        nodes = {}
        for node in NODES:
            host = box.new_netns(node)
            daemon, socket_path = _start_daemon(box, bin_dir, node, host)
            net = network_config_list_from_bytes(network_bytes(node, dsn, socket_path))
            nodes[node] = (host, net)
            out(f"  {node}      host netns {host}, sql daemon pid {daemon.pid}")
        out(f"  network    {NETWORK}: bridge + sql, pool {SUBNET}, /26 blocks per node\n")

        containers = {}
        for node, (host, net) in nodes.items():
            with netns.enter(host):
                for n in (1, 2):
                    name = f"{node}-c{n}"
                    rt = RuntimeConf(
                        f"pycni-demo-{name}-{box.tag}", box.new_netns(f"{name}"), "eth0"
                    )
                    start = time.monotonic()
                    result = cni.add_network_list(net, rt)
                    out(f"[1] ADD   {name}: ok ({ms(start)})")
                    containers[name] = (node, rt, result)
        rows = [["CONTAINER", "NODE", "ADDRESS", "GATEWAY"]]
        for name, (node, _, result) in containers.items():
            for ip in result.ips:
                rows.append([name, node, ip.address, ip.gateway or "-"])
        out("\n" + table(rows) + "\n")
        addresses = [ip.address for _, _, r in containers.values() for ip in r.ips]
        if len(set(addresses)) != len(addresses):
            raise DemoFailed(f"an address was handed out twice: {addresses}")
        out("[2] POOL  `pycni ipam show`: the blocks each node claimed, and the leases")
        ipam.main(["show", "--database", dsn])

        for node in NODES:
            source, dest = containers[f"{node}-c1"][1], containers[f"{node}-c2"][2]
            target = dest.ips[0].address.split("/")[0]
            rtts = ping(source.netns, target, count=3)
            if not rtts:
                raise DemoFailed(f"ping {node}-c1 -> {node}-c2 ({target}): no reply")
            out(f"[3] PING  {node}-c1 -> {node}-c2 ({target}): {len(rtts)}/3 replies")

        for name, (node, rt, _) in containers.items():
            with netns.enter(nodes[node][0]):
                start = time.monotonic()
                cni.del_network_list(nodes[node][1], rt)
            out(f"[4] DEL   {name}: ok ({ms(start)})")
        out("\n[5] LEFT  after DEL (`pycni ipam pools`):")
        ipam.main(["pools", "--database", dsn])
        left = server.psql("SELECT count(*) FROM leases", dbname=DATABASE).strip()
        blocks = server.psql("SELECT count(*) FROM blocks", dbname=DATABASE).strip()
        out(f"      leases {left}, blocks {blocks}")
        if left != "0" or blocks != "0":
            raise DemoFailed("DEL left leases or blocks behind")
    finally:
        box.close(trap)
    box.verify_removed(out, 17, note=", 3 daemons, 1 database server")
