"""CHECK after ADD, CHECK after the rules were removed behind portmap's
back, and DEL in every situation a runtime may call it in, for both backends."""

from __future__ import annotations

import pytest

from support.outcomes import err, ok
from support.portmap import (
    V4,
    V6,
    container_lines,
    make_conf,
    mapping,
    nat_table,
    nft_rules_with_comment,
    prev_result,
    run,
    tool,
)

BACKENDS = ("nftables", "iptables")
MAPS = [mapping(8080, 80), mapping(8081, 81, "udp", "198.18.1.1"), mapping(8082, 82, "sctp")]
OTHER = ("198.18.0.6/24", "fd00:18::6/64")


def conf_for(backend: str, ips=(V4, V6), maps=MAPS, **keys) -> dict:
    return make_conf(maps, prev_result(ips), backend=backend, **keys)


def owned(backend: str, cid: str = "pmctr") -> dict[str, list[str]]:
    """The rules of container `cid` per family, as the backend's tool lists them."""
    if backend == "nftables":
        rules = nft_rules_with_comment(cid)
        return {
            "ipv4": [r for r in rules if ":" not in r],
            "ipv6": [r for r in rules if ":" in r],
        }
    return {
        "ipv4": container_lines_of(nat_table(False), cid),
        "ipv6": container_lines_of(nat_table(True), cid),
    }


def container_lines_of(lines: list[str], cid: str) -> list[str]:
    from pycni.netfilter.names import format_chain_name

    chain = format_chain_name("pmnet", cid, "DN-")
    return [line for line in container_lines(lines) if chain in line]


# --- CHECK ------------------------------------------------------------------------------


CONDITIONS = {
    "nftables": {"conditionsV4": ["iifname", "pm*"], "conditionsV6": ["ip6 saddr != fd00:19::/64"]},
    "iptables": {
        "conditionsV4": ["-s", "198.18.0.0/15", "-m", "comment", "--comment", 'a "quoted" one'],
        "conditionsV6": ["!", "-s", "fd00:19::/64"],
        "masqAll": True,
    },
}


