"""What a plugin process imports on ADD and DEL, held against a short list.

Every plugin runs as its own process per container, and each standard
library module it loads costs start-up time on every exec (`subprocess`
alone pulls in `re`, `enum`, `signal`, `threading`, `selectors`: ~12 ms
here). So the set of modules outside pycni that each plugin process loads
is compared with `ALLOWED`: a new heavy import fails here, not in a
benchmark. The plugins run as a runtime runs them (pycni.runtime through
launchers, on this interpreter), each process wrapped so that it writes
`sys.modules` when it exits.
"""

from __future__ import annotations

import json
import sys

import pytest

from pycni.plugins import PLUGINS
from pycni.runtime import CNIConfig, RuntimeConf, network_conf_from_bytes
from pycni.spec.errors import CNIError

from support.plugin_dirs import install_launchers
from support.sandbox import no_dad

# Beyond what the bare interpreter has loaded (measured per run, below).
ALLOWED = {
    "__future__",  # `from __future__ import annotations` runs an import
    "os",
    "os.path",
    "posixpath",
    "genericpath",
    "stat",
    "_stat",
    "_collections_abc",
    "struct",
    "_struct",
    "errno",
    "fcntl",
    "gc",
    "_socket",  # netlink, nf_tables and unix sockets, without `socket`
    "select",  # waiting on a netlink or packet socket
    "_json",  # the C scanner and encoder behind pycni.spec.jsonutil
    "_sha512",  # the reference's name hashes, without `hashlib` (3.9-3.11)
    "_sha2",  # the same on 3.12+
    "_ctypes",  # setns on 3.11 and older, without `ctypes`
    "_bootlocale",  # 3.9: what open() in text mode loads
    "_locale",
}

# Beyond ALLOWED, per plugin type: what only that plugin may load. sql's
# `_sqlite3` is the C module without the `sqlite3` package (no datetime);
# on 3.11+ it loads functools and collections itself.
PLUGIN_ALLOWED = {
    "sql": {
        "_sqlite3",
        "functools",
        "_functools",
        "collections",
        "_collections",
        "itertools",
        "keyword",
        "operator",
        "_operator",
        "reprlib",
        "types",
    },
}

WRAPPER = """#!{python} -IS
import atexit, posix, sys
def _record():
    command = posix.environ.get(b"CNI_COMMAND", b"").decode()
    with open({log!r}, "a") as f:
        f.write("{plugin_type} " + command + " " + " ".join(sorted(sys.modules)) + "\\n")
atexit.register(_record)
exec(compile(open({launcher!r}).read(), {launcher!r}, "exec"), {{"__name__": "__main__"}})
"""


@pytest.fixture
def recorded(tmp_path, host_ns):
    """A CNI_PATH whose plugins record their modules into `log`."""
    launchers = install_launchers(tmp_path / "launchers")
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    log = tmp_path / "modules.log"
    for plugin_type in PLUGINS:
        path = wrappers / plugin_type
        path.write_text(
            WRAPPER.format(
                python=sys.executable,
                log=str(log),
                plugin_type=plugin_type,
                launcher=str(launchers / plugin_type),
            )
        )
        path.chmod(0o755)
    return {"path": [str(wrappers)], "log": log, "cache": tmp_path / "cache", "data": tmp_path}


def run_chain(recorded, name: str, plugins: list[dict], netns: str, caps: dict | None = None):
    conf = {"cniVersion": "1.1.0", "name": name, "plugins": plugins}
    net = network_conf_from_bytes(json.dumps(conf).encode())
    cni = CNIConfig(recorded["path"], cache_dir=str(recorded["cache"]), timeout=60)
    rt = RuntimeConf(f"ctr-{name}", netns, "eth0", capability_args=caps or {})
    try:
        cni.add_network_list(net, rt)
    except CNIError:
        pass  # e.g. a link kind this kernel lacks: its imports still count
    cni.del_network_list(net, rt)


def baseline() -> set[str]:
    import subprocess

    code = "import atexit, posix, sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    return set(out.stdout.split())


