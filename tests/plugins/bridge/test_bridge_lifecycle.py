"""bridge DEL, CHECK, GC and STATUS through the plugin executable."""

from __future__ import annotations

import pytest

from pycni.netfilter.names import format_chain_name
from pycni.plugins.pkg import masquerade as ipmasq

from support.bridge import addrs, links, veths_on
from support.outcomes import ok
from support.sandbox import ip, nft_ruleset

# --- DEL ------------------------------------------------------------------------------


def test_del_twice(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isGateway=True)
    r = net.runner(ct)
    prev = ok(r.add(conf))
    assert net.reservations() == ["198.18.5.2"]
    del_conf = {**conf, "prevResult": prev}
    for _ in range(2):
        out = r.delete(del_conf)
        assert out.ok, out
        assert out.stdout == ""
    assert "eth0" not in links(ct.name)
    assert veths_on(net.brname) == []
    assert net.reservations() == []
    # shared host objects stay
    assert addrs(net.brname) == ["198.18.5.1/24"]


def test_del_without_netns_releases_ipam(net, netns_factory):
    ct = netns_factory()
    conf = net.conf()
    ok(net.runner(ct, container_id="ctr-nons").add(conf))
    out = net.runner(None, container_id="ctr-nons").delete(conf)
    assert out.ok, out
    assert net.reservations() == []


def test_del_with_netns_deleted(net, netns_factory):
    ct = netns_factory()
    conf = net.conf()
    r = net.runner(ct)
    ok(r.add(conf))
    ct.close()
    out = r.delete(conf)
    assert out.ok, out
    assert net.reservations() == []


def test_del_without_prev_result_or_interface(net, netns_factory):
    ct = netns_factory()
    conf = net.conf()
    r = net.runner(ct)
    ok(r.add(conf))
    ip("link", "del", "eth0", netns=ct.name)
    out = r.delete(conf)
    assert out.ok, out
    assert net.reservations() == []


def test_del_of_never_added_attachment(net, netns_factory):
    out = net.runner(netns_factory()).delete(net.conf(isGateway=True, ipMasq=True))
    assert out.ok, out


