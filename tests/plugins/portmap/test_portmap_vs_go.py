"""Differential tests of the iptables backend against the Go reference.

/usr/lib/cni/portmap (Debian's 1.1.1 build, iptables only; it ignores the
"backend" key) runs in one sandbox host netns and pycni with
"backend": "iptables" in a twin; the printed results and the nat tables of
both families (`iptables-save -t nat`, `ip6tables-save -t nat`, comment
lines dropped, counters zeroed) must be identical after every step, rule
order included. Then each plugin DELs what the other ADDed.
"""

from __future__ import annotations

import pytest

from support.outcomes import ok
from support.portmap import (
    BUILTIN_NAT,
    GO_PLUGIN,
    MIXED_MAPPINGS,
    PLUGIN,
    TOP_CHAINS,
    make_conf,
    mapping,
    nat_table,
    nat_tables,
    prev_result,
    run,
    tool,
)
from support.sandbox import entered

pytestmark = pytest.mark.skipif(not GO_PLUGIN.exists(), reason="no reference portmap plugin")

DUAL = ("198.18.0.5/24", "fd00:18::5/64")
OTHER = ("198.18.0.6/24", "fd00:18::6/64")
MIXED = MIXED_MAPPINGS
#: 17 TCP ports and 16 UDP ports: two multiport chunks each
MANY = [mapping(10000 + i, 100 + i) for i in range(17)] + [
    mapping(11000 + i, 200 + i, "udp") for i in range(16)
]

# name -> (config keys, mappings, [(container ID, addresses)], host setup)
SCENARIOS: dict[str, tuple[dict, list[dict], list[tuple[str, tuple[str, ...]]], str]] = {
    "mixed": ({}, MIXED, [("c1", DUAL)], ""),
    "conditions": (
        {"conditionsV4": ["-s", "198.18.0.0/15"], "conditionsV6": ["!", "-s", "fd00:19::/64"]},
        MIXED[:3],
        [("c1", DUAL)],
        "",
    ),
    "many-ports": ({}, MANY, [("c1", DUAL[:1])], ""),
    "no-snat": ({"snat": False}, MIXED[:2], [("c1", DUAL)], ""),
    "mark-bit": ({"markMasqBit": 5}, MIXED[:1], [("c1", DUAL)], ""),
    "external-chain": (
        {"externalSetMarkChain": "PM-MARK"},
        MIXED[:2],
        [("c1", DUAL)],
        "mark-chain",
    ),
    "two-containers": ({}, MIXED[:2], [("c1", DUAL), ("c2", OTHER)], ""),
}


def setup_host(kind: str) -> None:
    if kind == "mark-chain":  # an external mark chain is the operator's to create
        for tool_name in ("iptables", "ip6tables"):
            tool(tool_name, "-t", "nat", "-N", "PM-MARK")
            tool(
                tool_name,
                "-t",
                "nat",
                "-A",
                "PM-MARK",
                "-j",
                "MARK",
                "--set-xmark",
                "0x4000/0x4000",
            )


def outcome(o) -> tuple:
    """Exit status and JSON; an empty "dns" of a 1.x result (which 1.1.1
    prints, later versions do not) is not compared."""
    data = o.json
    if isinstance(data, dict) and data.get("dns") == {}:
        data = {k: v for k, v in data.items() if k != "dns"}
    return (o.exit_code, data)


def exercise(plugin: str, host, ct, scenario: str) -> list[tuple[str, object]]:
    keys, maps, attachments, setup = SCENARIOS[scenario]
    if plugin == PLUGIN:
        keys = {**keys, "backend": "iptables"}
    seen: list[tuple[str, object]] = []
    with entered(host):
        setup_host(setup)
        confs = {cid: make_conf(maps, prev_result(ips), **keys) for cid, ips in attachments}
        for cid, conf in confs.items():
            seen.append((f"ADD {cid}", outcome(run("ADD", conf, ct, cid, plugin))))
            seen.append((f"after ADD {cid}", nat_tables()))
        first = attachments[0][0]
        seen.append(("ADD again", outcome(run("ADD", confs[first], ct, first, plugin))))
        seen.append(("after ADD again", nat_tables()))
        seen.append((f"DEL {first}", outcome(run("DEL", confs[first], ct, first, plugin))))
        seen.append(("after DEL", nat_tables()))
        seen.append((f"DEL {first} again", outcome(run("DEL", confs[first], ct, first, plugin))))
        for cid, conf in list(confs.items())[1:]:
            seen.append((f"DEL {cid}", outcome(run("DEL", conf, ct, cid, plugin))))
        seen.append(("end", nat_tables()))
    return seen


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_results_and_rules_as_go(scenario, netns_factory, ct):
    go = exercise(str(GO_PLUGIN), netns_factory("hgo"), ct, scenario)
    py = exercise(PLUGIN, netns_factory("hpy"), ct, scenario)
    assert [label for label, _ in go] == [label for label, _ in py]
    problems = [
        f"{label}:\n  go: {a!r}\n  py: {b!r}" for (label, a), (_, b) in zip(go, py) if a != b
    ]
    assert not problems, "\n".join(problems)
    after_add = dict(py)["after ADD c1"]
    assert any("-j CNI-DN-" in line for line in after_add["ipv4"])  # type: ignore[index]
    assert not any("CNI-DN-" in line for fam in dict(py)["end"].values() for line in fam)  # type: ignore[union-attr]


