"""podman 4.3 (CNI backend) on pycni's plugins: a bridge network, a
published port, container to container, and nothing left after
`podman rm` and `podman network rm`.

podman writes the network's conflist itself (bridge with host-local, then
portmap, firewall, tuning) and calls the plugins through libcni with the
portMappings capability; see rt_podman for the isolation.
"""

from __future__ import annotations

import json
import secrets

import pytest
from rt_image import INDEX
from rt_podman import IMAGE
from rt_state import (
    host_cni_entries,
    http_get,
    links,
    netfilter,
    reservations,
    results,
    rules_naming,
)

SUBNET, GATEWAY = "198.19.200.0/24", "198.19.200.1"
HOST_PORT = 18080
#: busybox wget bounded by `timeout` (its own -T segfaults in Debian's busybox-static 1.35)
FETCH = "timeout 10 wget -q -O -"

pytestmark = pytest.mark.timeout(180)


def test_podman_bridge_network_publishes_a_port_and_cleans_up(podman):
    tag = secrets.token_hex(3)
    net = f"rtnet-{tag}"
    context = podman.plugins.describe()

    podman("network", "create", "--subnet", SUBNET, "--gateway", GATEWAY, net)
    conf = json.loads((podman.netconf / f"{net}.conflist").read_text())
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap", "firewall", "tuning"]
    # podman 4.3 names the bridge itself (cni-podmanN): no option sets it
    bridge = conf["plugins"][0]["bridge"]

    web = podman(*podman.run_args(
        "-d", "--name", "web", "--network", net, "-p", f"{HOST_PORT}:80",
        IMAGE, "httpd", "-f", "-p", "80", "-h", "/www",
    )).stdout.strip()  # fmt: skip
    addr = podman.inspect("web")["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert addr.startswith("198.19.200."), context

    # the sandbox host reaches the container through the host port (on
    # loopback and on the bridge's address) and directly
    assert http_get("127.0.0.1", HOST_PORT) == INDEX, context
    assert http_get(GATEWAY, HOST_PORT) == INDEX, context
    assert http_get(addr, 80) == INDEX, context

    # a second container reaches the first directly and through the host
    # port (hairpin through the bridge, SNAT by portmap), then goes away
    client = podman(*podman.run_args(
        "--rm", "--network", net, IMAGE, "sh", "-c",
        f"{FETCH} http://{addr}/ && {FETCH} http://{GATEWAY}:{HOST_PORT}/",
    ), check=False)  # fmt: skip
    assert client.returncode == 0, f"{context}\n{client.stderr}"
    assert client.stdout == INDEX.decode() * 2

    # what ADD left, so that the checks after DEL are not vacuous; the
    # client's DEL took only its own share
    assert rules_naming(netfilter(), [web, addr], HOST_PORT), context
    assert reservations(podman.cni_dir) == {net: [addr]}, context
    assert results(podman.cni_dir) == [f"{net}-{web}-eth0"], context
    assert http_get("127.0.0.1", HOST_PORT) == INDEX, context
    assert host_cni_entries(net, [web]) == []  # all of it in the mount namespace

    podman("rm", "--force", "--time", "0", "web")
    assert links() == {"lo", bridge}, context
    left = rules_naming(netfilter(), [web, addr], HOST_PORT)
    assert left == [], f"{context}: rules left after podman rm:\n" + "\n".join(left)
    assert reservations(podman.cni_dir) == {}, context
    assert results(podman.cni_dir) == [], context

    podman("network", "rm", net)
    assert links() == {"lo"}, context
    assert not (podman.netconf / f"{net}.conflist").exists()


def test_podman_static_ip_and_network_connect_disconnect(podman):
    """The `ips` capability (host-local's static request), a second
    network attached to a running container (ADD as eth1) and detached
    again (DEL of eth1 only), then everything removed."""
    tag = secrets.token_hex(3)
    front, back = f"rtfront-{tag}", f"rtback-{tag}"
    context = podman.plugins.describe()
    podman("network", "create", "--subnet", "198.19.202.0/24", front)
    podman("network", "create", "--subnet", "198.19.203.0/24", back)
    bridges = {
        json.loads((podman.netconf / f"{n}.conflist").read_text())["plugins"][0]["bridge"]
        for n in (front, back)
    }

    web = podman(*podman.run_args(
        "-d", "--name", "web", "--network", front, "--ip", "198.19.202.50",
        IMAGE, "httpd", "-f", "-p", "80", "-h", "/www",
    )).stdout.strip()  # fmt: skip
    assert http_get("198.19.202.50", 80) == INDEX, context
    assert reservations(podman.cni_dir) == {front: ["198.19.202.50"]}, context

    podman("network", "connect", back, "web")
    nets = podman.inspect("web")["NetworkSettings"]["Networks"]
    back_addr = nets[back]["IPAddress"]
    assert back_addr.startswith("198.19.203."), context
    assert http_get(back_addr, 80) == INDEX, context
    assert reservations(podman.cni_dir) == {front: ["198.19.202.50"], back: [back_addr]}
    assert results(podman.cni_dir) == sorted([f"{back}-{web}-eth1", f"{front}-{web}-eth0"])

    podman("network", "disconnect", back, "web")
    assert reservations(podman.cni_dir) == {front: ["198.19.202.50"]}, context
    assert results(podman.cni_dir) == [f"{front}-{web}-eth0"], context
    assert rules_naming(netfilter(), [back_addr]) == [], context
    assert http_get("198.19.202.50", 80) == INDEX, context

    podman("rm", "--force", "--time", "0", "web")
    assert links() == {"lo", *bridges}, context
    assert rules_naming(netfilter(), [web, "198.19.202.50", back_addr]) == [], context
    assert reservations(podman.cni_dir) == {}, context
    assert results(podman.cni_dir) == [], context
    podman("network", "rm", front, back)
    assert links() == {"lo"}, context