def test_del_l2(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(l2=True)
    r = net.runner(ct)
    ok(r.add(conf))
    ok(r.delete(conf))
    ok(r.delete(conf))
    assert "eth0" not in links(ct.name)


def test_del_nftables_masquerade_when_netns_is_gone(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isGateway=True, ipMasq=True, ipMasqBackend="nftables")
    r = net.runner(ct)
    ok(r.add(conf))
    assert "masquerade comment" in nft_ruleset()
    ct.close()
    ok(r.delete(conf))
    assert "masquerade comment" not in nft_ruleset()


# --- CHECK -----------------------------------------------------------------------------


def check_conf(conf: dict, prev: dict) -> dict:
    return {**conf, "prevResult": prev}


@pytest.mark.parametrize("cni_version", ["0.4.0", "1.0.0", "1.1.0"])
def test_check_passes_after_add(net, netns_factory, cni_version):
    ct = netns_factory()
    conf = net.conf(cni_version, subnets=("198.18.5.0/24", "fd00:18:5::/64"), isDefaultGateway=True)
    r = net.runner(ct)
    prev = ok(r.add(conf))
    out = r.check(check_conf(conf, prev))
    assert out.ok, out


def test_check_detects_a_removed_address(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isGateway=True)
    r = net.runner(ct)
    prev = ok(r.add(conf))
    ip("addr", "del", "198.18.5.2/24", "dev", "eth0", netns=ct.name)
    out = r.check(check_conf(conf, prev))
    assert not out.ok
    assert "Failed to match addr 198.18.5.2/24 on interface eth0" in out.error["msg"]
    assert ct.path in out.error["msg"]


def test_check_detects_a_removed_route(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isDefaultGateway=True)
    r = net.runner(ct)
    prev = ok(r.add(conf))
    ip("route", "del", "default", netns=ct.name)
    out = r.check(check_conf(conf, prev))
    assert not out.ok
    assert "Expected Route 0.0.0.0/0 via 198.18.5.1 not found" in out.error["msg"]


def test_check_detects_a_missing_subnet_route(net, netns_factory):
    ct = netns_factory()
    conf = net.conf()
    r = net.runner(ct)
    prev = ok(r.add(conf))
    ip("route", "del", "198.18.5.0/24", "dev", "eth0", netns=ct.name)
    out = r.check(check_conf(conf, prev))
    assert not out.ok
    assert "no route to 198.18.5.0/24" in out.error["msg"]


def test_check_detects_promisc_and_mac_changes(net, netns_factory):
    ct = netns_factory()
    conf = net.conf()
    r = net.runner(ct)
    prev = ok(r.add(conf))
    ip("link", "set", net.brname, "promisc", "on")
    out = r.check(check_conf(conf, prev))
    assert not out.ok and "Promisc Mode false" in out.error["msg"]
    ip("link", "set", net.brname, "promisc", "off")
    ip("link", "set", "eth0", "address", "c2:00:00:00:00:99", netns=ct.name)
    out = r.check(check_conf(conf, prev))
    assert not out.ok and "doesn't match container Mac" in out.error["msg"]


def test_check_detects_host_veth_leaving_the_bridge(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isGateway=True)  # a gateway address pins the bridge MAC
    r = net.runner(ct)
    prev = ok(r.add(conf))
    ip("link", "set", prev["interfaces"][1]["name"], "nomaster")
    out = r.check(check_conf(conf, prev))
    assert not out.ok
    assert out.error["msg"] == f"CNI veth created for bridge {net.brname} was not found"


def test_check_detects_released_ip_reservation(net, netns_factory):
    """IPAM CHECK runs first: host-local reports the lost reservation."""
    ct = netns_factory()
    conf = net.conf()
    r = net.runner(ct)
    prev = ok(r.add(conf))
    (net.data_dir / net.name / "198.18.5.2").unlink()
    out = r.check(check_conf(conf, prev))
    assert not out.ok, out


def test_check_requires_prev_result(net, netns_factory):
    ct = netns_factory()
    conf = net.conf()
    r = net.runner(ct)
    ok(r.add(conf))
    out = r.check(conf)
    assert not out.ok
    assert out.error["msg"] == "Required prevResult missing"


def test_check_l2(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(l2=True)
    r = net.runner(ct)
    prev = ok(r.add(conf))
    assert r.check(check_conf(conf, prev)).ok


# --- GC and STATUS ------------------------------------------------------------------------


def test_gc_releases_stale_attachments_and_their_masquerade(net, netns_factory):
    conf = net.conf("1.1.0", isGateway=True, ipMasq=True, ipMasqBackend="nftables")
    keep_ct, stale_ct = netns_factory(), netns_factory()
    ok(net.runner(keep_ct, container_id="ctr-keep").add(conf))
    ok(net.runner(stale_ct, container_id="ctr-stale").add(conf))
    assert len(net.reservations()) == 2
    keep = ipmasq.comment_for_instance(net.name, "eth0", "ctr-keep")
    stale = ipmasq.comment_for_instance(net.name, "eth0", "ctr-stale")
    before = nft_ruleset()
    assert keep in before and stale in before
    gc_conf = {**conf, "cni.dev/valid-attachments": [{"containerID": "ctr-keep", "ifname": "eth0"}]}
    out = net.run("GC", gc_conf, container_id="", ifname="")
    assert out.ok, out
    after = nft_ruleset()
    assert keep in after and stale not in after
    assert net.reservations() == ["198.18.5.2"]


def test_gc_iptables_chains_of_stale_containers(net, netns_factory):
    from support.sandbox import iptables_save

    conf = net.conf("1.1.0", isGateway=True, ipMasq=True, ipMasqBackend="iptables")
    ok(net.runner(netns_factory(), container_id="ctr-a").add(conf))
    ok(net.runner(netns_factory(), container_id="ctr-b").add(conf))
    chain_a = format_chain_name(net.name, "ctr-a")
    chain_b = format_chain_name(net.name, "ctr-b")
    gc_conf = {**conf, "cni.dev/valid-attachments": [{"containerID": "ctr-a", "ifname": "eth0"}]}
    assert net.run("GC", gc_conf, container_id="", ifname="").ok
    saved = iptables_save()
    assert chain_a in saved and chain_b not in saved


def test_gc_without_attachment_list_keeps_rules(net, netns_factory):
    conf = net.conf("1.1.0", isGateway=True, ipMasq=True, ipMasqBackend="nftables")
    ok(net.runner(netns_factory(), container_id="ctr-k").add(conf))
    assert net.run("GC", conf, container_id="", ifname="").ok
    assert ipmasq.comment_for_instance(net.name, "eth0", "ctr-k") in nft_ruleset()


def test_status_is_forwarded_to_ipam(net):
    conf = net.conf("1.1.0")
    assert net.run("STATUS", conf, container_id="", ifname="").ok
    out = net.run("STATUS", conf, container_id="", ifname="", path=["/nonexistent"])
    assert not out.ok
    assert "host-local" in out.error["msg"]


def test_status_and_gc_l2(net):
    conf = net.conf("1.1.0", l2=True)
    assert net.run("STATUS", conf, container_id="", ifname="", path=["/nonexistent"]).ok
    assert net.run("GC", conf, container_id="", ifname="", path=["/nonexistent"]).ok


def test_gc_and_status_need_1_1_0(net):
    out = net.run("GC", net.conf("1.0.0"), container_id="", ifname="")
    assert not out.ok and out.error["code"] == 1


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_check_detects_missing_masquerade_rules(net, netns_factory, backend):
    ct = netns_factory()
    conf = net.conf(isGateway=True, ipMasq=True, ipMasqBackend=backend)
    r = net.runner(ct, container_id="ctr-chk")
    prev = ok(r.add(conf))
    assert r.check(check_conf(conf, prev)).ok
    ipmasq.teardown([], net.name, "eth0", "ctr-chk")
    out = r.check(check_conf(conf, prev))
    assert not out.ok
    assert "IP masquerade rules for ctr-chk/eth0" in out.error["msg"]


def test_check_detects_missing_spoofcheck_rules(net, netns_factory):
    from pycni.plugins.main.bridge import spoofcheck

    ct = netns_factory()
    conf = net.conf(macspoofchk=True)
    r = net.runner(ct, container_id="ctr-sc")
    prev = ok(r.add(conf))
    assert r.check(check_conf(conf, prev)).ok
    spoofcheck.teardown("ctr-sc-eth0")
    out = r.check(check_conf(conf, prev))
    assert not out.ok
    assert "mac spoof check chains cni-br-iface-ctr-sc-eth0 are missing" in out.error["msg"]


@pytest.mark.parametrize("gateway", [True, False])
@pytest.mark.parametrize("concurrent", [True, False])
def test_adds_agree_on_the_bridge_mac(net, netns_factory, gateway, concurrent):
    """Every result names the MAC the bridge keeps, so CHECK passes for each
    of several ADDs, also when they race to create the bridge (issue 6,
    item 2): a bridge whose MAC is not fixed follows its lowest port's."""
    from concurrent.futures import ThreadPoolExecutor

    conf = net.conf(subnets=("198.18.13.0/24",), isGateway=gateway)
    runners = [net.runner(netns_factory()) for _ in range(8)]
    with ThreadPoolExecutor(len(runners) if concurrent else 1) as pool:
        outcomes = list(pool.map(lambda r: r.add(conf), runners))
    assert all(o.ok for o in outcomes), outcomes
    results = [o.json for o in outcomes]
    bridge_mac = links()[net.brname]["address"]
    assert {res["interfaces"][0]["mac"] for res in results} == {bridge_mac}
    for runner, res in zip(runners, results):
        out = runner.check(check_conf(conf, res))
        assert out.ok, out
