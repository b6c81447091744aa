"""Differential tests of the iptables backend against the Go reference.

The same sequence of verbs runs through /usr/lib/cni/firewall (Debian's
1.1.1 build) in one sandbox host netns and through pycni in another; every
result (exit status, printed JSON) and the filter tables of both families
(`iptables-save -t filter`, `ip6tables-save -t filter`, counters stripped)
after each step must be identical, rule order included.

The sequence: ADD of each attachment, CHECK of each, a per-IP rule deleted
behind the plugin's back and CHECK again (both fail, with the same message),
the attachment ADDed again, DEL with prevResult (twice), DEL without
prevResult (the reference then knows no addresses; pycni finds none either,
the container netns here has no interface), DEL of the rest.
"""

from __future__ import annotations

import pytest

from support.firewall import (
    GO_PLUGIN,
    PLUGIN,
    filter_tables,
    iptables,
    make_conf,
    prev_result,
    run,
)
from support.sandbox import entered

V4 = ("198.18.0.5/24",)
V6 = ("fd00:18::5/64",)
DUAL = ("198.18.0.5/24", "fd00:18::5/64")

# name -> (config keys, [(container ID, addresses)], host setup)
SCENARIOS: dict[str, tuple[dict, list[tuple[str, tuple[str, ...]]], str]] = {
    "v4": ({"backend": "iptables"}, [("c1", V4)], ""),
    "v6": ({"backend": "iptables"}, [("c1", V6)], ""),
    "dual": ({"backend": "iptables"}, [("c1", DUAL)], ""),
    "two-containers": (
        {"backend": "iptables"},
        [("c1", DUAL), ("c2", ("198.18.0.6/24", "fd00:18::6/64"))],
        "",
    ),
    "same-ip-twice": ({"backend": "iptables"}, [("c1", ("198.18.0.5/24", "198.18.0.5/16"))], ""),
    "admin-chain": (
        {"backend": "iptables", "iptablesAdminChainName": "MY-ADMIN"},
        [("c1", DUAL)],
        "",
    ),
    "same-bridge": (
        {"backend": "iptables", "ingressPolicy": "same-bridge"},
        [("c1", DUAL), ("c2", ("198.18.0.6/24",))],
        "",
    ),
    "open": ({"backend": "iptables", "ingressPolicy": "open"}, [("c1", V4)], ""),
    "no-addresses": ({"backend": "iptables", "ingressPolicy": "same-bridge"}, [("c1", ())], ""),
    # an empty backend on a host whose FORWARD is in iptables (policy DROP and
    # a rule of its own, so the position-1 inserts are visible)
    "auto-existing-forward": ({}, [("c1", DUAL)], "existing"),
}


def setup_host(kind: str) -> None:
    if kind == "existing":
        for v6, net in ((False, "198.19.0.0/16"), (True, "fd00:19::/64")):
            iptables("-P", "FORWARD", "DROP", v6=v6)
            iptables("-A", "FORWARD", "-s", net, "-j", "ACCEPT", v6=v6)


def outcome(o) -> tuple:
    """Exit status and JSON; an error's cniVersion (which pycni's skel adds,
    as later reference versions do) and an empty "dns" of a 1.x result
    (which 1.1.1 prints, later versions do not) are not compared."""
    data = o.json
    if isinstance(data, dict):
        if not o.ok:
            data = {k: v for k, v in data.items() if k != "cniVersion"}
        elif data.get("cniVersion", "").startswith("1.") and data.get("dns") == {}:
            data = {k: v for k, v in data.items() if k != "dns"}
    return (o.exit_code, data)


def exercise(plugin: str, host, ct, cni_version: str, scenario: str) -> list[tuple[str, object]]:
    """Run the scenario's verbs through `plugin` in `host`; what was observed."""
    keys, attachments, setup = SCENARIOS[scenario]
    seen: list[tuple[str, object]] = []
    with entered(host):
        setup_host(setup)
        confs = {
            cid: make_conf(cni_version, prev_result(ips, cni_version=cni_version), **keys)
            for cid, ips in attachments
        }
        for cid, conf in confs.items():
            seen.append((f"ADD {cid}", outcome(run(plugin, "ADD", conf, ct, cid))))
        seen.append(("after ADD", filter_tables()))
        for cid, conf in confs.items():
            seen.append((f"CHECK {cid}", outcome(run(plugin, "CHECK", conf, ct, cid))))
        first, ips = attachments[0]
        v4 = [a.split("/")[0] for a in ips if ":" not in a]
        if v4:
            iptables("-D", "CNI-FORWARD", "-s", v4[0] + "/32", "-j", "ACCEPT")
            seen.append(
                ("CHECK missing rule", outcome(run(plugin, "CHECK", confs[first], ct, first)))
            )
            seen.append(("ADD again", outcome(run(plugin, "ADD", confs[first], ct, first))))
            seen.append(("after ADD again", filter_tables()))
        seen.append((f"DEL {first}", outcome(run(plugin, "DEL", confs[first], ct, first))))
        seen.append(("after DEL", filter_tables()))
        seen.append((f"DEL {first} again", outcome(run(plugin, "DEL", confs[first], ct, first))))
        for cid, conf in list(confs.items())[1:]:
            bare = {k: v for k, v in conf.items() if k != "prevResult"}
            seen.append((f"DEL {cid} bare", outcome(run(plugin, "DEL", bare, ct, cid))))
            seen.append((f"after DEL {cid} bare", filter_tables()))
            seen.append((f"DEL {cid}", outcome(run(plugin, "DEL", conf, ct, cid))))
        seen.append(("end", filter_tables()))
    return seen


@pytest.mark.parametrize("cni_version", ["0.4.0", "1.0.0"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_results_and_rules_as_go(scenario, cni_version, netns_factory):
    if not GO_PLUGIN.exists():
        pytest.skip("no reference firewall plugin in /usr/lib/cni")
    ct = netns_factory("ct")
    go = exercise(str(GO_PLUGIN), netns_factory("hgo"), ct, cni_version, scenario)
    py = exercise(PLUGIN, netns_factory("hpy"), ct, cni_version, scenario)
    assert [label for label, _ in go] == [label for label, _ in py]
    problems = [
        f"{label}:\n  go: {a!r}\n  py: {b!r}" for (label, a), (_, b) in zip(go, py) if a != b
    ]
    assert not problems, "\n".join(problems)
    # the scenario did something: the rules were there after ADD
    after_add = dict(py)["after ADD"]
    touched = any("-j CNI-FORWARD" in line for fam in after_add.values() for line in fam)  # type: ignore[union-attr]
    assert touched == (scenario != "no-addresses")
