"""The nftables backend, with `nft -j list ruleset` as the independent witness.

What an ADD creates (table, chains, jumps, the attachment's rules with its
comment), that DEL finds them by comment (without prevResult, with the netns
gone, twice), CHECK, GC, the admin's policy surviving ADDs, isolation rules,
and an ADD that the kernel refuses changing nothing.
"""

from __future__ import annotations

import pytest

from pycni.plugins.meta.firewall.nftables_backend import attachment_comment

from support.firewall import (
    NETWORK,
    PLUGIN,
    make_conf,
    nft,
    nft_rules,
    nft_ruleset,
    nft_text,
    prev_result,
    run,
)
from support.outcomes import err, ok

DUAL = ("198.18.0.5/24", "fd00:18::5/64")


def conf(ips=DUAL, bridge: str = "fwbr0", **keys) -> dict:
    keys.setdefault("backend", "nftables")
    return make_conf("1.0.0", prev_result(ips, bridge), **keys)


def bare(c: dict) -> dict:
    return {k: v for k, v in c.items() if k != "prevResult"}


def match(proto: str, field: str, ip: str) -> dict:
    return {
        "match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}}, "right": ip}
    }


CT_EST = {
    "match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}
}
ACCEPT = {"accept": None}


def ip_exprs(ip: str) -> list[list[dict]]:
    proto = "ip6" if ":" in ip else "ip"
    return [[match(proto, "daddr", ip), CT_EST, ACCEPT], [match(proto, "saddr", ip), ACCEPT]]


def forward_view() -> list[tuple[str, list]]:
    return [(r.get("comment", ""), r["expr"]) for r in nft_rules("forward")]


def test_add_creates_table_chains_and_rules(ct):
    c = conf()
    result = ok(run(PLUGIN, "ADD", c, ct, "c1"))
    assert result["ips"] == c["prevResult"]["ips"]  # prevResult passed through
    objects = nft_ruleset()
    tables = [o["table"] for o in objects if "table" in o]
    assert tables == [{"family": "inet", "name": "cni_firewall"}]
    assert 'comment "CNI firewall plugin"' in nft_text()
    chains = {o["chain"]["name"]: o["chain"] for o in objects if "chain" in o}
    assert chains["forward"] == {
        "family": "inet",
        "table": "cni_firewall",
        "name": "forward",
        "type": "filter",
        "hook": "forward",
        "prio": 0,
        "policy": "accept",
    }
    assert chains["admin"] == {"family": "inet", "table": "cni_firewall", "name": "admin"}
    assert set(chains) == {"forward", "admin"}  # no isolation chains for "open"
    comment = f"{NETWORK}:c1:eth0"
    assert forward_view() == [
        ("CNI firewall plugin admin overrides", [{"jump": {"target": "admin"}}]),
        *[(comment, e) for e in ip_exprs("198.18.0.5")],
        *[(comment, e) for e in ip_exprs("fd00:18::5")],
    ]
    assert nft_rules("admin") == []


def test_add_without_addresses_touches_nothing(ct):
    ok(run(PLUGIN, "ADD", conf((), ingressPolicy="isolated"), ct, "c1"))
    assert nft_ruleset() == []
    ok(run(PLUGIN, "CHECK", conf(()), ct, "c1"))


def test_add_twice_and_readd_replace_the_attachments_rules(ct):
    ok(run(PLUGIN, "ADD", conf(), ct, "c1"))
    ok(run(PLUGIN, "ADD", conf(), ct, "c1"))
    ok(run(PLUGIN, "ADD", conf(("198.18.0.6/24",)), ct, "c2"))
    view = forward_view()
    assert [cm for cm, _ in view].count(f"{NETWORK}:c1:eth0") == 4
    # a re-ADD with another address replaces c1's rules, c2's stay
    ok(run(PLUGIN, "ADD", conf(("198.18.0.9/24",)), ct, "c1"))
    assert forward_view() == [
        ("CNI firewall plugin admin overrides", [{"jump": {"target": "admin"}}]),
        *[(f"{NETWORK}:c2:eth0", e) for e in ip_exprs("198.18.0.6")],
        *[(f"{NETWORK}:c1:eth0", e) for e in ip_exprs("198.18.0.9")],
    ]


def test_del_by_comment_without_prevresult_netns_gone_twice(ct, netns_factory):
    ok(run(PLUGIN, "ADD", conf(), ct, "c1"))
    ok(run(PLUGIN, "ADD", conf(("198.18.0.6/24",)), ct, "c2"))
    gone = netns_factory("gone")
    gone.close()
    ok(run(PLUGIN, "DEL", bare(conf()), gone, "c1"))
    assert {cm for cm, _ in forward_view()} == {
        "CNI firewall plugin admin overrides",
        f"{NETWORK}:c2:eth0",
    }
    ok(run(PLUGIN, "DEL", bare(conf()), gone, "c1"))
    ok(run(PLUGIN, "DEL", conf(("198.18.0.6/24",)), ct, "c2"))
    assert forward_view() == [
        ("CNI firewall plugin admin overrides", [{"jump": {"target": "admin"}}])
    ]


