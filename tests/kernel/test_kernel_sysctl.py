"""sysctl: the reference's name rule, and get/set inside sandbox namespaces only."""

from __future__ import annotations

import subprocess

import pytest

from pycni.kernel import sysctl

from support import sandbox


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("net/ipv4/ip_forward", "net/ipv4/ip_forward"),
        ("net/ipv4/conf/eth0.100/arp_notify", "net/ipv4/conf/eth0.100/arp_notify"),
        ("net.ipv4.conf.eth0/100.arp_notify", "net/ipv4/conf/eth0.100/arp_notify"),
        ("kernel", "kernel"),
    ],
)
def test_normalize(name, path):
    assert sysctl.normalize(name) == path
    assert sysctl.path_of(name) == "/proc/sys/" + path


def _read_in(ns, path: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns.name, "cat", f"/proc/sys/{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_get_set_in_sandbox(root, netns_factory):
    ns = netns_factory("sy")
    real_host = sysctl.get("net.ipv4.ip_forward")  # read only, before entering the sandbox
    with sandbox.entered(ns):
        old = sysctl.get("net.ipv4.ip_forward")
        new = "0" if old == "1" else "1"
        assert sysctl.set("net.ipv4.ip_forward", new) == old
        assert sysctl.get("net/ipv4/ip_forward") == new
        assert _read_in(ns, "net/ipv4/ip_forward") == new
        # unchanged value: no write, the current value is returned
        assert sysctl.set("net.ipv4.ip_forward", new) == new
    # the real host is untouched
    assert sysctl.get("net.ipv4.ip_forward") == real_host


def test_dotted_interface_name(nl, host_ns):
    name = "pyc.100"
    nl.link_add_veth(name, "pycsx")
    path = f"net/ipv4/conf/{name}/arp_notify"
    assert sysctl.get(path) == "0"
    assert sysctl.set(path, 1) == "0"
    assert sysctl.get(path) == "1"
    assert _read_in(host_ns, path) == "1"


def test_set_in_other_netns(root, host_ns, container_ns):
    mine_before = sysctl.get("net.ipv6.conf.all.forwarding")
    theirs = sysctl.get_in(container_ns.path, "net.ipv6.conf.all.forwarding")
    new = "0" if theirs == "1" else "1"
    assert sysctl.set_in(container_ns.path, "net.ipv6.conf.all.forwarding", new) == theirs
    assert _read_in(container_ns, "net/ipv6/conf/all/forwarding") == new
    assert sysctl.get_in(container_ns.path, "net/ipv6/conf/all/forwarding") == new
    # the caller's namespace is unchanged, and the caller is back in it
    assert sysctl.get("net.ipv6.conf.all.forwarding") == mine_before
    assert _read_in(host_ns, "net/ipv6/conf/all/forwarding") == mine_before


def test_missing_key(root, host_ns):
    with pytest.raises(FileNotFoundError):
        sysctl.get("net.ipv4.conf.pycnonexistent.arp_notify")
