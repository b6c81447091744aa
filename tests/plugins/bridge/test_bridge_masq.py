"""bridge ADD/DEL with ipMasq (nftables and iptables backends) and macspoofchk,
in the sandbox: the rules a plugin run leaves (ipmasq and spoofcheck themselves:
tests/kernel)."""

from __future__ import annotations

from pycni.netfilter.names import format_chain_name
from pycni.plugins.pkg import masquerade as ipmasq

from support.bridge import links, ping
from support.outcomes import ok
from support.sandbox import ip, iptables_save, nft_ruleset


def nft_list(*what: str) -> str:
    import subprocess

    return subprocess.run(["nft", "list", *what], capture_output=True, text=True).stdout


# --- nftables backend ----------------------------------------------------------------------


def test_nftables_masquerade_rules_and_teardown(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(
        subnets=("198.18.12.0/24", "fd00:18:12::/64"),
        isGateway=True,
        ipMasq=True,
        ipMasqBackend="nftables",
    )
    r = net.runner(ct, container_id="ctr-nft")
    ok(r.add(conf))
    table = nft_list("table", "inet", "cni_plugins_masquerade")
    comment = ipmasq.comment_for_instance(net.name, "eth0", "ctr-nft")
    assert 'comment "Masquerading for plugins from github.com/containernetworking/plugins"' in table
    assert (
        'comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside '
        'their subnet"'
    ) in table
    assert "type nat hook postrouting priority srcnat; policy accept;" in table
    assert "ip daddr 224.0.0.0/4 return" in table
    assert "ip6 daddr ff00::/8 return" in table
    assert "goto masq_checks" in table
    assert (
        f'ip saddr 198.18.12.2 ip daddr != 198.18.12.0/24 masquerade comment "{comment}"' in table
    )
    assert (
        f'ip6 saddr fd00:18:12::2 ip6 daddr != fd00:18:12::/64 masquerade comment "{comment}"'
    ) in table
    assert "CNI-" not in iptables_save()
    ok(r.delete(conf))
    table = nft_list("table", "inet", "cni_plugins_masquerade")
    assert "masquerade comment" not in table
    assert "goto masq_checks" in table  # the shared table and chains stay


def test_nftables_rules_of_two_containers_are_independent(net, netns_factory):
    conf = net.conf(isGateway=True, ipMasq=True, ipMasqBackend="nftables")
    ra = net.runner(netns_factory(), container_id="ctr-a")
    rb = net.runner(netns_factory(), container_id="ctr-b")
    ok(ra.add(conf))
    ok(rb.add(conf))
    ca = ipmasq.comment_for_instance(net.name, "eth0", "ctr-a")
    cb = ipmasq.comment_for_instance(net.name, "eth0", "ctr-b")
    ok(ra.delete(conf))
    ruleset = nft_ruleset()
    assert ca not in ruleset and cb in ruleset
    assert ruleset.count("goto masq_checks") == 1


# --- iptables backend ------------------------------------------------------------------------


def test_iptables_masquerade_rules_and_teardown(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(
        subnets=("198.18.14.0/24", "fd00:18:14::/64"),
        isGateway=True,
        ipMasq=True,
        ipMasqBackend="iptables",
    )
    r = net.runner(ct, container_id="ctr-ipt")
    ok(r.add(conf))
    chain = format_chain_name(net.name, "ctr-ipt")
    comment = f'"name: \\"{net.name}\\" id: \\"ctr-ipt\\""'
    v4 = iptables_save().splitlines()
    assert f":{chain} - [0:0]" in v4
    assert f"-A POSTROUTING -s 198.18.14.2/32 -m comment --comment {comment} -j {chain}" in v4
    assert f"-A {chain} -d 198.18.14.0/24 -m comment --comment {comment} -j ACCEPT" in v4
    assert f"-A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE" in v4
    v6 = iptables_save(v6=True).splitlines()
    assert f"-A POSTROUTING -s fd00:18:14::2/128 -m comment --comment {comment} -j {chain}" in v6
    assert f"-A {chain} -d fd00:18:14::/64 -m comment --comment {comment} -j ACCEPT" in v6
    assert f"-A {chain} ! -d ff00::/8 -m comment --comment {comment} -j MASQUERADE" in v6
    assert "masquerade comment" not in nft_list("table", "inet", "cni_plugins_masquerade")
    ok(r.delete(conf))
    assert chain not in iptables_save() and chain not in iptables_save(v6=True)


def test_default_backend_is_nftables_when_the_kernel_has_it(net, netns_factory):
    """pycni's default differs from the reference's (iptables): no process
    and no iptables chain, the rule is in the reference's nftables layout."""
    ok(
        net.runner(netns_factory(), container_id="ctr-def").add(
            net.conf(isGateway=True, ipMasq=True)
        )
    )
    assert format_chain_name(net.name, "ctr-def") not in iptables_save()
    assert ipmasq.comment_for_instance(net.name, "eth0", "ctr-def") in nft_ruleset()
    assert ipmasq.default_backend() == "nftables"


# --- macspoofchk ----------------------------------------------------------------------------------


def test_macspoofchk_rules_present_after_add_and_gone_after_del(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isGateway=True, macspoofchk=True)
    r = net.runner(ct, container_id="ctr-spoof")
    result = ok(r.add(conf))
    host_veth = result["interfaces"][1]["name"]
    mac = result["interfaces"][2]["mac"]
    ref = "ctr-spoof-eth0"
    table = nft_list("table", "bridge", "nat")
    assert "chain PREROUTING {" in table
    assert "type filter hook prerouting priority dstnat; policy accept;" in table
    assert f'iifname "{host_veth}" jump cni-br-iface-{ref} comment "macspoofchk-{ref}"' in table
    assert f'jump cni-br-iface-{ref}-mac comment "macspoofchk-{ref}"' in table
    assert f'ether saddr {mac} return comment "macspoofchk-{ref}"' in table
    assert f'drop comment "macspoofchk-{ref}"' in table
    ok(r.delete(conf))
    table = nft_list("table", "bridge", "nat")
    assert "macspoofchk" not in table and f"cni-br-iface-{ref}" not in table
    assert "chain PREROUTING" in table  # the base chain stays


def test_macspoofchk_drops_frames_with_another_source_mac(net, netns_factory):
    a, b = netns_factory("sa"), netns_factory("sb")
    conf = net.conf(subnets=("198.18.17.0/24",), macspoofchk=True)
    ok(net.runner(a, container_id="ctr-sa").add(conf))
    ok(net.runner(b, container_id="ctr-sb").add(conf))
    assert ping(a, "198.18.17.3")
    ip("link", "set", "eth0", "address", "c2:00:00:00:12:34", netns=a.name)
    ip("neigh", "flush", "all", netns=b.name)
    assert not ping(a, "198.18.17.3", timeout=1.0)
    assert links(a.name)["eth0"]["address"] == "c2:00:00:00:12:34"
