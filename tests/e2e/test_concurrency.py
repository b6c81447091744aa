"""Many containers at once on one bridge network, and a plugin killed mid-ADD."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from pycni.cli.install import install
from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

from support.cni import bridge_conflist, reservations
from support.sandbox import ip_json

N = 50


def make_network(dirs, bridge: str, subnet: str):
    (dirs["conf"] / "c.conflist").write_text(
        json.dumps(bridge_conflist("crowd", bridge, subnet, dirs["data"]))
    )
    install(dirs["bin"])
    cni = CNIConfig(path=[str(dirs["bin"])], cache_dir=str(dirs["cache"]), timeout=120)
    return cni, load_network_conf(str(dirs["conf"]), "crowd")


def bridge_ports(bridge: str) -> list[str]:
    links = ip_json("link", "show")
    index = {link["ifname"]: link["ifindex"] for link in links}
    if bridge not in index:
        return []  # killed before the bridge existed
    return [link["ifname"] for link in links if link.get("master") == bridge]


def test_fifty_concurrent_adds_then_dels(host_ns, netns_factory, cni_dirs):
    cni, net = make_network(cni_dirs, "pyccrowd0", "198.18.64.0/24")
    namespaces = [netns_factory("crowd") for _ in range(N)]
    rts = [RuntimeConf(f"crowd-{i}", ns.path, "eth0") for i, ns in enumerate(namespaces)]
    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(lambda rt: cni.add_network_list(net, rt), rts))
    addresses = [r.ips[0].address for r in results]
    assert len(set(addresses)) == N
    assert len(reservations(cni_dirs["data"], "crowd")) == N
    assert len(bridge_ports("pyccrowd0")) == N
    with ThreadPoolExecutor(max_workers=N) as pool:
        list(pool.map(lambda rt: cni.del_network_list(net, rt), rts))
    assert reservations(cni_dirs["data"], "crowd") == []
    assert bridge_ports("pyccrowd0") == []
    assert not list((cni_dirs["cache"] / "results").iterdir())


def test_bridge_killed_mid_add_is_cleaned_by_del(host_ns, container_ns, cni_dirs):
    """SIGKILL the bridge plugin at increasing delays; DEL always cleans up."""
    _, net = make_network(cni_dirs, "pyckill0", "198.18.65.0/24")
    cni = CNIConfig(path=[str(cni_dirs["bin"])], cache_dir=str(cni_dirs["cache"]))
    plugin_conf = {**net.plugins[0].raw, "cniVersion": "1.1.0", "name": "crowd"}
    env = {
        **os.environ,
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "killed",
        "CNI_NETNS": container_ns.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(cni_dirs["bin"]),
        "CNI_ARGS": "",
    }
    left_state = 0
    for delay_ms in (0, 5, 10, 15, 20, 25, 30, 40, 60):
        proc = subprocess.Popen(
            [str(cni_dirs["bin"] / "bridge")],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc.stdin.write(json.dumps(plugin_conf).encode())
        proc.stdin.close()
        time.sleep(delay_ms / 1000)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left_state += bool(reservations(cni_dirs["data"], "crowd") or bridge_ports("pyckill0"))
        # The runtime's answer to a failed ADD: DEL (spec: DEL follows a failed ADD).
        cni.del_network_list(net, RuntimeConf("killed", container_ns.path, "eth0"))
        assert reservations(cni_dirs["data"], "crowd") == [], f"IP left after kill at {delay_ms} ms"
        assert bridge_ports("pyckill0") == [], f"veth left after kill at {delay_ms} ms"
        links = [x["ifname"] for x in ip_json("link", netns=container_ns.name)]
        assert links == ["lo"], f"container link left after kill at {delay_ms} ms"
    assert left_state, "no kill landed mid-ADD: the test exercised nothing"
