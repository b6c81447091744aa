"""pycni.netfilter.nftables: what the client guarantees beyond a single
batch (dump consistency, comparing listed rules, leaving out existing
chains), against the kernel in a sandbox netns."""

from __future__ import annotations

import pytest

from pycni.netfilter import nfexpr as x
from pycni.netfilter import nftables as nft
from pycni.plugins.pkg import masquerade

from support.sandbox import nft_ruleset


def test_an_interrupted_dump_is_taken_again(monkeypatch):
    answers = [([b"partial"], True), ([b"whole"], False)]
    monkeypatch.setattr(nft.Nft, "__init__", lambda self: None)
    monkeypatch.setattr(nft.Nft, "_dump_once", lambda self, *a: answers.pop(0))
    assert nft.Nft()._dump(nft.NFT_MSG_GETRULE, "ip", b"", "list") == [b"whole"]


def test_a_dump_interrupted_every_time_is_an_error(monkeypatch):
    monkeypatch.setattr(nft.Nft, "__init__", lambda self: None)
    monkeypatch.setattr(nft.Nft, "_dump_once", lambda self, *a: ([], True))
    with pytest.raises(nft.NftError, match="interrupted"):
        nft.Nft()._dump(nft.NFT_MSG_GETRULE, "ip", b"", "list")


def test_listed_rules_compare_with_what_we_would_write(host_ns):
    wanted = [
        *x.addr("inet", "daddr", "198.18.0.0/15"),
        *x.ct_state("established"),
        *x.verdict("accept"),
    ]
    other = [*x.addr("inet", "daddr", "198.18.0.0/16"), *x.verdict("accept")]
    with nft.Nft() as c:
        b = c.batch()
        b.add_table("inet", "pyctest")
        b.add_chain("inet", "pyctest", "c")
        b.add_rule("inet", "pyctest", "c", wanted)
        b.commit()
        rules = c.rules("inet", "pyctest", "c")
    assert nft.same_exprs(rules[0].exprs, wanted)
    assert not nft.same_exprs(rules[0].exprs, other)
    assert nft.chain_is(rules, [wanted]) and not nft.chain_is(rules, [wanted, wanted])


def test_a_repeated_add_sends_only_additions(host_ns, monkeypatch):
    """A second masquerade ADD neither re-adds existing chains nor rewrites
    postrouting: deleting or updating would make the close wait for an RCU
    grace period."""
    masquerade.setup(["198.18.21.2/24"], "pycnet-k", "eth0", "ctr-1", "nftables")
    sent: list[list[str]] = []
    real = nft.Nft.transact

    def record(self, msgs):
        sent.append([m[4] for m in msgs])
        return real(self, msgs)

    monkeypatch.setattr(nft.Nft, "transact", record)
    masquerade.setup(["198.18.21.3/24"], "pycnet-k", "eth0", "ctr-2", "nftables")
    assert sent == [
        [
            "add table inet cni_plugins_masquerade",
            "add rule inet cni_plugins_masquerade masq_checks",
        ]
    ]
    assert nft_ruleset().count("goto masq_checks") == 1


def test_a_chain_of_another_kind_is_not_taken_for_ours(host_ns):
    """A regular chain where a base chain is asked for is not left out: the
    kernel refuses the hook and the whole batch fails."""
    with nft.Nft() as c:
        b = c.batch()
        b.add_table("inet", "pyctest2")
        b.add_chain("inet", "pyctest2", "postrouting")
        b.commit()
        b = c.batch()
        b.known_chains("inet", "pyctest2")
        b.add_chain("inet", "pyctest2", "postrouting", type="nat", hook="postrouting", priority=100)
        assert len(b) == 1
        with pytest.raises(nft.NftError):
            b.commit()
