"""Differential tests: /usr/lib/cni/sbr (Debian's 1.1.1) and pycni's sbr on
twin container namespaces set up alike (veth, addresses, routes, rules as an
interface plugin leaves them) must print the same result and leave the same
rules and routes (`ip -j`, every table, both families) after ADD, after DEL
and after a second DEL.

1.1.1 predates `table`, `gateways` and `addSourceHints` (it ignores them);
those are tested in test_sbr_options.py, `gateways` there against a Go twin
whose prevResult carries the static gateway.
"""

from __future__ import annotations

import pytest

from support.bridge import diff
from support.sbr import (
    GO_VERSIONS,
    PLUGIN,
    conf,
    normalize_result,
    prepare,
    prev_result,
    run,
    state,
)

V4 = ("198.18.1.2/24", "198.18.1.1", 0)
V6 = ("fd00:18:1::2/64", "fd00:18:1::1", 0)
V4_DEFAULT = "default via 198.18.1.1"
V6_DEFAULT = "default via fd00:18:1::1"

CASES: dict[str, dict] = {
    "ipv4": {"addrs": ("198.18.1.2/24",), "routes": (V4_DEFAULT,), "ips": [V4]},
    "ipv6": {"addrs": ("fd00:18:1::2/64",), "routes": (V6_DEFAULT,), "ips": [V6]},
    "dual-stack": {
        "addrs": ("198.18.1.2/24", "fd00:18:1::2/64"),
        "routes": (V4_DEFAULT, V6_DEFAULT),
        "ips": [V4, V6],
    },
    "two-addresses-one-subnet": {
        "addrs": ("198.18.1.2/24", "198.18.1.3/24"),
        "routes": (V4_DEFAULT,),
        "ips": [V4, ("198.18.1.3/24", "198.18.1.1", 0)],
    },
    "no-gateway": {
        "addrs": ("198.18.1.2/24",),
        "routes": ("198.19.0.0/16 via 198.18.1.1",),
        "ips": [("198.18.1.2/24", None, 0)],
    },
    "more-routes": {
        "addrs": ("198.18.1.2/24", "fd00:18:1::2/64"),
        "routes": (
            V4_DEFAULT,
            V6_DEFAULT,
            "198.19.5.0/24 via 198.18.1.254",
            "198.19.6.0/24 dev eth0",
            "198.19.7.0/24 via 198.18.1.9 src 198.18.1.2",
            "198.19.8.0/24 dev eth0 metric 50",
            "198.19.9.0/24 via 198.18.1.1 mtu 1400 advmss 1360",
            "198.19.10.0/24 dev sbrp-eth0",
            "fd00:19::/64 via fd00:18:1::9 metric 77",
            "fd00:20::/64 dev eth0",
        ),
        "ips": [V4, V6],
    },
    "gateway-not-in-prev-routes": {
        # the route via another subnet's gateway stays in main, copied nowhere
        "addrs": ("198.18.1.2/24", "198.18.2.2/24"),
        "routes": (V4_DEFAULT, "198.19.0.0/16 via 198.18.2.1"),
        "ips": [V4],
    },
    "no-interface-index": {
        "addrs": ("198.18.1.2/24", "fd00:18:1::2/64"),
        "routes": (V4_DEFAULT, V6_DEFAULT),
        "ips": [("198.18.1.2/24", "198.18.1.1", None), ("fd00:18:1::2/64", "fd00:18:1::1", None)],
    },
    "other-interface": {
        "addrs": ("198.18.1.2/24",),
        "routes": (V4_DEFAULT,),
        "interfaces": ("eth0", "net1"),
        "ips": [V4, ("198.18.9.2/24", "198.18.9.1", 1)],
    },
    "index-out-of-range": {
        "addrs": ("198.18.1.2/24",),
        "routes": (V4_DEFAULT,),
        "ips": [("198.18.1.2/24", "198.18.1.1", 7)],
    },
    "tables-taken": {
        "addrs": ("198.18.1.2/24", "fd00:18:1::2/64"),
        "routes": (V4_DEFAULT, V6_DEFAULT),
        "rules": (
            "from 198.18.200.1 lookup 100",
            "-6 from fd00:200::1 lookup 102",
            "pref 90 lookup 101",
        ),
        "ips": [V4, V6],
    },
}


def run_twin(plugin: str, ns, case: dict, cni_version: str) -> dict:
    """ADD, CHECK, DEL, DEL on one twin; every outcome and state on the way."""
    prepare(ns, addrs=case["addrs"], routes=case["routes"], rules=case.get("rules", ()))
    prev = prev_result(case["ips"], case.get("interfaces", ("eth0",)), cni_version=cni_version)
    c = conf(prev, cni_version)
    out: dict = {"before": state(ns)}
    add = run(plugin, "ADD", c, ns)
    out["add"] = (add.ok, normalize_result(add.json))
    out["after ADD"] = state(ns)
    if cni_version != "0.3.1":
        check = run(plugin, "CHECK", {**c, "prevResult": add.json}, ns)
        out["check"] = check.ok
    for n in (1, 2):
        delete = run(plugin, "DEL", conf(None, cni_version), ns)
        out[f"del {n}"] = (delete.ok, delete.json)
        out[f"after DEL {n}"] = state(ns)
    return out


def compare(case_name: str, cni_version: str, netns_factory, go_sbr: str) -> dict:
    case = CASES[case_name]
    go = run_twin(go_sbr, netns_factory("go"), case, cni_version)
    py = run_twin(PLUGIN, netns_factory("py"), case, cni_version)
    problems = []
    for key in go:
        problems += diff(go[key], py[key], key)
    assert not problems, "\n".join(problems)
    return py


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_as_go(case, netns_factory, go_sbr):
    py = compare(case, "1.0.0", netns_factory, go_sbr)
    assert py["add"][0], py["add"]
    assert py["after ADD"] != py["before"]
    assert py["after DEL 1"] == py["after DEL 2"]


@pytest.mark.parametrize("cni_version", [v for v in GO_VERSIONS if v != "1.0.0"])
def test_same_as_go_older_versions(cni_version, netns_factory, go_sbr):
    py = compare("dual-stack", cni_version, netns_factory, go_sbr)
    assert py["add"][1]["cniVersion"] == cni_version


def test_what_dual_stack_looks_like(netns_factory, go_sbr):
    """The differential tests compare; this pins what both do."""
    py = compare("dual-stack", "1.0.0", netns_factory, go_sbr)
    after = py["after ADD"]
    rules = [(r["priority"], r.get("src"), r["table"]) for r in after["rules-4"] + after["rules-6"]]
    assert (32765, "198.18.1.2", "100") in rules
    assert (32765, "fd00:18:1::2", "101") in rules
    main = [r for r in after["routes-4"] + after["routes-6"] if "table" not in r]
    assert [r for r in main if r.get("dev") == "eth0"] == []
    t100 = {(r["dst"], r.get("gateway")) for r in after["routes-4"] if r.get("table") == "100"}
    assert t100 == {("default", "198.18.1.1"), ("198.18.1.0/24", None)}
    t101 = {(r["dst"], r.get("gateway")) for r in after["routes-6"] if r.get("table") == "101"}
    assert ("default", "fd00:18:1::1") in t101 and ("fd00:18:1::/64", None) in t101
    rules_after_del = py["after DEL 1"]["rules-4"] + py["after DEL 1"]["rules-6"]
    assert [r for r in rules_after_del if r.get("src") != "all"] == []
