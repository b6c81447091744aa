"""The nftables backend's tables are the reference's, as `nft` lists them.

pycni builds its rules as netlink messages; the witness is the reference's
own rule text (support.portmap.reference_nft_script, a port of
portmap_nftables.go's forwardPorts as knftables writes it) applied with the
`nft` binary in a twin sandbox netns. `nft list table ip|ip6 cni_hostport`
of the two must be identical, so the kernel holds the same expressions and
a host can switch between pycni and the reference.
"""

from __future__ import annotations

import re

import pytest

from support.outcomes import ok
from support.portmap import (
    MIXED_MAPPINGS,
    V4,
    V6,
    apply_nft,
    make_conf,
    mapping,
    nft_table,
    prev_result,
    reference_nft_script,
    run,
    tool,
)
from support.sandbox import entered

MAPPINGS = MIXED_MAPPINGS

# name -> (config keys, container addresses)
CASES: dict[str, tuple[dict, tuple[str, ...]]] = {
    "dual-iifname": (
        {"conditionsV4": ["iifname", "eth0"], "conditionsV6": ["ip6 saddr != fd00:19::/64"]},
        (V4, V6),
    ),
    "masq-all": (
        {"masqAll": True, "conditionsV4": ["ip saddr != 198.19.0.0/16"]},
        (V4, V6),
    ),
    "no-snat-prefixes": (
        {
            "snat": False,
            "conditionsV4": ["ip saddr 198.18.0.0/15", "iifname", "pm*"],
            "conditionsV6": ['oifname != "pm*"'],
        },
        (V4, V6),
    ),
    "meta-quoted-daddr": (
        {
            "conditionsV4": ['meta iifname != "pmbr0"', "ip daddr 198.18.1.0/24"],
            "conditionsV6": ["oifname", "lo", "ip6 daddr", "fd00:1::1"],
        },
        (V4, V6),
    ),
    "v4-only": ({}, (V4,)),
    "v6-only-masq-all": ({"masqAll": True}, (V6,)),
}


def tables() -> str:
    return nft_table("ip") + nft_table("ip6")


def reference(conf: dict, ips: tuple[str, ...], cid: str) -> None:
    """The reference's ADD for one container: one transaction per family."""
    for addr in ips:
        apply_nft(reference_nft_script(conf, addr, cid))


def mappings_for(ips: tuple[str, ...]) -> list[dict]:
    """MAPPINGS without hostIPs of a family the container lacks (pycni refuses them)."""
    fams = {6 if ":" in a else 4 for a in ips}
    return [m for m in MAPPINGS if "hostIP" not in m or (6 if ":" in m["hostIP"] else 4) in fams]


@pytest.mark.parametrize("case", sorted(CASES))
def test_tables_equal_the_references(case, netns_factory, ct):
    keys, ips = CASES[case]
    conf = make_conf(mappings_for(ips), prev_result(ips), backend="nftables", **keys)
    py, ref = netns_factory("py"), netns_factory("ref")
    with entered(py):
        ok(run("ADD", conf, ct))
        ours = tables()
    with entered(ref):
        reference(conf, ips, "pmctr")
        theirs = tables()
    assert ours == theirs
    assert 'comment "pmctr"' in ours  # the container's rules are there at all
    for addr in ips:
        fam = "ip6" if ":" in addr else "ip"
        assert f"table {fam} cni_hostport" in ours


def delete_commented(comment: str) -> None:
    """What the reference's DEL does: delete every rule commented with the
    container ID from hostports, hostip_hostports and masquerading."""
    cmds = []
    for fam in ("ip", "ip6"):
        chain = ""
        for line in tool("nft", "-a", "list", "table", fam, "cni_hostport").splitlines():
            line = line.strip()
            if line.startswith("chain "):
                chain = line.split()[1]
            m = re.search(r'comment "(.*)" # handle (\d+)$', line)
            if (
                m
                and m.group(1) == comment
                and chain in ("hostports", "hostip_hostports", "masquerading")
            ):
                cmds.append(f"delete rule {fam} cni_hostport {chain} handle {m.group(2)}")
    apply_nft("\n".join(cmds) + "\n")


def test_two_containers_then_del_of_the_first(netns_factory, ct):
    """A second ADD rewrites the shared base chains with its own conditions
    and appends its rules after the first's; DEL removes exactly the first
    container's rules. Both steps as the reference does them."""
    c1 = make_conf(MAPPINGS[:3], prev_result(), backend="nftables", conditionsV4=["iifname", "pm0"])
    c2_prev = prev_result(("198.18.0.6/24", "fd00:18::6/64"))
    c2 = make_conf(
        [mapping(8090, 80), mapping(8091, 81, "udp")],
        c2_prev,
        backend="nftables",
        conditionsV4=["iifname", "pm1"],
    )
    py, ref = netns_factory("py"), netns_factory("ref")
    seen: dict[str, list[str]] = {"py": [], "ref": []}
    with entered(py):
        ok(run("ADD", c1, ct, container_id="ctr-one"))
        ok(run("ADD", c2, ct, container_id="ctr-two"))
        seen["py"].append(tables())
        ok(run("DEL", c1, ct, container_id="ctr-one"))
        seen["py"].append(tables())
    with entered(ref):
        reference(c1, (V4, V6), "ctr-one")
        reference(c2, ("198.18.0.6/24", "fd00:18::6/64"), "ctr-two")
        seen["ref"].append(tables())
        delete_commented("ctr-one")
        seen["ref"].append(tables())
    assert seen["py"] == seen["ref"]
    after_add, after_del = seen["py"]
    assert 'iifname "pm1"' in after_add and 'iifname "pm0"' not in after_add
    assert '"ctr-one"' in after_add and '"ctr-one"' not in after_del
    assert after_del.count('comment "ctr-two"') == after_add.count('comment "ctr-two"') == 7