def test_multiport_chunks_of_fifteen(netns_factory, ct):
    """The entry rules group ports per protocol (sorted) in chunks of at most 15."""
    with entered(netns_factory("hpy")):
        ok(run("ADD", make_conf(MANY, prev_result(DUAL[:1]), backend="iptables"), ct))
        entries = [line for line in nat_table() if line.startswith("-A CNI-HOSTPORT-DNAT")]
    ports = [line.split("--dports ")[1].split()[0].split(",") for line in entries]
    assert [len(p) for p in ports] == [15, 2, 15, 1]
    assert [" -p tcp " in e for e in entries] == [True, True, False, False]
    assert ports[0][0] == "10000" and ports[1] == ["10015", "10016"]


def test_masq_all_is_the_heads_not_1_1_1s(netns_factory, ct):
    """masqAll came after 1.1.1 (which ignores it): as in the reference's
    HEAD, the hairpin mark rule matches any source (no -s) and the
    localhost one is left out."""
    conf = make_conf(MIXED[:1], prev_result(DUAL), backend="iptables", masqAll=True)
    with entered(netns_factory("hpy")):
        ok(run("ADD", conf, ct))
        v4, v6 = nat_table(), nat_table(True)
        ok(run("CHECK", conf, ct))
        ok(run("ADD", conf, ct))  # finds its rules: appends none twice
        assert (nat_table(), nat_table(True)) == (v4, v6)
    for lines, target in ((v4, "198.18.0.5:80"), (v6, "[fd00:18::5]:80")):
        chain = [line.split(" ", 2)[2] for line in lines if line.startswith("-A CNI-DN-")]
        assert chain == [
            "-p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
            f"-p tcp -m tcp --dport 8080 -j DNAT --to-destination {target}",
        ]


def top_level_only(lines: list[str], mark_chain: bool = True) -> None:
    """Only portmap's shared chains and their rules are left."""
    assert not [line for line in lines if "CNI-DN-" in line], lines
    for chain in TOP_CHAINS if mark_chain else TOP_CHAINS[:1]:
        assert chain in lines
    rest = [
        line
        for line in lines
        if line not in BUILTIN_NAT and line not in TOP_CHAINS and "CNI-HOSTPORT" not in line
    ]
    assert rest == [], rest


@pytest.mark.parametrize(
    ("adder", "deleter", "del_mappings"),
    [
        ("go", "py", True),
        ("go", "py", False),  # pycni needs no runtimeConfig: the chain name is a hash
        ("py", "go", True),
    ],
)
def test_one_adds_the_other_deletes(adder, deleter, del_mappings, netns_factory, ct):
    plugins = {"go": str(GO_PLUGIN), "py": PLUGIN}
    conf = make_conf(MANY[:17] + MIXED, prev_result(DUAL), backend="iptables")
    with entered(netns_factory("h")):
        ok(run("ADD", conf, ct, "c1", plugins[adder]))
        ok(run("ADD", make_conf(MIXED[:1], prev_result(OTHER), backend="iptables"), ct, "c2"))
        before = nat_tables()
        assert any("CNI-DN-" in line for line in before["ipv6"])
        del_conf = conf if del_mappings else {k: v for k, v in conf.items() if k != "runtimeConfig"}
        ok(run("DEL", del_conf, ct, "c1", plugins[deleter]))
        ok(run("DEL", make_conf(MIXED[:1], prev_result(OTHER)), ct, "c2"))
        for v6 in (False, True):
            top_level_only(nat_table(v6))


def test_go_check_fails_where_ours_passes(netns_factory, ct):
    """Go 1.1.1's CHECK compares its rules with iptables' own spelling of them
    and fails right after its own ADD; pycni's CHECK passes on the Go rules
    and on its own."""
    conf = make_conf(MIXED[:2], prev_result(DUAL), backend="iptables")
    with entered(netns_factory("hgo")):
        ok(run("ADD", conf, ct, "c1", str(GO_PLUGIN)))
        go_check = run("CHECK", conf, ct, "c1", str(GO_PLUGIN))
        assert not go_check.ok and "could not check" in go_check.json["msg"]
        ok(run("CHECK", conf, ct, "c1"))  # ours, on the rules Go made
    with entered(netns_factory("hpy")):
        ok(run("ADD", conf, ct, "c1"))
        ok(run("CHECK", conf, ct, "c1"))