def test_del_without_table_or_config_backend_change(ct):
    ok(run(PLUGIN, "DEL", bare(conf()), ct, "c1"))  # nothing there at all
    assert nft_ruleset() == []
    # an empty backend resolves to nftables here (no iptables filter table)
    ok(run(PLUGIN, "ADD", conf(backend=""), ct, "c1"))
    assert len(nft_rules("forward")) == 5
    ok(run(PLUGIN, "DEL", bare(conf(backend="")), ct, "c1"))
    assert len(nft_rules("forward")) == 1


def test_check(ct):
    c = conf()
    code, msg = err(run(PLUGIN, "CHECK", c, ct, "c1"))
    assert code == 999 and "chain forward" in msg
    ok(run(PLUGIN, "ADD", c, ct, "c1"))
    ok(run(PLUGIN, "CHECK", c, ct, "c1"))
    code, msg = err(run(PLUGIN, "CHECK", c, ct, "c2"))  # another attachment has no rules
    assert "ip daddr 198.18.0.5" in msg and f"{NETWORK}:c2:eth0" in msg
    # an address the rules do not cover
    code, msg = err(run(PLUGIN, "CHECK", conf(("198.18.0.5/24", "198.18.0.7/24")), ct, "c1"))
    assert "198.18.0.7" in msg
    # the IPv6 source rule deleted behind the plugin's back
    handles = [
        r["handle"]
        for r in _rules_with_handles("forward")
        if r.get("comment") == f"{NETWORK}:c1:eth0" and len(r["expr"]) == 2 and "ip6" in str(r)
    ]
    assert len(handles) == 1
    nft("delete", "rule", "inet", "cni_firewall", "forward", "handle", str(handles[0]))
    code, msg = err(run(PLUGIN, "CHECK", c, ct, "c1"))
    assert "ip6 saddr fd00:18::5 accept" in msg
    # CHECK needs prevResult
    code, msg = err(run(PLUGIN, "CHECK", bare(c), ct, "c1"))
    assert msg == "missing prevResult from earlier plugin"


def _rules_with_handles(chain: str) -> list[dict]:
    import json
    import subprocess

    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True).stdout
    return [
        i["rule"]
        for i in json.loads(out)["nftables"]
        if "rule" in i and i["rule"]["chain"] == chain
    ]


def test_check_admin_jump_missing(ct):
    c = conf()
    ok(run(PLUGIN, "ADD", c, ct, "c1"))
    (jump,) = [
        r for r in _rules_with_handles("forward") if r.get("comment", "").endswith("overrides")
    ]
    nft("delete", "rule", "inet", "cni_firewall", "forward", "handle", str(jump["handle"]))
    assert err(run(PLUGIN, "CHECK", c, ct, "c1")) == (
        999,
        "expected rule 'jump admin' in chain forward not found",
    )
    ok(run(PLUGIN, "ADD", c, ct, "c1"))  # ADD puts it back, first
    assert forward_view()[0] == (
        "CNI firewall plugin admin overrides",
        [{"jump": {"target": "admin"}}],
    )


def test_gc_removes_only_this_networks_stale_attachments(ct):
    other = {**conf(("198.18.1.5/24",)), "name": "othernet"}
    ok(run(PLUGIN, "ADD", conf(("198.18.0.5/24",)), ct, "c1"))
    ok(run(PLUGIN, "ADD", conf(("198.18.0.6/24",)), ct, "c2"))
    ok(run(PLUGIN, "ADD", conf(("198.18.0.7/24",)), ct, "c3"))
    ok(run(PLUGIN, "ADD", other, ct, "c9"))
    gc = {
        "cniVersion": "1.1.0",
        "name": NETWORK,
        "type": "firewall",
        "backend": "nftables",
        "cni.dev/valid-attachments": [
            {"containerID": "c2", "ifname": "eth0"},
            {"containerID": "c3", "ifname": "eth1"},  # another interface: c3/eth0 is stale
        ],
    }
    ok(run(PLUGIN, "GC", gc, None, ""))
    comments = {cm for cm, _ in forward_view()}
    assert comments == {
        "CNI firewall plugin admin overrides",
        f"{NETWORK}:c2:eth0",
        "othernet:c9:eth0",
    }
    # no list at all (cnitool gc): nothing is known stale
    ok(run(PLUGIN, "GC", {k: v for k, v in gc.items() if not k.startswith("cni.dev")}, None, ""))
    assert {cm for cm, _ in forward_view()} == comments
    # an empty list: every attachment of this network is stale
    ok(run(PLUGIN, "GC", {**gc, "cni.dev/valid-attachments": None}, None, ""))
    assert {cm for cm, _ in forward_view()} == {
        "CNI firewall plugin admin overrides",
        "othernet:c9:eth0",
    }


