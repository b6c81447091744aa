"""Helpers of the tuning plugin tests: a container with a veth to tune,
configs, and readers of the link attributes, sysctls and backup files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from pycni.plugins.meta.tuning import PLUGIN as TUNING
from pycni.skel import run
from pycni.skel.testing import Outcome, run_plugin

from support.sandbox import in_netns, ip, ip_json

PLUGIN = "pycni.plugins.meta.tuning"
GO = "/usr/lib/cni/tuning"
CONTAINER_ID = "tun-ctr-1"
IFNAME = "eth0"
NETWORK = "tunnet"
#: the MAC every test veth starts with, so that backups compare byte for byte
START_MAC = "02:00:5e:10:00:01"


def make_container(netns_factory, tag: str = "ct", mac: str = START_MAC):
    """A container netns holding the veth `eth0` (its peer `tunpeer0` also
    inside): the interface a previous plugin would have created."""
    ct = netns_factory(tag)
    ip(
        "link",
        "add",
        IFNAME,
        "address",
        mac,
        "type",
        "veth",
        "peer",
        "name",
        "tunpeer0",
        netns=ct.name,
    )
    return ct


def prev_result(ct, version: str = "1.0.0", mac: str = START_MAC) -> dict:
    """What a main plugin (bridge) returned: a host veth and the container eth0."""
    if version in ("0.1.0", "0.2.0"):
        return {"cniVersion": version, "ip4": {"ip": "198.18.7.2/24", "gateway": "198.18.7.1"}}
    ip4: dict = {"address": "198.18.7.2/24", "gateway": "198.18.7.1", "interface": 1}
    if not version.startswith("1."):
        ip4["version"] = "4"
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": "tunhost0", "mac": "02:00:5e:10:00:99"},
            {"name": IFNAME, "mac": mac, "sandbox": ct.path},
        ],
        "ips": [ip4],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["198.18.7.53"]},
    }


def conf(
    ct, data_dir: Path | str, version: str = "1.0.0", prev: bool = True, **keys: object
) -> dict:
    c: dict = {"cniVersion": version, "name": NETWORK, "type": "tuning", "dataDir": str(data_dir)}
    c.update(keys)
    if prev:
        c["prevResult"] = prev_result(ct, version)
    return c


def run_tuning(
    command: str,
    config: dict | bytes,
    ct,
    plugin: str = PLUGIN,
    args: str = "",
    container_id: str = CONTAINER_ID,
    ifname: str = IFNAME,
    env: dict | None = None,
) -> Outcome:
    return run_plugin(
        plugin,
        command,
        config,
        netns=ct.path if ct is not None else "",
        container_id=container_id,
        ifname=ifname,
        args=args,
        path=["/usr/lib/cni"],
        env=env,
    )


def run_in_process(
    command: str, config: dict | bytes, ct, args: str = "", ifname: str = IFNAME
) -> Outcome:
    """The plugin through skel.run in this process, so that a test can
    monkeypatch module constants (the allow-list path)."""
    environ = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": CONTAINER_ID,
        "CNI_NETNS": ct.path if ct is not None else "",
        "CNI_IFNAME": ifname,
        "CNI_ARGS": args,
        "CNI_PATH": "/usr/lib/cni",
    }
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(environ, io.BytesIO(data), stdout, stderr, TUNING)
    return Outcome(code, stdout.getvalue(), stderr.getvalue())


# --- reading state back ----------------------------------------------------------------


def link_state(ct, ifname: str = IFNAME) -> dict:
    """The attributes tuning changes, as `ip -d link` reports them."""
    link = ip_json("-d", "link", "show", "dev", ifname, netns=ct.name)[0]
    flags = set(link["flags"])
    return {
        "mac": link["address"],
        "mtu": link["mtu"],
        "promisc": "PROMISC" in flags,
        "promiscuity": link.get("promiscuity"),
        "allmulti": "ALLMULTI" in flags,
        "txqlen": link.get("txqlen", 0),  # ip leaves out a length of 0
    }


def sysctl(ct, name: str) -> str:
    proc = in_netns(ct.name, "cat", "/proc/sys/" + name, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.rstrip("\n")


def set_sysctl(ct, name: str, value: str) -> None:
    proc = in_netns(ct.name, "sh", "-c", f"echo {value} > /proc/sys/{name}", capture_output=True)
    assert proc.returncode == 0, proc.stderr


def backup_file(data_dir: Path | str, container_id: str = CONTAINER_ID) -> Path:
    return Path(data_dir) / f"{container_id}_{IFNAME}.json"


def marker_file(
    data_dir: Path | str, network: str = NETWORK, container_id: str = CONTAINER_ID
) -> Path:
    return Path(data_dir) / "pycni-gc" / network / f"{container_id}_{IFNAME}"


def files_under(path: Path | str) -> list[str]:
    """Every file below `path`, relative, sorted ([] when it does not exist)."""
    out = []
    for folder, _dirs, names in os.walk(path):
        out += [os.path.relpath(os.path.join(folder, n), path) for n in names]
    return sorted(out)


def normalize(result: dict | None, ct) -> dict | None:
    from support.differential import normalize

    return normalize(result, ct.path)
