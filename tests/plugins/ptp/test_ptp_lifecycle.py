"""ptp ADD/CHECK/DEL/GC/STATUS against the kernel, in sandbox namespaces."""

from __future__ import annotations

import time

from pycni.plugins.pkg import masquerade

from support.bridge import addrs, links
from support.outcomes import err, ok
from support.ptp import host_veths, no_rules_left, routes_of
from support.sandbox import ip, nft_ruleset


def test_add_routes_everything_via_the_gateway(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-routes")
    res = ok(r.add(net.conf(mtu=1400)))
    assert res["ips"] == [{"address": "198.18.6.2/24", "gateway": "198.18.6.1", "interface": 1}]
    hveth, cont = res["interfaces"]
    assert cont["name"] == "eth0" and cont["sandbox"] == ct.path
    assert hveth["name"].startswith("veth") and len(hveth["name"]) == 12
    assert routes_of(ct.name) == [
        "198.18.6.0/24 via 198.18.6.1 dev eth0 src 198.18.6.2",
        "198.18.6.1 dev eth0 scope link src 198.18.6.2",
    ]
    assert routes_of(None) == [f"198.18.6.2 dev {hveth['name']} scope host"]
    assert addrs(hveth["name"]) == ["198.18.6.1/32"]
    assert links(ct.name)["eth0"]["mtu"] == 1400
    assert links()[hveth["name"]]["mtu"] == 1400
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "1"
    ok(r.delete(net.conf()))
    assert host_veths() == []
    assert routes_of(None) == []
    assert net.reservations() == []


def test_two_containers_share_the_gateway_address(net, netns_factory):
    a, b = netns_factory(), netns_factory()
    ra, rb = net.runner(a, container_id="ctr-a"), net.runner(b, container_id="ctr-b")
    res_a, res_b = ok(ra.add(net.conf())), ok(rb.add(net.conf()))
    va, vb = res_a["interfaces"][0]["name"], res_b["interfaces"][0]["name"]
    assert addrs(va) == addrs(vb) == ["198.18.6.1/32"]
    assert routes_of(None) == [
        f"198.18.6.2 dev {va} scope host",
        f"198.18.6.3 dev {vb} scope host",
    ]
    ok(ra.delete(net.conf()))
    assert routes_of(None) == [f"198.18.6.3 dev {vb} scope host"]
    assert addrs(vb) == ["198.18.6.1/32"]
    ok(rb.delete(net.conf()))
    assert host_veths() == []


def test_check_passes_then_fails_on_each_missing_piece(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-check")
    conf = net.conf(ipMasq=True)
    res = ok(r.add(conf))
    checked = {**conf, "prevResult": res}
    ok(r.check(checked))
    hveth = res["interfaces"][0]["name"]

    ip("addr", "del", "198.18.6.1/32", "dev", hveth)
    code, msg = err(r.check(checked))
    assert msg == f"ptp: gateway address 198.18.6.1/32 missing on host veth {hveth}"
    ip("addr", "add", "198.18.6.1/32", "dev", hveth)
    ok(r.check(checked))

    ip("route", "del", "198.18.6.0/24", netns=ct.name)
    code, msg = err(r.check(checked))
    assert "198.18.6.0/24" in msg
    ip("route", "add", "198.18.6.0/24", "via", "198.18.6.1", "dev", "eth0", netns=ct.name)
    ok(r.check(checked))

    code, msg = err(r.check(conf))
    assert (code, msg) == (7, "ptp: Required prevResult missing")

    ip("link", "del", "eth0", netns=ct.name)
    code, msg = err(r.check(checked))
    assert msg == "ptp: Container Interface name in prevResult: eth0 not found"
    ok(r.delete(conf))
    code, msg = err(r.check(checked))
    assert msg == "host-local: Failed to find address added by container ctr-check"


def test_check_finds_missing_masquerade_rules(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-masq-check")
    conf = net.conf(ipMasq=True)
    res = ok(r.add(conf))
    masquerade.teardown(["198.18.6.2/24"], net.name, "eth0", "ctr-masq-check")
    _code, msg = err(r.check({**conf, "prevResult": res}))
    assert "IP masquerade rules" in msg
    ok(r.delete(conf))


def test_ipmasq_defaults_to_nftables_and_del_removes_it(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-nft")
    conf = net.conf(subnets=("198.18.6.0/24", "fd00:18:6::/64"), ipMasq=True)
    ok(r.add(conf))
    ruleset = nft_ruleset()
    assert "ip saddr 198.18.6.2 ip daddr != 198.18.6.0/24 masquerade" in ruleset
    assert "ip6 saddr fd00:18:6::2 ip6 daddr != fd00:18:6::/64 masquerade" in ruleset
    ok(r.delete(conf))
    assert no_rules_left()


def test_del_with_the_netns_gone_removes_rules_and_reservation(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-gone")
    conf = net.conf(ipMasq=True, ipMasqBackend="iptables")
    res = ok(r.add(conf))
    ct.close()
    # the pair goes with the namespace, which the kernel tears down asynchronously
    deadline = time.monotonic() + 5
    while host_veths() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_veths() == []
    ok(r.delete({**conf, "prevResult": res}))
    ok(r.delete(conf))
    assert net.reservations() == []
    assert no_rules_left()


def test_del_without_prev_result_when_the_interface_is_gone(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-noif")
    conf = net.conf(ipMasq=True)
    ok(r.add(conf))
    ip("link", "del", "eth0", netns=ct.name)
    ok(r.delete(conf))
    assert net.reservations() == []
    assert no_rules_left()


def test_del_twice_and_with_empty_netns(net, netns_factory):
    ct = netns_factory()
    r = net.runner(ct, container_id="ctr-twice")
    conf = net.conf()
    ok(r.add(conf))
    ok(r.delete(conf))
    ok(r.delete(conf))
    ok(r.delete(conf, netns=""))
    assert net.reservations() == []
    assert "eth0" not in links(ct.name)


def test_del_of_a_config_without_ipam(net, netns_factory):
    """ADD refuses it (code 7); DEL succeeds (the reference fails: no plugin name)."""
    ct = netns_factory()
    conf = net.conf()
    del conf["ipam"]
    assert err(net.runner(ct).add(conf))[0] == 7
    ok(net.runner(ct).delete(conf))


def test_gc_removes_stale_masquerade_rules_only(net, netns_factory):
    a, b = netns_factory(), netns_factory()
    conf = net.conf(ipMasq=True)
    ok(net.runner(a, container_id="ctr-keep").add(conf))
    ok(net.runner(b, container_id="ctr-stale").add(conf))
    gc_conf = {
        **conf,
        "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": "ctr-keep", "ifname": "eth0"}],
    }
    ok(net.runner(None).gc(gc_conf))
    ruleset = nft_ruleset()
    assert "ip saddr 198.18.6.2 " in ruleset
    assert "ip saddr 198.18.6.3 " not in ruleset
    assert net.reservations() == ["198.18.6.2"]  # host-local GC released the stale one
    ok(net.runner(a, container_id="ctr-keep").delete(conf))
    ok(net.runner(b, container_id="ctr-stale").delete(conf))
    assert no_rules_left()


def test_status(net):
    ok(net.runner(None).status(net.conf(cni_version="1.1.0")))
    conf = net.conf(cni_version="1.1.0")
    del conf["ipam"]
    assert err(net.runner(None).status(conf))[0] == 7