def test_every_plugin_adds_and_deletes_with_allowed_imports_only(recorded, netns_factory, tmp_path):
    from pycni.kernel.netlink import RtNetlink

    no_dad()
    with RtNetlink() as nl:  # an uplink for macvlan/ipvlan/vlan, a device to move
        nl.link_add_veth("pyalup0", "pyalup1")
        nl.link_add_veth("pyaldev0", "pyaldev1")
        nl.link_set(nl.link_get("pyalup0"), up=True)
    data = str(tmp_path / "ipam")

    def host_local(subnet: str) -> dict:
        return {"type": "host-local", "dataDir": data, "ranges": [[{"subnet": subnet}]]}

    def static(address: str) -> dict:
        return {"type": "static", "addresses": [{"address": address}]}

    chains = {
        "chain": (
            [
                {
                    "type": "bridge",
                    "bridge": "pyalbr0",
                    "isGateway": True,
                    "ipMasq": True,
                    "ipam": host_local("198.18.230.0/24"),
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "bandwidth", "capabilities": {"bandwidth": True}},
                {"type": "firewall"},
                {"type": "tuning", "mtu": 1400, "dataDir": str(tmp_path / "tuning")},
            ],
            {
                "portMappings": [{"hostPort": 18081, "containerPort": 80, "protocol": "tcp"}],
                "bandwidth": {
                    "ingressRate": 1_000_000,
                    "ingressBurst": 100_000,
                    "egressRate": 1_000_000,
                    "egressBurst": 100_000,
                },
            },
        ),
        "ptp": (
            [
                {"type": "ptp", "ipMasq": True, "ipam": host_local("198.18.231.0/24")},
                {"type": "sbr"},
            ],
            None,
        ),
        "macvlan": (
            [{"type": "macvlan", "master": "pyalup0", "ipam": static("198.18.232.2/24")}],
            None,
        ),
        "ipvlan": (
            [{"type": "ipvlan", "master": "pyalup0", "ipam": static("198.18.233.2/24")}],
            None,
        ),
        "vlan": (
            [{"type": "vlan", "master": "pyalup0", "vlanId": 5, "ipam": static("198.18.234.2/24")}],
            None,
        ),
        "hostdev": (
            [{"type": "host-device", "device": "pyaldev1", "dataDir": str(tmp_path / "hd")}],
            None,
        ),
        "tap": ([{"type": "tap", "ipam": host_local("198.18.235.0/24")}], None),
        "sql": (
            [
                {
                    "type": "bridge",
                    "bridge": "pyalbr1",
                    "ipam": {
                        "type": "sql",
                        "database": {"path": str(tmp_path / "sql" / "ipam.db")},
                        "ranges": [[{"subnet": "198.18.237.0/24"}]],
                    },
                }
            ],
            None,
        ),
        "dummy": ([{"type": "dummy", "ipam": host_local("198.18.236.0/24")}], None),
        "dhcp": (
            [
                {
                    "type": "macvlan",
                    "master": "pyalup0",
                    "ipam": {"type": "dhcp", "daemonSocketPath": str(tmp_path / "none.sock")},
                }
            ],
            None,
        ),
        "vrf": ([{"type": "loopback"}, {"type": "vrf", "vrfname": "pyalvrf"}], None),
    }
    for name, (plugins, caps) in chains.items():
        run_chain(recorded, name, plugins, netns_factory("al").path, caps)

    seen: dict[tuple[str, str], set[str]] = {}
    for line in recorded["log"].read_text().splitlines():
        plugin_type, command, *modules = line.split()
        seen.setdefault((plugin_type, command), set()).update(modules)
    ran = {plugin_type for plugin_type, _ in seen}
    assert ran == set(PLUGINS), f"not run: {sorted(set(PLUGINS) - ran)}"
    assert {command for _, command in seen} >= {"ADD", "DEL"}
    base = baseline()
    wrong = {
        key: sorted(
            m
            for m in modules - base - ALLOWED - PLUGIN_ALLOWED.get(key[0], set())
            if not m.startswith("pycni")
        )
        for key, modules in seen.items()
    }
    wrong = {key: mods for key, mods in wrong.items() if mods}
    assert not wrong, wrong