@pytest.mark.parametrize("with_conditions", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_check_passes_after_add_and_fails_once_a_rule_is_gone(
    backend, with_conditions, host_ns, ct
):
    """Go 1.1.1's CHECK fails right after its own ADD (test_portmap_vs_go);
    pycni's passes for both families, and notices a missing rule of each."""
    conf = conf_for(backend, **(CONDITIONS[backend] if with_conditions else {}))
    ok(run("ADD", conf, ct))
    ok(run("CHECK", conf, ct))
    rules = owned(backend)
    assert len(rules["ipv4"]) > 0 and len(rules["ipv6"]) > 0
    for family in ("ipv4", "ipv6"):
        remove_one_rule(backend, family)
        code, msg = err(run("CHECK", conf, ct))
        assert code == 999
        assert f"could not check {family} dnat" in msg, msg
        ok(run("DEL", conf, ct))
        ok(run("ADD", conf, ct))
        ok(run("CHECK", conf, ct))


def remove_one_rule(backend: str, family: str) -> None:
    v6 = family == "ipv6"
    if backend == "nftables":
        fam = "ip6" if v6 else "ip"
        listing = tool("nft", "-a", "list", "chain", fam, "cni_hostport", "hostports")
        handle = next(
            line.rsplit("# handle ", 1)[1]
            for line in listing.splitlines()
            if 'comment "pmctr"' in line and "udp" not in line
        )
        tool("nft", "delete", "rule", fam, "cni_hostport", "hostports", "handle", handle)
    else:
        chain_rule = next(line for line in container_lines(nat_table(v6)) if "DNAT" in line)
        args = chain_rule.split()[1:]  # "-A CHAIN ..." -> "CHAIN ..."
        tool("ip6tables" if v6 else "iptables", "-t", "nat", "-D", *args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_of_the_whole_table_gone(backend, host_ns, ct):
    conf = conf_for(backend, ips=(V4,))
    ok(run("ADD", conf, ct))
    if backend == "nftables":
        tool("nft", "delete", "table", "ip", "cni_hostport")
    else:
        tool("iptables", "-t", "nat", "-F")
        tool("iptables", "-t", "nat", "-X")
    _, msg = err(run("CHECK", conf, ct))
    assert "could not check ipv4 dnat" in msg


def test_check_needs_prev_result_but_not_mappings(host_ns, ct):
    conf = conf_for("nftables")
    bare = {k: v for k, v in conf.items() if k != "prevResult"}
    _, msg = err(run("CHECK", bare, ct))
    assert msg == "Required prevResult missing"
    ok(run("CHECK", {k: v for k, v in conf.items() if k != "runtimeConfig"}, ct))


# --- DEL --------------------------------------------------------------------------------


def variants(conf: dict) -> dict[str, dict]:
    return {
        "full": conf,
        "no-prevResult": {k: v for k, v in conf.items() if k != "prevResult"},
        "no-runtimeConfig": {k: v for k, v in conf.items() if k != "runtimeConfig"},
        "bare": {k: v for k, v in conf.items() if k not in ("prevResult", "runtimeConfig")},
    }


@pytest.mark.parametrize("variant", ["full", "no-prevResult", "no-runtimeConfig", "bare"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_del_removes_only_this_containers_rules(backend, variant, host_ns, netns_factory):
    """With or without prevResult and mappings, the container netns gone,
    twice: this container's rules go, the other container's stay."""
    ns = netns_factory("gone")
    conf = conf_for(backend)
    other = conf_for(backend, ips=OTHER, maps=[mapping(9090, 90)])
    ok(run("ADD", conf, ns))
    ok(run("ADD", other, ns, container_id="other"))
    before_other = owned(backend, "other")
    assert before_other["ipv4"] and before_other["ipv6"]
    ns.close()  # the netns is gone before DEL
    for _ in range(2):
        ok(run("DEL", variants(conf)[variant], ns))
        assert owned(backend) == {"ipv4": [], "ipv6": []}
        assert owned(backend, "other") == before_other
    ok(run("CHECK", other, ns, container_id="other"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_del_of_nothing(backend, host_ns, ct):
    """DEL in a netns where portmap never ran (no table, no chain) succeeds."""
    ok(run("DEL", conf_for(backend), ct))
    ok(run("DEL", make_conf(None), ct))


def test_del_whatever_the_backend_key_says(host_ns, ct):
    """Both backends' rules are looked for: a config whose backend changed
    since ADD still cleans up."""
    ok(run("ADD", conf_for("iptables"), ct))
    ok(run("ADD", conf_for("nftables"), ct, container_id="pmctr2"))
    ok(run("DEL", conf_for("nftables"), ct))
    ok(run("DEL", conf_for("iptables"), ct, container_id="pmctr2"))
    assert owned("iptables") == {"ipv4": [], "ipv6": []}
    assert owned("nftables", "pmctr2") == {"ipv4": [], "ipv6": []}


def test_del_with_a_host_ip_the_reference_skipped(host_ns, ct):
    """The reference ADDs a mapping whose hostIP has a family the container
    lacks by skipping it; pycni refuses it on ADD, but a DEL (or CHECK) of
    such an attachment must not fail on it."""
    conf = conf_for(
        "iptables", ips=(V4,), maps=[mapping(8080, 80), mapping(8081, 81, "tcp", "fd00::1")]
    )
    code, msg = err(run("ADD", conf, ct))
    assert code == 7 and "fd00::1" in msg
    ok(run("DEL", conf, ct))


def test_gc_removes_the_iptables_chains_of_invalid_attachments(host_ns, ct):
    for cid in ("c1", "c2"):
        ok(run("ADD", conf_for("iptables"), ct, container_id=cid))
    gc = make_conf(None, cni_version="1.1.0")
    gc["cni.dev/valid-attachments"] = [{"containerID": "c2", "ifname": "eth0"}]
    ok(run("GC", gc, ct))
    for v6 in (False, True):
        assert container_lines_of(nat_table(v6), "c1") == []
        assert container_lines_of(nat_table(v6), "c2") != []
