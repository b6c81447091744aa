"""`pycni run` and `pycni demo` end to end, inside a sandbox host netns."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cni_helpers import bridge_conflist, reservations

from pycni.cli.install import install


@pytest.fixture
def run_env(host_ns, cni_dirs):
    install(cni_dirs["bin"])
    for name, bridge, subnet in (
        ("front", "pycfr0", "198.18.20.0/24"),
        ("back", "pycbk0", "198.18.21.0/24"),
    ):
        (cni_dirs["conf"] / f"{name}.conflist").write_text(
            json.dumps(bridge_conflist(name, bridge, subnet, cni_dirs["data"]))
        )
    env = {**os.environ, "NETCONFPATH": str(cni_dirs["conf"]), "CNI_PATH": str(cni_dirs["bin"])}
    return env, cni_dirs


def pycni_run(env, dirs, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pycni", "run", "--cache-dir", str(dirs["cache"]), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_attaches_networks_and_cleans_up(run_env):
    env, dirs = run_env
    before = set(os.listdir("/run/netns"))
    proc = pycni_run(env, dirs, "--net", "front", "--net", "back", "--", "ip", "-j", "addr", "show")
    assert proc.returncode == 0, proc.stderr
    links = {link["ifname"]: link for link in json.loads(proc.stdout)}
    assert set(links) == {"lo", "eth0", "net1"}
    assert links["eth0"]["addr_info"][0]["local"].startswith("198.18.20.")
    assert links["net1"]["addr_info"][0]["local"].startswith("198.18.21.")
    assert "UP" in links["lo"]["flags"]
    assert set(os.listdir("/run/netns")) <= before
    assert reservations(dirs["data"], "front") == [] and reservations(dirs["data"], "back") == []
    assert not list((dirs["cache"] / "results").iterdir())


def test_run_returns_the_command_exit_status(run_env):
    env, dirs = run_env
    proc = pycni_run(env, dirs, "--net", "front", "--", "sh", "-c", "exit 7")
    assert proc.returncode == 7
    assert reservations(dirs["data"], "front") == []


def test_run_with_unknown_network_fails_cleanly(run_env):
    env, dirs = run_env
    before = set(os.listdir("/run/netns"))
    proc = pycni_run(env, dirs, "--net", "nosuch", "--", "true")
    assert proc.returncode == 1
    assert 'no net configuration with name "nosuch"' in proc.stderr
    assert "Traceback" not in proc.stderr
    assert set(os.listdir("/run/netns")) == before


def test_demo_runs_and_leaves_nothing():
    before = set(os.listdir("/run/netns"))
    proc = subprocess.run(
        [sys.executable, "-m", "pycni", "demo"], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PING  a -> b" in proc.stdout and "demo ok" in proc.stdout
    assert set(os.listdir("/run/netns")) == before
