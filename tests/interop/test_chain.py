"""The Go libcni driver runs podman's plugin chain (bridge + host-local +
portmap + bandwidth + firewall + tuning) over installed pycni plugins: ADD,
CHECK, a port mapping that carries traffic, DEL, IPv4 and dual stack; with
neither `nft` nor any `iptables*` binary reachable, so the default path is
proved to start no netfilter process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.cli.install import install
from pycni.plugins import PLUGINS

from support.cni import reservations
from support.sandbox import ip_json, nft_ruleset

CHAIN = ("bridge", "portmap", "bandwidth", "firewall", "tuning")
HOST_PORT = 18080
CTR_PORT = 8080


def _need_plugins() -> None:
    missing = [p for p in (*CHAIN, "host-local") if p not in PLUGINS]
    if missing:
        pytest.skip(f"pycni has no {', '.join(missing)} plugin yet")


def chain_conflist(bridge: str, data_dir: Path, subnets: list[str]) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": "chainnet",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(data_dir),
                    "ranges": [[{"subnet": s}] for s in subnets],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
            {"type": "firewall"},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}},
        ],
    }


@pytest.fixture
def installed(cni_dirs):
    install(cni_dirs["bin"], os.environ.get("PYCNI_TEST_PYTHON") or None)
    return cni_dirs["bin"]


@pytest.fixture
def no_netfilter_path(tmp_path: Path) -> str:
    """A PATH without nft, iptables* or ip: only an empty directory."""
    empty = tmp_path / "emptypath"
    empty.mkdir()
    return str(empty)


def run(tool, verb, netns, bin_dir, dirs, path, cap_args=None):
    env = {
        **os.environ,
        "PATH": path,
        "NETCONFPATH": str(dirs["conf"]),
        "CNI_PATH": str(bin_dir),
        "CNI_CACHE_DIR": str(dirs["cache"]),
        "CNI_IFNAME": "eth0",
    }
    if cap_args is not None:
        env["CAP_ARGS"] = json.dumps(cap_args)
    return subprocess.run(
        [str(tool), verb, "chainnet", netns], env=env, capture_output=True, text=True, timeout=60
    )


def serve_once(netns: str, port: int, family: int) -> subprocess.Popen:
    """A TCP server in the container answering one connection with "pong"."""
    bind = "::" if family == 6 else "0.0.0.0"
    af = "AF_INET6" if family == 6 else "AF_INET"
    code = (
        "import socket,sys\n"
        f"s=socket.socket(socket.{af});s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(({bind!r},{port}));s.listen(4);print('ready',flush=True)\n"
        "s.settimeout(20)\n"
        "for _ in range(2):\n"
        "    c,_=s.accept();c.sendall(b'pong');c.close()\n"
    )
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def connect(netns: str, host: str, port: int) -> str:
    code = (
        "import socket\n"
        f"c=socket.create_connection(({host!r},{port}),timeout=5);print(c.recv(16).decode())"
    )
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip() or out.stderr.strip()


@pytest.mark.parametrize(
    "subnets",
    [["198.18.40.0/24"], ["198.18.41.0/24", "fd00:41::/64"]],
    ids=["ipv4", "dual-stack"],
)
def test_six_plugin_chain_under_go_libcni(
    host_ns, netns_factory, installed, cni_dirs, gocnitool, no_netfilter_path, subnets
):
    _need_plugins()
    bridge = "pycch" + os.urandom(3).hex()
    conf = chain_conflist(bridge, cni_dirs["data"], subnets)
    (cni_dirs["conf"] / "10-chain.conflist").write_text(json.dumps(conf))
    server_ns, client_ns = netns_factory("srv"), netns_factory("cli")
    caps = {
        "portMappings": [{"hostPort": HOST_PORT, "containerPort": CTR_PORT, "protocol": "tcp"}],
        "bandwidth": {
            "ingressRate": 100_000_000,
            "ingressBurst": 10_000_000,
            "egressRate": 100_000_000,
            "egressBurst": 10_000_000,
        },
    }
    path = no_netfilter_path
    add = run(gocnitool, "add", server_ns.path, installed, cni_dirs, path, caps)
    assert add.returncode == 0, add.stderr + add.stdout
    result = json.loads(add.stdout)
    assert [ipc["address"].split("/")[0] for ipc in result["ips"]]
    client = run(gocnitool, "add", client_ns.path, installed, cni_dirs, path, {})
    assert client.returncode == 0, client.stderr + client.stdout

    check = run(gocnitool, "check", server_ns.path, installed, cni_dirs, path, caps)
    assert check.returncode == 0, check.stderr + check.stdout

    gateway = next(ipc["gateway"] for ipc in result["ips"] if ":" not in ipc["address"])
    server = serve_once(server_ns.name, CTR_PORT, 4)
    try:
        assert connect(client_ns.name, gateway, HOST_PORT) == "pong"
        # from the sandbox host itself, through the output chain
        assert connect(host_ns.name, gateway, HOST_PORT) == "pong"
    finally:
        server.kill()
        server.wait()

    links = {link["ifname"] for link in ip_json("link")}
    assert any(name.startswith("bwp") for name in links), links
    assert "cni_hostport" in nft_ruleset()

    for ns in (server_ns, client_ns):
        for _ in range(2):
            dele = run(gocnitool, "del", ns.path, installed, cni_dirs, path, caps)
            assert dele.returncode == 0, dele.stderr + dele.stdout
    assert "cnitool-" not in nft_ruleset()  # every per-container rule names its ID
    assert not [n for n in {link["ifname"] for link in ip_json("link")} if n.startswith("bwp")]
    assert reservations(cni_dirs["data"], "chainnet") == []
    assert not list((cni_dirs["cache"] / "results").iterdir())
