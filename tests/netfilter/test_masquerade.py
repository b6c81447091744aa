"""pycni.plugins.pkg.masquerade: the masquerade rules of both backends,
named, applied and removed. What a bridge ADD/DEL with ipMasq leaves is in
tests/plugins/bridge."""

from __future__ import annotations

import pytest

from pycni.netfilter import iptables as ipt
from pycni.netfilter.names import format_chain_name, format_comment
from pycni.plugins.pkg import masquerade, masquerade_iptables

from support.sandbox import iptables_save, nft_ruleset

# --- hashed names and comments (pkg/utils test vectors) --------------------------------------


def test_reference_name_vectors():
    assert format_chain_name("test", "1234") == "CNI-2bbe0c48b91a7d1b8a6753a8"
    assert format_comment("test", "1234") == 'name: "test" id: "1234"'
    assert (
        masquerade.comment_for_instance("unit-test", "eth0", "one")
        == "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"
    )
    long = masquerade.comment_for_instance("n" * 60, 'e"th0', "c" * 64)
    assert len(long) == 128 and '"' not in long


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown ipmasq backend"):
        masquerade.setup(["198.18.0.2/24"], "n", "eth0", "c", "pf")


# --- iptables rule bookkeeping -------------------------------------------------------------


def test_iptables_teardown_lines_keep_other_jumps():
    text = "\n".join(
        [
            "*nat",
            ":POSTROUTING ACCEPT [0:0]",
            ":CH - [0:0]",
            '-A POSTROUTING -s 198.18.0.5/32 -m comment --comment "name: \\"n\\" id: \\"c\\""'
            " -j CH",
            '-A CH -d 198.18.0.0/24 -m comment --comment "name: \\"n\\" id: \\"c\\"" -j ACCEPT',
            "COMMIT",
        ]
    )
    from pycni.spec.ipnet import IPNet

    table = ipt.Table.parse(4, "nat", text)
    masquerade_iptables.teardown_lines(
        table, [IPNet.parse("198.18.0.5/24")], "CH", 'name: "n" id: "c"'
    )
    assert table.lines[0].startswith("-D POSTROUTING -s 198.18.0.5/32 ")
    assert table.lines[1:] == ["-F CH\n-X CH\n"]


# --- in the sandbox host netns ---------------------------------------------------------------


def test_nftables_layout_is_the_reference_one(host_ns):
    masquerade.setup(["198.18.13.2/24", "fd00:13::2/64"], "unit-test", "eth0", "one", "nftables")
    ruleset = nft_ruleset()
    assert (
        "table inet cni_plugins_masquerade {\n"
        '\tcomment "Masquerading for plugins from github.com/containernetworking/plugins"\n'
        "\tchain masq_checks {\n"
        '\t\tcomment "Masquerade traffic from certain IPs to any (non-multicast) IP outside'
        ' their subnet"\n'
        "\t\tip saddr 198.18.13.2 ip daddr != 198.18.13.0/24 masquerade comment"
        ' "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"\n'
        "\t\tip6 saddr fd00:13::2 ip6 daddr != fd00:13::/64 masquerade comment"
        ' "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"\n'
        "\t}\n\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        "\t\tip daddr 224.0.0.0/4 return\n"
        "\t\tip6 daddr ff00::/8 return\n"
        "\t\tgoto masq_checks\n"
        "\t}\n"
        "}\n"
    ) in ruleset
    assert masquerade.present([], "unit-test", "eth0", "one")
    masquerade.teardown([], "unit-test", "eth0", "one")
    assert "198.18.13.2" not in nft_ruleset()
    assert not masquerade.present([], "unit-test", "eth0", "one")


def test_nftables_readd_replaces_stale_rules(host_ns):
    masquerade.setup(["198.18.13.2/24"], "pycnet-re", "eth0", "ctr-re", "nftables")
    masquerade.setup(["198.18.13.3/24"], "pycnet-re", "eth0", "ctr-re", "nftables")
    ruleset = nft_ruleset()
    assert "198.18.13.2" not in ruleset and "ip saddr 198.18.13.3" in ruleset
    assert ruleset.count("goto masq_checks") == 1
    masquerade.teardown([], "pycnet-re", "eth0", "ctr-re")
    assert "198.18.13.3" not in nft_ruleset()


def test_nftables_gc_keeps_valid_and_other_networks(host_ns):
    for cid in ("a", "b"):
        masquerade.setup([f"198.18.14.{ord(cid)}/24"], "gcnet", "eth0", cid, "nftables")
    masquerade.setup(["198.18.15.9/24"], "othernet", "eth0", "z", "nftables")
    masquerade.gc("gcnet", [("a", "eth0")])
    ruleset = nft_ruleset()
    assert "198.18.14.97" in ruleset and "198.18.14.98" not in ruleset
    assert "198.18.15.9" in ruleset


def test_iptables_setup_is_append_unique(host_ns):
    for _ in range(2):
        masquerade.setup(["198.18.15.2/24"], "pycnet-u", "eth0", "ctr-u", "iptables")
    saved = iptables_save()
    chain = format_chain_name("pycnet-u", "ctr-u")
    assert saved.count(f"-j {chain}") == 1
    assert saved.count(f"-A {chain} ") == 2
    assert masquerade.present(["198.18.15.2/24"], "pycnet-u", "eth0", "ctr-u")
    masquerade.teardown(["198.18.15.2/24"], "pycnet-u", "eth0", "ctr-u")
    assert chain not in iptables_save()


def test_iptables_teardown_without_addresses_finds_the_chain(host_ns):
    masquerade.setup(["198.18.16.2/24"], "pycnet-n", "eth0", "ctr-n", "iptables")
    masquerade.teardown([], "pycnet-n", "eth0", "ctr-n")
    assert format_chain_name("pycnet-n", "ctr-n") not in iptables_save()


def test_teardown_starts_no_process_when_iptables_holds_nothing(host_ns, monkeypatch):
    masquerade.setup(["198.18.17.2/24"], "pycnet-p", "eth0", "ctr-p", "nftables")

    def refuse(*a, **k):
        raise AssertionError("an iptables process was started")

    monkeypatch.setattr(ipt, "run", refuse)
    masquerade.teardown(["198.18.17.2/24"], "pycnet-p", "eth0", "ctr-p")
    assert "198.18.17.2" not in nft_ruleset()
