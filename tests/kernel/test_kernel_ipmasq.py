"""pycni.kernel.ipmasq: the masquerade rules of both backends (nftables,
iptables-restore) named, rendered and applied, and the nft quoting they use.
What a bridge ADD/DEL with ipMasq leaves is in tests/plugins/bridge."""

from __future__ import annotations

import pytest

from pycni.kernel import ipmasq, nft

from support.sandbox import iptables_save, nft_ruleset

# --- hashed names and comments (pkg/utils test vectors) --------------------------------------


def test_reference_name_vectors():
    assert ipmasq.format_chain_name("test", "1234") == "CNI-2bbe0c48b91a7d1b8a6753a8"
    assert ipmasq.format_comment("test", "1234") == 'name: "test" id: "1234"'
    assert (
        ipmasq.comment_for_instance("unit-test", "eth0", "one")
        == "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"
    )
    long = ipmasq.comment_for_instance("n" * 60, 'e"th0', "c" * 64)
    assert len(long) == 128 and '"' not in long


# --- rendering -------------------------------------------------------------------------------


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


def test_split_args():
    assert ipmasq.split_args('-A X -m comment --comment "a \\"b\\" c" -j Y') == [
        "-A",
        "X",
        "-m",
        "comment",
        "--comment",
        'a "b" c',
        "-j",
        "Y",
    ]


# --- backend selection and failures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ipt", "nft", "ipt_bin", "nft_bin", "expected"),
    [
        (True, True, True, True, "iptables"),
        (True, False, True, True, "iptables"),
        (False, True, True, True, "nftables"),
        (False, False, True, True, "iptables"),
        (False, False, False, True, "nftables"),
        (False, False, False, False, "iptables"),
    ],
)
def test_default_backend_selection(monkeypatch, ipt, nft, ipt_bin, nft_bin, expected):
    from pycni.kernel import nft as nftmod

    monkeypatch.setattr(ipmasq, "supports_iptables", lambda: ipt)
    monkeypatch.setattr(ipmasq, "supports_nftables", lambda: nft)
    monkeypatch.setattr(
        nftmod,
        "which",
        lambda name: f"/x/{name}" if (ipt_bin if name == "iptables" else nft_bin) else None,
    )
    monkeypatch.setattr(nftmod, "binary_available", lambda: nft_bin)
    assert ipmasq.default_backend() == expected


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown ipmasq backend"):
        ipmasq.setup(["198.18.0.2/24"], "n", "eth0", "c", "pf")


def test_nft_setup_listing_failure_is_an_ipmasq_error(monkeypatch):
    """A failing `nft -j list` during setup is reported like any other
    masquerade failure (bridge turns IPMasqError into "failed to set up IP
    masquerade"), not as a bare NftError."""
    from pycni.kernel import nft as nftmod

    def broken(argv, stdin, op):
        raise nftmod.NftError(op, 1, "Error: Could not process rule: Permission denied")

    monkeypatch.setattr(nftmod, "_run", broken)
    with pytest.raises(ipmasq.IPMasqError, match="Permission denied"):
        ipmasq.setup(["198.18.0.2/24"], "n", "eth0", "c", "nftables")


# --- in the sandbox host netns ---------------------------------------------------------------


def test_nftables_readd_replaces_stale_rules(host_ns):
    ipmasq.setup(["198.18.13.2/24"], "pycnet-re", "eth0", "ctr-re", "nftables")
    ipmasq.setup(["198.18.13.3/24"], "pycnet-re", "eth0", "ctr-re", "nftables")
    ruleset = nft_ruleset()
    assert "198.18.13.2" not in ruleset and "ip saddr 198.18.13.3" in ruleset
    ipmasq.teardown([], "pycnet-re", "eth0", "ctr-re")
    assert "198.18.13.3" not in nft_ruleset()


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
