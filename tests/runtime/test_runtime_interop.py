"""The runtime and the CLI drive the Go reference plugins (/usr/lib/cni).

Everything runs inside a sandbox "host" netns (`host_ns`) with a container
netns from `netns_factory`; the Go plugins (containernetworking-plugins
1.1.1) speak spec versions up to 1.0.0.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.cli.cnitool import container_id
from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

from support.cni import cache_files, write_json
from support.sandbox import ip_json

GO_DIR = Path("/usr/lib/cni")

pytestmark = pytest.mark.skipif(
    not (GO_DIR / "bridge").exists(),
    reason="Go reference plugins (containernetworking-plugins) not installed",
)


def pycni(*args: str, env: dict) -> subprocess.CompletedProcess:
    """The CLI in a child process (spawned from the test thread: inside host_ns)."""
    return subprocess.run(
        [sys.executable, "-m", "pycni", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cli_env(cni_dirs) -> dict:
    env = dict(os.environ)
    env.update(NETCONFPATH=str(cni_dirs["conf"]), CNI_PATH=str(GO_DIR))
    for key in ("CNI_ARGS", "CAP_ARGS", "CNI_IFNAME"):
        env.pop(key, None)
    return env


def addresses(netns: str | None, dev: str) -> list[tuple[str, str, int]]:
    links = ip_json("addr", "show", "dev", dev, netns=netns)
    return [
        (a["family"], a["local"], a["prefixlen"])
        for link in links
        for a in link.get("addr_info", [])
    ]


def link_names(netns: str | None) -> list[str]:
    return [link["ifname"] for link in ip_json("link", "show", netns=netns)]


def test_loopback_with_the_cli(host_ns, netns_factory, cni_dirs, cli_env):
    ct = netns_factory("ct")
    subprocess.run(["ip", "-n", ct.name, "link", "set", "lo", "down"], check=True)
    write_json(
        cni_dirs["conf"] / "10-lo.conflist",
        {"cniVersion": "1.0.0", "name": "lo-net", "plugins": [{"type": "loopback"}]},
    )
    cache = str(cni_dirs["cache"])
    cid = container_id(ct.path)
    cache_name = f"lo-net-{cid}-lo"

    add = pycni("--cache-dir", cache, "add", "-i", "lo", "lo-net", ct.path, env=cli_env)
    assert add.returncode == 0, add.stderr
    assert add.stderr == ""
    result = json.loads(add.stdout)
    assert result["cniVersion"] == "1.0.0"
    assert result["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ct.path}]
    assert {ip["address"] for ip in result["ips"]} == {"127.0.0.1/8", "::1/128"}
    assert ("inet", "127.0.0.1", 8) in addresses(ct.name, "lo")
    (lo,) = ip_json("link", "show", "lo", netns=ct.name)
    assert "UP" in lo["flags"]
    assert cache_files(cni_dirs["cache"]) == [cache_name]

    check = pycni("--cache-dir", cache, "check", "-i", "lo", "lo-net", ct.path, env=cli_env)
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")

    for _ in range(2):  # DEL, then DEL again
        dele = pycni("--cache-dir", cache, "del", "-i", "lo", "lo-net", ct.path, env=cli_env)
        assert (dele.returncode, dele.stdout, dele.stderr) == (0, "", "")
        assert cache_files(cni_dirs["cache"]) == []
    (lo,) = ip_json("link", "show", "lo", netns=ct.name)
    assert "UP" not in lo["flags"]


def bridge_conf(cni_dirs) -> tuple[dict, str, int]:
    bridge = "pycbr" + secrets.token_hex(3)
    third = 1 + secrets.randbelow(250)
    conf = {
        "cniVersion": "1.0.0",
        "name": "br-net",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "subnet": f"198.18.{third}.0/24",
                    "dataDir": str(cni_dirs["data"]),
                },
            }
        ],
    }
    write_json(cni_dirs["conf"] / "20-br.conflist", conf)
    return conf, bridge, third


def test_bridge_and_host_local_with_the_library(host_ns, netns_factory, cni_dirs):
    ct = netns_factory("ct")
    _conf, bridge, third = bridge_conf(cni_dirs)
    net = load_network_conf(str(cni_dirs["conf"]), "br-net")
    cni = CNIConfig([str(GO_DIR)], cache_dir=str(cni_dirs["cache"]), timeout=60)
    rt = RuntimeConf("pycni-interop-1", ct.path, "eth0", args=[("IgnoreUnknown", "1")])
    store = cni_dirs["data"] / "br-net"
    try:
        result = cni.add_network_list(net, rt)
        assert result.cni_version == "1.0.0"
        names = [i.name for i in result.interfaces]
        assert names[0] == bridge and names[2] == "eth0"
        assert result.interfaces[2].sandbox == ct.path
        assert [(ip.address, ip.gateway, ip.interface) for ip in result.ips] == [
            (f"198.18.{third}.2/24", f"198.18.{third}.1", 2)
        ]
        # kernel state: container side, host side, IPAM store, cache
        assert ("inet", f"198.18.{third}.2", 24) in addresses(ct.name, "eth0")
        assert ("inet", f"198.18.{third}.1", 24) in addresses(None, bridge)
        assert names[1] in link_names(None)
        assert (store / f"198.18.{third}.2").read_text().startswith("pycni-interop-1")
        assert cache_files(cni_dirs["cache"]) == ["br-net-pycni-interop-1-eth0"]
        assert cni.get_cached_attachments()[0].netns == ct.path

        cni.check_network_list(net, rt)

        cni.del_network_list(net, rt)
        assert "eth0" not in link_names(ct.name)
        assert names[1] not in link_names(None)
        assert not (store / f"198.18.{third}.2").exists()
        assert cache_files(cni_dirs["cache"]) == []
        cni.del_network_list(net, rt)  # DEL again
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def test_bridge_with_the_cli(host_ns, netns_factory, cni_dirs, cli_env):
    ct = netns_factory("ct")
    _conf, bridge, third = bridge_conf(cni_dirs)
    cache = str(cni_dirs["cache"])
    cid = container_id(ct.path)
    cli_env["CNI_ARGS"] = "IgnoreUnknown=1"
    try:
        add = pycni("--cache-dir", cache, "--timeout", "60", "add", "br-net", ct.path, env=cli_env)
        assert add.returncode == 0, add.stderr
        result = json.loads(add.stdout)
        assert result["cniVersion"] == "1.0.0"
        assert result.get("dns", {}) == {}
        assert result["interfaces"][2]["name"] == "eth0"
        assert result["ips"][0]["address"] == f"198.18.{third}.2/24"
        assert ("inet", f"198.18.{third}.2", 24) in addresses(ct.name, "eth0")
        record = json.loads((cni_dirs["cache"] / "results" / f"br-net-{cid}-eth0").read_text())
        assert record["containerId"] == cid
        assert record["cniArgs"] == [["IgnoreUnknown", "1"]]
        assert record["result"]["ips"] == result["ips"]

        check = pycni("--cache-dir", cache, "check", "br-net", ct.path, env=cli_env)
        assert check.returncode == 0, check.stderr

        status = pycni("--cache-dir", cache, "status", "br-net", env=cli_env)
        assert status.returncode == 0, status.stderr  # 1.0.0: nothing to run

        for _ in range(2):
            dele = pycni("--cache-dir", cache, "del", "br-net", ct.path, env=cli_env)
            assert dele.returncode == 0, dele.stderr
        assert "eth0" not in link_names(ct.name)
        assert cache_files(cni_dirs["cache"]) == []
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def test_go_plugin_error_is_reported(host_ns, netns_factory, cni_dirs, cli_env):
    ct = netns_factory("ct")
    write_json(
        cni_dirs["conf"] / "30.conflist",
        {"cniVersion": "1.1.0", "name": "new", "plugins": [{"type": "loopback"}]},
    )
    add = pycni("--cache-dir", str(cni_dirs["cache"]), "add", "new", ct.path, env=cli_env)
    assert add.returncode == 1
    assert add.stdout == ""
    assert add.stderr == (
        'pycni: add failed: plugin type="loopback" failed (add): incompatible CNI versions; '
        'config is "1.1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"] '
        "(CNI error 1)\n"
    )
    assert cache_files(cni_dirs["cache"]) == []
    version = pycni("version", "bridge", env=cli_env)
    assert version.stdout == (
        f"bridge ({GO_DIR}/bridge): 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0\n"
    )
