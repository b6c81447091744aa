"""Tests for the ifalias example: the plugin under the pycni runtime and CLI.

Self-contained on purpose, so it can be copied as a template: it makes its
own sandbox host namespace and container namespace with pycni.kernel.netns.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.kernel import netns
from pycni.kernel.netlink import RtNetlink
from pycni.skel.testing import run_plugin

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "ifalias.py"

# needs root: the sandbox makes network namespaces (`pytest -m "not kernel"` deselects them)
pytestmark = pytest.mark.kernel


@pytest.fixture
def sandbox(tmp_path):
    """A sandbox host netns (entered by this thread) and a container netns
    holding an interface eth0 for the plugin to label."""
    tag = secrets.token_hex(3)
    host = netns.create_named(f"pyc-exh-{tag}")
    ctr = netns.create_named(f"pyc-exc-{tag}")
    try:
        with netns.enter(host), RtNetlink() as nl:
            nl.link_add_veth("vethx" + tag, "eth0", peer_netns=ctr)
            bin_dir = tmp_path / "bin"
            bin_dir.mkdir()
            launcher = bin_dir / "ifalias"
            launcher.write_text(
                f"#!{sys.executable}\nimport runpy\n"
                f"runpy.run_path({str(PLUGIN)!r}, run_name='__main__')\n"
            )
            launcher.chmod(0o755)
            conf_dir = tmp_path / "conf"
            conf_dir.mkdir()
            (conf_dir / "10-label.conflist").write_text(
                json.dumps(
                    {
                        "cniVersion": "1.1.0",
                        "name": "labelnet",
                        "plugins": [{"type": "ifalias", "alias": "web frontend"}],
                    }
                )
            )
            yield {"ctr": ctr, "bin": bin_dir, "conf": conf_dir, "cache": tmp_path / "cache"}
    finally:
        netns.delete_named(f"pyc-exc-{tag}")
        netns.delete_named(f"pyc-exh-{tag}")


def alias_of(ctr: str) -> str:
    with RtNetlink(netns=ctr) as nl:
        return nl.link_get(name="eth0").alias


def test_verbs_through_the_sdk_test_helper(sandbox):
    conf = {"cniVersion": "1.1.0", "name": "labelnet", "type": "ifalias"}
    add = run_plugin(str(PLUGIN), "ADD", conf, netns=sandbox["ctr"], container_id="c1")
    assert add.ok, add
    assert add.json["interfaces"][0]["name"] == "eth0"
    assert alias_of(sandbox["ctr"]) == "labelnet/c1"
    assert run_plugin(str(PLUGIN), "CHECK", conf, netns=sandbox["ctr"], container_id="c1").ok
    assert run_plugin(str(PLUGIN), "DEL", conf, netns=sandbox["ctr"], container_id="c1").ok
    assert alias_of(sandbox["ctr"]) == ""
    bad = run_plugin(str(PLUGIN), "ADD", {**conf, "alias": 5}, netns=sandbox["ctr"])
    assert bad.error["code"] == 7 and "invalid alias" in bad.error["msg"]


def test_under_the_runtime(sandbox):
    from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

    cni = CNIConfig(path=[str(sandbox["bin"])], cache_dir=str(sandbox["cache"]))
    net = load_network_conf(str(sandbox["conf"]), "labelnet")
    rt = RuntimeConf(container_id="c2", netns=sandbox["ctr"], ifname="eth0")
    result = cni.add_network_list(net, rt)
    assert result.interfaces[0].name == "eth0"
    assert alias_of(sandbox["ctr"]) == "web frontend"
    cni.check_network_list(net, rt)
    cni.del_network_list(net, rt)
    assert alias_of(sandbox["ctr"]) == ""


def test_under_the_cli(sandbox):
    env = {**os.environ, "NETCONFPATH": str(sandbox["conf"]), "CNI_PATH": str(sandbox["bin"])}
    base = [sys.executable, "-m", "pycni", "--cache-dir", str(sandbox["cache"])]
    add = subprocess.run(
        [*base, "add", "labelnet", sandbox["ctr"]], env=env, capture_output=True, text=True
    )
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["interfaces"][0]["name"] == "eth0"
    assert alias_of(sandbox["ctr"]) == "web frontend"
    for verb in ("check", "del", "del"):
        proc = subprocess.run(
            [*base, verb, "labelnet", sandbox["ctr"]], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
    assert alias_of(sandbox["ctr"]) == ""
