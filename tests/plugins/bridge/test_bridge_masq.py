"""ipMasq (nftables and iptables backends) and macspoofchk, in the sandbox."""

from __future__ import annotations

import pytest
from brtest import iptables_save, links, nft_ruleset, ping
from sandbox import ip

from pycni.kernel import ipmasq, nft, spoofcheck


def ok(outcome):
    assert outcome.ok, outcome
    return outcome.json


def nft_list(*what: str) -> str:
    import subprocess

    return subprocess.run(["nft", "list", *what], capture_output=True, text=True).stdout


# --- hashed names and comments (pkg/utils test vectors) ----------------------------------


def test_reference_name_vectors():
    assert ipmasq.format_chain_name("test", "1234") == "CNI-2bbe0c48b91a7d1b8a6753a8"
    assert ipmasq.format_comment("test", "1234") == 'name: "test" id: "1234"'
    assert (
        ipmasq.comment_for_instance("unit-test", "eth0", "one")
        == "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"
    )
    long = ipmasq.comment_for_instance("n" * 60, 'e"th0', "c" * 64)
    assert len(long) == 128 and '"' not in long


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


def test_nftables_readd_replaces_stale_rules(host_ns):
    ipmasq.setup(["198.18.13.2/24"], "pycnet-re", "eth0", "ctr-re", "nftables")
    ipmasq.setup(["198.18.13.3/24"], "pycnet-re", "eth0", "ctr-re", "nftables")
    ruleset = nft_ruleset()
    assert "198.18.13.2" not in ruleset and "ip saddr 198.18.13.3" in ruleset
    ipmasq.teardown([], "pycnet-re", "eth0", "ctr-re")
    assert "198.18.13.3" not in nft_ruleset()


def test_nft_setup_script_is_one_transaction():
    from pycni.spec.ipnet import IPNet

    script = ipmasq.nft_setup_script(
        [IPNet.parse("198.18.0.5/24"), IPNet.parse("fd00::5/64")], "c", [{"handle": 7}]
    )
    lines = script.splitlines()
    assert lines[0].startswith("add table inet cni_plugins_masquerade { comment ")
    assert "flush chain inet cni_plugins_masquerade postrouting" in lines
    assert "delete rule inet cni_plugins_masquerade masq_checks handle 7" in lines
    assert lines[-2] == (
        "add rule inet cni_plugins_masquerade masq_checks ip saddr == 198.18.0.5 "
        'ip daddr != 198.18.0.0/24 masquerade comment "c"'
    )
    assert lines[-1].startswith(
        "add rule inet cni_plugins_masquerade masq_checks ip6 saddr == "
        "fd00::5 ip6 daddr != fd00::/64 masquerade"
    )


def test_nft_quote_refuses_what_nft_cannot_carry():
    assert nft.quote("a b;c") == '"a b;c"'
    for bad in ('a"b', "a\nb", "a\x01b"):
        with pytest.raises(ValueError):
            nft.quote(bad)


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
    chain = ipmasq.format_chain_name(net.name, "ctr-ipt")
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


def test_default_backend_is_iptables_when_usable(net, netns_factory):
    ok(
        net.runner(netns_factory(), container_id="ctr-def").add(
            net.conf(isGateway=True, ipMasq=True)
        )
    )
    assert ipmasq.format_chain_name(net.name, "ctr-def") in iptables_save()
    assert ipmasq.default_backend() == "iptables"


def test_iptables_setup_is_append_unique(host_ns):
    for _ in range(2):
        ipmasq.setup(["198.18.15.2/24"], "pycnet-u", "eth0", "ctr-u", "iptables")
    saved = iptables_save()
    chain = ipmasq.format_chain_name("pycnet-u", "ctr-u")
    assert saved.count(f"-j {chain}") == 1
    assert saved.count(f"-A {chain} ") == 2
    ipmasq.teardown(["198.18.15.2/24"], "pycnet-u", "eth0", "ctr-u")
    assert chain not in iptables_save()


def test_iptables_teardown_without_addresses_finds_the_chain(host_ns):
    ipmasq.setup(["198.18.16.2/24"], "pycnet-n", "eth0", "ctr-n", "iptables")
    ipmasq.teardown([], "pycnet-n", "eth0", "ctr-n")
    assert ipmasq.format_chain_name("pycnet-n", "ctr-n") not in iptables_save()


def test_iptables_rule_lines():
    from pycni.spec.ipnet import IPNet

    rules = [
        ipmasq.IptRule(ipmasq.split_args(line))
        for line in (
            '-A POSTROUTING -s 198.18.0.5/32 -m comment --comment "name: \\"n\\" id: \\"c\\""'
            " -j CH",
            '-A CH -d 198.18.0.0/24 -m comment --comment "name: \\"n\\" id: \\"c\\"" -j ACCEPT',
        )
    ]
    assert rules[0].comment == 'name: "n" id: "c"'
    lines = ipmasq.ipt_setup_lines(
        [IPNet.parse("198.18.0.5/24")], "CH", 'name: "n" id: "c"', {"CH"}, rules
    )
    # only the missing MASQUERADE rule is appended
    assert lines == [
        '-A CH ! -d 224.0.0.0/4 -j MASQUERADE -m comment --comment "name: \\"n\\" id: \\"c\\""\n'
    ]
    down = ipmasq.ipt_teardown_lines(
        [IPNet.parse("198.18.0.5/24")], "CH", 'name: "n" id: "c"', {"CH"}, rules
    )
    assert down[0].startswith("-D POSTROUTING -s 198.18.0.5/32 ")
    assert down[1:] == ["-F CH\n", "-X CH\n"]


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


def test_spoofcheck_teardown_is_a_no_op_without_rules(host_ns):
    spoofcheck.teardown("nothing-here")
    assert spoofcheck.teardown_commands([], "x") == []
