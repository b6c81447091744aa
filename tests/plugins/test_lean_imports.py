"""What the plugins' verbs load on the default path (issue 10, item 3).

Each pycni module a plugin process loads costs it time on every exec, so
backends and verb-specific code are imported where they run: the iptables
backend only on the iptables path, the D-Bus client only when there is a
system bus, tc only where something is shaped, the kernel layer not at all
for a tuning DEL with nothing to restore. Importing a verbs module must not
undo that; the verbs that need no kernel are run here for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

IPTABLES = ("pycni.netfilter.iptables", "pycni.plugins.pkg.masquerade_iptables")
NFEXPR = "pycni.netfilter.nfexpr"
NOT_ON_IMPORT = {
    "pycni.plugins.main.bridge.verbs": (
        *IPTABLES,
        "pycni.plugins.main.bridge.add",
        "pycni.plugins.main.bridge.spoofcheck",
        "pycni.plugins.pkg.veth",
    ),
    "pycni.plugins.main.bridge.add": IPTABLES,
    "pycni.plugins.main.ptp.verbs": (
        *IPTABLES,
        "pycni.plugins.main.ptp.add",
        "pycni.plugins.pkg.veth",
    ),
    "pycni.plugins.meta.portmap.verbs": (*IPTABLES, "pycni.plugins.meta.portmap.ipt_backend"),
    "pycni.plugins.meta.firewall.verbs": (
        *IPTABLES,
        "pycni.plugins.meta.firewall.dbus",
        "pycni.plugins.meta.firewall.firewalld",
    ),
    "pycni.plugins.meta.firewall.detect": (
        *IPTABLES,
        "pycni.plugins.meta.firewall.dbus",
        "pycni.plugins.meta.firewall.firewalld",
    ),
    "pycni.plugins.meta.bandwidth.verbs": (
        "pycni.kernel.tc",
        "pycni.plugins.meta.bandwidth.conf",
        "pycni.plugins.meta.bandwidth.shaping",
        "pycni.spec.result",
    ),
    "pycni.plugins.meta.tuning.verbs": (
        "pycni.kernel.netlink",
        "pycni.kernel.link",
        "pycni.spec.result",
    ),
    "pycni.plugins.main.loopback.verbs": ("pycni.spec.result",),
    "pycni.plugins.ipam.host_local.verbs": (
        "pycni.plugins.ipam.host_local.allocator",
        "pycni.plugins.ipam.host_local.dns",
    ),
    "pycni.plugins.pkg.ipam": ("pycni.plugins.pkg.iface", "pycni.plugins.pkg.transaction"),
    # rule expressions are built by ADD; DEL lists and deletes by handle
    "pycni.plugins.pkg.masquerade": (*IPTABLES, NFEXPR),
    "pycni.plugins.meta.portmap.nft_backend": (NFEXPR,),
    "pycni.plugins.meta.firewall.nftables_backend": (NFEXPR,),
}


def _loaded_after(code: str, env: dict | None = None, stdin: bytes = b"") -> set[str]:
    script = (
        f"import sys; sys.path.insert(0, {SRC!r})\n"
        "import atexit\n"
        "atexit.register(lambda: sys.__stderr__.write(\n"
        "    '\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n'))\n" + code
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        input=stdin,
        capture_output=True,
        env=env,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    line = proc.stderr.decode().rpartition("MODULES ")[2]
    assert line, proc.stderr
    return set(line.split())


@pytest.mark.parametrize("module", sorted(NOT_ON_IMPORT))
def test_verbs_module_loads_no_backend(module):
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    assert sorted(loaded & set(NOT_ON_IMPORT[module])) == []


def test_tuning_del_without_backup_loads_no_kernel_module(tmp_path):
    conf = {"cniVersion": "1.0.0", "name": "lean", "type": "tuning", "dataDir": str(tmp_path)}
    env = {
        **os.environ,
        "CNI_COMMAND": "DEL",
        "CNI_CONTAINERID": "lean-ctr",
        "CNI_NETNS": "/var/run/netns/pydt-none",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nonexistent",
    }
    loaded = _loaded_after(
        "from pycni.plugins.meta.tuning import main; main()", env, json.dumps(conf).encode()
    )
    assert "pycni.plugins.meta.tuning.verbs" in loaded
    assert sorted(m for m in loaded if m.startswith("pycni.kernel.")) == []
    assert "pycni.spec.result" not in loaded


def test_firewall_default_backend_without_bus_loads_no_dbus(tmp_path):
    """No bus socket: neither the D-Bus client nor the firewalld backend is
    imported to learn that firewalld is not running (nor iptables, when
    there is no iptables binary)."""
    env = {
        **os.environ,
        "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/none",
        "PATH": str(tmp_path),
    }
    loaded = _loaded_after(
        "from pycni.plugins.meta.firewall.detect import default_backend\n"
        "assert default_backend() == 'nftables'",
        env,
    )
    assert "pycni.plugins.meta.firewall.detect" in loaded
    unwanted = {
        "pycni.plugins.meta.firewall.dbus",
        "pycni.plugins.meta.firewall.firewalld",
        *IPTABLES,
    }
    assert sorted(loaded & unwanted) == []
