"""The talk's "macvlan + DHCP" order (issue 9, 4 (a)): macvlan creates the
interface, DHCP runs through it, macvlan configures the lease.

A sandbox LAN (a bridge in its own netns with dnsmasq, support.dhcp_lan)
is reached from the sandbox host through its uplink, a veth; the network is
examples/macvlan-dhcp/10-lan.conflist itself, with only `master` and the
daemon's socket pointed at the test's. Two containers get leases through
pycni's runtime and our `dhcp daemon`, ping each other and the server, the
dnsmasq lease file shows the client IDs, a renewal at T1 is seen, and DEL
hands the leases back (they leave the lease file) and removes the links.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycni.runtime.api import CNIConfig, RuntimeConf
from pycni.runtime.loader import network_conf_from_bytes

from support.bridge import links
from support.dhcp_lan import RENEW_AFTER, ROUTER, Daemon, Lan, wait_for
from support.sandbox import in_netns, ip

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "macvlan-dhcp" / "10-lan.conflist"
UPLINK = "mvuplink"


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "dh"}


@pytest.fixture
def lan(host_ns) -> Iterator[Lan]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="dh-scn-"))
    lan = Lan(workdir)
    try:
        lan.start_dnsmasq()
        lan.attach(host_ns, UPLINK)
        ip("link", "set", UPLINK, "up", netns=host_ns.name)
        yield lan
    finally:
        lan.close()
        shutil.rmtree(workdir, ignore_errors=True)


def pings(ns_name: str, address: str) -> bool:
    argv = ["busybox", "ping"] if shutil.which("ping") is None else ["ping"]
    proc = in_netns(ns_name, *argv, "-c", "1", "-W", "2", address, capture_output=True)
    return proc.returncode == 0


def load_example(socket_path: Path):
    doc = json.loads(EXAMPLE.read_text())
    doc["plugins"][0]["master"] = UPLINK
    doc["plugins"][0]["ipam"]["daemonSocketPath"] = str(socket_path)
    return network_conf_from_bytes(json.dumps(doc).encode())


def test_two_containers_lease_ping_renew_release(lan, host_ns, netns_factory, launcher_dir):
    daemon = Daemon(lan, lan.workdir / "run" / "dhcp.sock")
    netconf = load_example(daemon.socket_path)
    cni = CNIConfig(path=[str(launcher_dir)], cache_dir=str(lan.workdir / "cache"))
    cts = {k: netns_factory(f"mv{k}") for k in ("a", "b")}
    rts = {k: RuntimeConf(f"talk-{k}", ns.path, "eth0") for k, ns in cts.items()}
    client_ids = {k: f"talk-{k}/{netconf.name}/eth0" for k in cts}
    try:
        leased = {}
        for k in ("a", "b"):
            result = cni.add_network_list(netconf, rts[k])
            assert result is not None and len(result.ips) == 1
            assert result.ips[0].gateway == ROUTER
            kind = links(cts[k].name)["eth0"]["linkinfo"]["info_kind"]
            assert kind == "macvlan"
            leased[k] = result.ips[0].address.split("/")[0]
            assert lan.has_lease(client_ids[k]), lan.leases()
        assert leased["a"] != leased["b"]

        for src, dst in (("a", leased["b"]), ("b", leased["a"]), ("a", ROUTER), ("b", ROUTER)):
            assert pings(cts[src].name, dst), f"{src} -> {dst}"

        # dnsmasq sends T1 = RENEW_AFTER s: the daemon renews (a second ACK)
        def renewed() -> bool:
            return lan.log().count(f"DHCPACK(dhbr0) {leased['a']}") >= 2

        assert wait_for(renewed, RENEW_AFTER + 10), lan.log()
        for k in ("a", "b"):
            cni.check_network_list(netconf, rts[k])
    finally:
        for k in ("a", "b"):
            cni.del_network_list(netconf, rts[k])
        daemon.stop()

    for k in ("a", "b"):
        assert not lan.has_lease(client_ids[k]), lan.leases()
        assert "eth0" not in links(cts[k].name)
    assert cni.get_cached_attachments() == []