def test_admin_policy_and_admin_rules_survive_adds(ct):
    ok(run(PLUGIN, "ADD", conf(), ct, "c1"))
    nft("add", "chain", "inet", "cni_firewall", "forward", "{ policy drop; }")
    nft("add", "rule", "inet", "cni_firewall", "admin", "ip", "saddr", "198.18.0.66", "drop")
    ok(run(PLUGIN, "ADD", conf(("198.18.0.6/24",)), ct, "c2"))
    ok(run(PLUGIN, "DEL", conf(), ct, "c1"))
    chains = {o["chain"]["name"]: o["chain"] for o in nft_ruleset() if "chain" in o}
    assert chains["forward"]["policy"] == "drop"
    assert len(nft_rules("admin")) == 1


@pytest.mark.parametrize("policy", ["same-bridge", "isolated"])
def test_isolation_rules(ct, policy):
    ok(run(PLUGIN, "ADD", conf(ingressPolicy=policy), ct, "c1"))
    ok(run(PLUGIN, "ADD", conf(("198.18.0.6/24",), ingressPolicy=policy), ct, "c2"))  # same bridge
    ok(run(PLUGIN, "ADD", conf(("198.18.9.6/24",), "fwbr1", ingressPolicy=policy), ct, "c3"))
    view = forward_view()
    assert view[0] == (
        "CNI firewall plugin rules (ingressPolicy)",
        [{"jump": {"target": "isolation_stage_1"}}],
    )
    assert view[1][0] == "CNI firewall plugin admin overrides"

    def iif(name):
        return {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": name}}

    def oif(name, op="=="):
        return {"match": {"op": op, "left": {"meta": {"key": "oifname"}}, "right": name}}

    stage1 = [(r["comment"], r["expr"]) for r in nft_rules("isolation_stage_1")]
    stage2 = [(r["comment"], r["expr"]) for r in nft_rules("isolation_stage_2")]
    want1 = []
    for br in ("fwbr0", "fwbr1"):
        want1.append(
            (
                f"ingressPolicy {policy}: from bridge {br} to other interfaces",
                [iif(br), oif(br, "!="), {"jump": {"target": "isolation_stage_2"}}],
            )
        )
        if policy == "isolated":
            want1.append(
                (f"ingressPolicy isolated: within bridge {br}", [iif(br), oif(br), {"drop": None}])
            )
    assert stage1 == want1
    assert stage2 == [
        (f"ingressPolicy: to bridge {br}", [oif(br), {"drop": None}]) for br in ("fwbr0", "fwbr1")
    ]
    c = conf(ingressPolicy=policy)
    ok(run(PLUGIN, "CHECK", c, ct, "c1"))
    # DEL keeps the isolation (the bridge may serve other containers)
    for cid in ("c1", "c2", "c3"):
        ok(run(PLUGIN, "DEL", bare(c), ct, cid))
    assert len(nft_rules("isolation_stage_1")) == len(want1)


def test_refused_add_changes_nothing(ct):
    """A `forward` chain of the admin's that is no base chain: the kernel
    refuses the hook, and the whole ADD (table comment, admin chain,
    rules) does not happen."""
    nft("add", "table", "inet", "cni_firewall")
    nft("add", "chain", "inet", "cni_firewall", "forward")
    before = nft_ruleset()
    code, msg = err(run(PLUGIN, "ADD", conf(), ct, "c1"))
    assert code == 999 and "nftables" in msg and "add chain inet cni_firewall forward" in msg
    assert nft_ruleset() == before


def test_fault_before_commit_leaves_nothing(ct):
    out = run(PLUGIN, "ADD", conf(), ct, "c1", env={"PYCNI_FAULT_STEP": "firewall.add.nftables"})
    assert out.exit_code == -9
    assert nft_ruleset() == []


def test_attachment_comment_limits():
    assert attachment_comment("net", "abc", "eth0") == "net:abc:eth0"
    long_net = "n" * 65
    c = attachment_comment(long_net, "abc", "eth0")
    assert c.startswith("#") and c.endswith(":abc:eth0") and len(c) < 128
    long_id = "c" * 200
    c = attachment_comment("net", long_id, "eth0")
    assert c.startswith("net:#") and len(c.encode()) <= 128
    # deterministic: GC computes the same comment for a valid attachment
    assert c == attachment_comment("net", long_id, "eth0")
    assert c != attachment_comment("net", long_id, "eth1")
