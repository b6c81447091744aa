"""The kernel modules keep plugin start-up cheap: no heavy imports at module level."""

from __future__ import annotations

import os
import subprocess
import sys

import pycni

FORBIDDEN = ("typing", "dataclasses", "enum", "subprocess", "ipaddress", "socket", "ctypes")
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("netlink", "link", "addr", "route", "neigh", "rule", "bridge", "netns", "sysctl")


def test_no_heavy_imports():
    src = os.path.dirname(os.path.dirname(pycni.__file__))
    code = f"""
import sys
sys.path.insert(0, {src!r})
before = set(sys.modules)
from pycni.kernel import {", ".join(MODULES)}
from pycni.kernel.netlink import RtNetlink
sys.path.insert(0, {TESTS!r})
from support.netlink import FakeSocket
loaded = set(sys.modules) - before
nl = RtNetlink._with_socket(FakeSocket())
nl.link_add_veth("a", "b", mtu=1400)
nl.link_add("vlan", "v", parent=2, data={{"id": 5}})
nl.link_set(3, up=True, name="x")
nl.bridge_port_set(3, hairpin=True)
nl.addr_add(3, "198.18.0.1/24")
nl.route_add("198.18.1.0/24", gateway="198.18.0.2")
nl.neigh_add(3, "198.18.0.3", "02:00:00:00:00:01")
nl.rule_add(table=5, src="198.18.0.0/24")
loaded |= set(sys.modules) - before
bad = sorted(m for m in {FORBIDDEN!r} if m in loaded)
print(",".join(bad))
"""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "", f"heavy modules imported: {proc.stdout.strip()}"


def test_netlink_imports_operation_modules_on_first_use():
    src = os.path.dirname(os.path.dirname(pycni.__file__))
    code = f"""
import sys
sys.path.insert(0, {src!r})
from pycni.kernel.netlink import RtNetlink
ops = ("link", "addr", "route", "neigh", "rule", "bridge")
print(",".join(m for m in ops if "pycni.kernel." + m in sys.modules))
print(hasattr(RtNetlink._with_socket(None), "route_add"))
"""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split("\n")[:2] == ["", "True"]


def test_netlink_methods_are_the_module_functions():
    from pycni.kernel import addr, bridge, link, neigh, route, rule
    from pycni.kernel.netlink import RtNetlink

    expected = {"wait_dad": addr.wait_dad}
    for mod in (link, addr, route, neigh, rule):
        prefix = mod.__name__.rpartition(".")[2] + "_"
        expected.update((n, getattr(mod, n)) for n in vars(RtNetlink) if n.startswith(prefix))
    for n in ("port_set", "vlan_add", "vlan_del", "vlan_list"):
        expected["bridge_" + n] = getattr(bridge, n)
    assert len(expected) == 26
    nl = RtNetlink._with_socket(None)
    for name, fn in expected.items():
        assert name in dir(nl)
        assert getattr(nl, name).__func__ is fn
