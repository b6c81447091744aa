"""One data dir shared by the Go reference host-local and pycni's.

Debian's Go plugin (1.1.1) supports cniVersion up to 1.0.0, so these tests
use 1.0.0. Its files are mode 0644 (later releases use 0600, as pycni
does); the content and names are compared byte for byte.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pycni.skel.testing import plugin_argv, run_plugin

from support.host_local import NET, PLUGIN, make_conf, reservations, store_files

GO_HOST_LOCAL = Path("/usr/lib/cni/host-local")


@pytest.fixture
def go() -> str:
    if not os.access(GO_HOST_LOCAL, os.X_OK):
        pytest.skip(f"Go reference plugin {GO_HOST_LOCAL} not installed")
    return str(GO_HOST_LOCAL)


RANGES = [
    [{"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.10", "rangeEnd": "198.18.0.60"}],
    [{"subnet": "fd00::/120"}],
]


def conf_for(data_dir, **kw):
    return make_conf(data_dir, RANGES, version="1.0.0", **kw)


def run(plugin, command, conf, netns, cid, ifname="eth0", args=""):
    out = run_plugin(plugin, command, conf, netns=netns, container_id=cid, ifname=ifname, args=args)
    assert out.exit_code == 0, (plugin, command, cid, out)
    return out.json


def addresses(result) -> list[str]:
    return [ip["address"] for ip in result["ips"]]


def test_identical_results_and_store_bytes(go, hl_netns, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 198.18.0.53\nsearch example.test\noptions ndots:1\n")
    routes = [{"dst": "0.0.0.0/0"}, {"dst": "fd00:9::/64", "gw": "fd00::fe"}]
    stores = {}
    for name, plugin in (("go", go), ("py", PLUGIN)):
        data = tmp_path / name
        conf = make_conf(
            data,
            RANGES,
            version="1.0.0",
            routes=routes,
            resolvConf=str(resolv),
            subnet="198.18.5.0/24",
            rangeStart="198.18.5.200",
        )
        second = run(plugin, "ADD", conf, hl_netns, "ctr-b", "net1")
        conf["runtimeConfig"] = {"ips": ["198.18.0.33"]}
        first = run(plugin, "ADD", conf, hl_netns, "ctr-a", args="IgnoreUnknown=1;X=y")
        stores[name] = (first, second, store_files(data))
    assert stores["go"] == stores["py"]
    first, _, files = stores["py"]
    assert addresses(first) == ["198.18.5.201/24", "198.18.0.33/24", "fd00::3/120"]
    assert files["198.18.0.33"] == b"ctr-a\r\neth0"
    assert files["198.18.0.10"] == b"ctr-b\r\nnet1"
    assert files["last_reserved_ip.1"] == b"198.18.0.33"


def test_interleaved_allocation_never_collides(go, hl_netns, tmp_path):
    data = tmp_path / "data"
    conf = conf_for(data)
    seen = []
    for i in range(16):
        plugin = go if i % 2 else PLUGIN
        seen.extend(addresses(run(plugin, "ADD", conf, hl_netns, f"ctr{i}")))
    assert len(seen) == len(set(seen)) == 32
    # Round-robin state is shared: the two plugins continue each other's sequence.
    assert [a for a in seen if "." in a] == [f"198.18.0.{10 + i}/24" for i in range(16)]
    # Releases through either plugin, in any mix.
    for i in range(16):
        plugin = PLUGIN if i % 3 else go
        run(plugin, "DEL", conf, hl_netns, f"ctr{i}")
    assert reservations(data) == {}


def test_pycni_releases_and_checks_go_reservations(go, hl_netns, tmp_path):
    data = tmp_path / "data"
    conf = conf_for(data)
    result = run(go, "ADD", conf, hl_netns, "go-ctr")
    run(PLUGIN, "CHECK", {**conf, "prevResult": result}, hl_netns, "go-ctr")
    dup = run_plugin(PLUGIN, "ADD", conf, netns=hl_netns, container_id="go-ctr")
    assert dup.exit_code == 1 and "duplicate allocation is not allowed" in dup.json["msg"]
    assert addresses(run(PLUGIN, "ADD", conf, hl_netns, "py-ctr")) == [
        "198.18.0.11/24",
        "fd00::3/120",
    ]
    run(PLUGIN, "DEL", conf, hl_netns, "go-ctr")
    assert sorted(reservations(data)) == ["198.18.0.11", "fd00::3"]


def test_go_releases_and_checks_pycni_reservations(go, hl_netns, tmp_path):
    data = tmp_path / "data"
    conf = conf_for(data)
    result = run(PLUGIN, "ADD", conf, hl_netns, "py-ctr")
    run(go, "CHECK", {**conf, "prevResult": result}, hl_netns, "py-ctr")
    dup = run_plugin(go, "ADD", conf, netns=hl_netns, container_id="py-ctr")
    assert dup.exit_code == 1 and "duplicate allocation is not allowed" in dup.json["msg"]
    run(go, "DEL", conf, hl_netns, "py-ctr")
    assert reservations(data) == {}


def test_legacy_files_written_by_old_go_releases(go, hl_netns, tmp_path):
    data = tmp_path / "data"
    conf = conf_for(data)
    (data / NET).mkdir(parents=True)
    (data / NET / "198.18.0.10").write_bytes(b"old-ctr")
    assert addresses(run(go, "ADD", conf, hl_netns, "new-ctr"))[0] == "198.18.0.11/24"
    run(PLUGIN, "DEL", conf, hl_netns, "old-ctr")
    assert list(reservations(data)) == ["198.18.0.11", "fd00::2"]


def test_concurrent_go_and_pycni_adds(go, hl_netns, tmp_path):
    data = tmp_path / "data"
    conf = conf_for(data)
    import json

    stdin = json.dumps(conf).encode()
    procs = []
    for i in range(24):
        env = {
            **os.environ,
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": f"c{i}",
            "CNI_NETNS": hl_netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/nonexistent",
        }
        argv = [go] if i % 2 else plugin_argv(PLUGIN)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        procs.append(p)
    results = []
    for p in procs:
        out, _ = p.communicate(stdin, timeout=60)
        assert p.returncode == 0, out
        results.extend(addresses(json.loads(out)))
    assert len(results) == len(set(results)) == 48
    assert len(reservations(data)) == 48
