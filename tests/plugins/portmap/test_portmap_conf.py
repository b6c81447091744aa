"""Bad input is CNI error 7 naming the key and value, and installs nothing;
the backend choice; the nftables condition compiler (fuzzed, and against
`nft` itself)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycni.plugins.meta.portmap.nft_backend import compile_conditions
from pycni.spec.errors import CNIError

from support.outcomes import err, ok
from support.portmap import (
    BUILTIN_NAT,
    V4,
    V6,
    apply_nft,
    make_conf,
    mapping,
    nat_table,
    nft_ruleset,
    nft_table,
    prev_result,
    reference_nft_script,
    run,
    tool,
)
from support.sandbox import entered

GOOD = [mapping(8080, 80)]


def nothing_installed() -> None:
    assert "cni_hostport" not in nft_ruleset()
    assert nat_table(False) == BUILTIN_NAT or nat_table(False) == []
    assert nat_table(True) == BUILTIN_NAT or nat_table(True) == []


# name -> (config keys, mappings, container addresses, words the message must hold)
BAD: dict[str, tuple[dict, list[dict], tuple[str, ...], tuple[str, ...]]] = {
    "host-port-0": ({}, [mapping(0, 80)], (V4,), ("host port", "0")),
    "host-port-70000": ({}, [mapping(70000, 80)], (V4,), ("host port", "70000")),
    "container-port-0": ({}, [mapping(8080, 0)], (V4,), ("container port", "0")),
    "container-port-65536": ({}, [mapping(8080, 65536)], (V4,), ("container port", "65536")),
    "protocol-icmp": ({}, [mapping(8080, 80, "icmp")], (V4,), ('"protocol"', "icmp")),
    "protocol-empty": ({}, [{"hostPort": 8080, "containerPort": 80}], (V4,), ('"protocol"',)),
    "host-ip-not-an-ip": (
        {},
        [mapping(8080, 80, "tcp", "example.com")],
        (V4,),
        ("hostIP", "example.com"),
    ),
    "host-ip-v6-for-v4-container": (
        {},
        [mapping(8080, 80), mapping(8081, 80, "tcp", "fd00::1")],
        (V4,),
        ("hostIP", "fd00::1", "IPv6"),
    ),
    "host-ip-v4-for-v6-container": (
        {},
        [mapping(8080, 80, "tcp", "198.18.1.1")],
        (V6,),
        ("hostIP", "198.18.1.1", "IPv4"),
    ),
    "mark-bit-32": ({"markMasqBit": 32}, GOOD, (V4,), ("MasqMarkBit", "32")),
    "mark-bit-negative": ({"markMasqBit": -1}, GOOD, (V4,), ("MasqMarkBit", "-1")),
    "mark-bit-not-int": ({"markMasqBit": "13"}, GOOD, (V4,), ("markMasqBit",)),
    "mark-bit-and-chain": (
        {"markMasqBit": 13, "externalSetMarkChain": "PM-MARK", "backend": "iptables"},
        GOOD,
        (V4,),
        ("Cannot specify externalSetMarkChain and markMasqBit",),
    ),
    "backend-pf": ({"backend": "pf"}, GOOD, (V4,), ('unrecognized backend "pf"',)),
    "nft-backend-iptables-conditions": (
        {"backend": "nftables", "conditionsV4": ["-s", "198.18.0.0/15"]},
        GOOD,
        (V4,),
        (
            "nftables backend was requested but configuration contains "
            "iptables-specific options [conditionsV4]",
        ),
    ),
    "nft-backend-external-chain": (
        {"backend": "nftables", "externalSetMarkChain": "PM-MARK"},
        GOOD,
        (V4,),
        (
            "nftables backend was requested but configuration contains "
            "iptables-specific options [externalSetMarkChain]",
        ),
    ),
    "iptables-backend-nft-conditions": (
        {
            "backend": "iptables",
            "conditionsV4": ["iifname", "eth0"],
            "conditionsV6": ["ip6 saddr ::1"],
        },
        GOOD,
        (V4,),
        (
            "iptables backend was requested but configuration contains "
            "nftables-specific options [conditionsV4 conditionsV6]",
        ),
    ),
    "both-kinds-no-backend": (
        {"externalSetMarkChain": "PM-MARK", "conditionsV4": ["iifname", "eth0"]},
        GOOD,
        (V4,),
        ("backend was requested but configuration contains",),
    ),
    "nft-semicolon": (
        {"backend": "nftables", "conditionsV4": ["iifname eth0 ; flush ruleset"]},
        GOOD,
        (V4,),
        ("conditionsV4", "flush ruleset"),
    ),
    "nft-newline": (
        {"backend": "nftables", "conditionsV6": ["iifname eth0\nflush ruleset"]},
        GOOD,
        (V4, V6),
        ("conditionsV6",),
    ),
    "iptables-newline": (
        {"backend": "iptables", "conditionsV4": ["-s", "198.18.0.0/15\n-F PREROUTING"]},
        GOOD,
        (V4,),
        ("conditionsV4",),
    ),
    "iptables-semicolon": (
        {"backend": "iptables", "conditionsV4": ["-s", "198.18.0.0/15;"]},
        GOOD,
        (V4,),
        ("conditionsV4",),
    ),
    "condition-not-a-string": ({"conditionsV4": ["-s", 5]}, GOOD, (V4,), ("conditionsV4",)),
    "nft-unsupported-tcp-dport": (
        {"backend": "nftables", "conditionsV4": ["tcp dport 22"]},
        GOOD,
        (V4, V6),
        ("conditionsV4", "tcp dport 22"),
    ),
    "nft-unsupported-v6-of-v4-only-container": (
        {"backend": "nftables", "conditionsV6": ["ct state new"]},
        GOOD,
        (V4,),
        ("conditionsV6", "ct state new"),
    ),
    "nft-unsupported-second-family": (
        {"backend": "nftables", "conditionsV6": ["ip6 saddr", "fd00::/8", "meta mark 1"]},
        GOOD,
        (V4, V6),
        ("conditionsV6", "meta mark 1"),
    ),
    "nft-wrong-family-address": (
        {"backend": "nftables", "conditionsV4": ["ip saddr fd00::1"]},
        GOOD,
        (V4,),
        ("conditionsV4", "ip saddr fd00::1"),
    ),
    "nft-interface-name-too-long": (
        {"backend": "nftables", "conditionsV4": ["iifname", "a-very-long-name0"]},
        GOOD,
        (V4,),
        ("conditionsV4", "a-very-long-name0"),
    ),
    "nft-escaped-star": (
        {"backend": "nftables", "conditionsV4": ["iifname", '"eth\\*"']},
        GOOD,
        (V4,),
        ("conditionsV4",),
    ),
    "nft-missing-value": (
        {"backend": "nftables", "conditionsV4": ["ip saddr !="]},
        GOOD,
        (V4,),
        ("conditionsV4",),
    ),
    "external-chain-bad-name": (
        {"backend": "iptables", "externalSetMarkChain": "bad chain"},
        GOOD,
        (V4,),
        ("externalSetMarkChain", "bad chain"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_error_7_and_installs_nothing(case, host_ns, ct):
    keys, maps, ips, words = BAD[case]
    code, msg = err(run("ADD", make_conf(maps, prev_result(ips), **keys), ct))
    assert code == 7, msg
    for word in words:
        assert word in msg, msg
    nothing_installed()


def test_add_without_prev_result_or_mappings(host_ns, ct):
    _, msg = err(run("ADD", make_conf(GOOD), ct))
    assert msg == "must be called as chained plugin"
    prev = prev_result()
    result = ok(run("ADD", make_conf(None, prev), ct))
    assert result is not None and result["ips"] == prev["ips"]
    result = ok(run("ADD", make_conf([], dict(prev, cniVersion="0.4.0"), cni_version="0.4.0"), ct))
    assert result is not None and result["cniVersion"] == "0.4.0"
    nothing_installed()


# --- which backend -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "backend"),
    [
        ({}, "nftables"),  # pycni's default where nf_tables works
        ({"conditionsV4": ["-s", "198.18.0.0/15"]}, "iptables"),  # a reference config
        ({"externalSetMarkChain": "PM-MARK"}, "iptables"),
        ({"conditionsV6": ["ip6 saddr fd00::/8"]}, "nftables"),
    ],
)
def test_backend_follows_the_options_when_not_given(keys, backend, host_ns, ct):
    """A reference config with iptables-only options and no "backend" key
    (the reference's default is iptables) must not be refused."""
    for tool_name in ("iptables", "ip6tables"):
        tool(tool_name, "-t", "nat", "-N", "PM-MARK")
    ok(run("ADD", make_conf(GOOD, prev_result(), **keys), ct))
    in_nft = "cni_hostport" in nft_ruleset()
    in_ipt = any("CNI-DN-" in line for line in nat_table())
    assert (in_nft, in_ipt) == (backend == "nftables", backend == "iptables")


def test_protocol_is_case_insensitive(host_ns, ct):
    ok(
        run(
            "ADD", make_conf([mapping(8080, 80, "TCP")], prev_result((V4,)), backend="nftables"), ct
        )
    )
    assert "tcp dport 8080" in nft_table("ip")


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_unspecified_host_ip_of_the_other_family_is_skipped_not_refused(backend, host_ns, ct):
    """Runtimes send hostIP "0.0.0.0" for any container; on an IPv6-only one
    the reference skips that mapping, and so do we (no error, no rule)."""
    conf = make_conf(
        [mapping(8080, 80, host_ip="0.0.0.0"), mapping(8081, 81)],
        prev_result((V6,)),
        backend=backend,
    )
    ok(run("ADD", conf, ct))
    if backend == "nftables":
        listing = nft_table("ip6")
        assert "dport 8081" in listing and "dport 8080" not in listing
    else:  # the multiport entry rule lists every host port, as Go 1.1.1's does
        listing = "\n".join(nat_table(v6=True))
        assert "--dport 8081 " in listing and "--dport 8080 " not in listing
    ok(run("DEL", conf, ct))


# --- the nftables condition compiler -------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from(list('ipsadr6!= ":.0123456789/feth*\\;{}-')), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=4), st.sampled_from([4, 6]))
def test_compiler_answers_anything_with_bytes_or_error_7(tokens, family):
    try:
        out = compile_conditions(tokens, family, "conditionsVx")
    except CNIError as e:
        assert e.args[0] == 7 and "conditionsVx" in e.args[1]
    else:
        assert all(isinstance(b, bytes) for b in out)


def v4_net():
    return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: f"{_ip4((t[0] >> (32 - t[1]) << (32 - t[1])) if t[1] else 0)}/{t[1]}"
    )


def v6_net():
    return st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: f"{_ip6((t[0] >> (128 - t[1]) << (128 - t[1])) if t[1] else 0)}/{t[1]}"
    )


def _ip4(n: int) -> str:
    import ipaddress

    return str(ipaddress.IPv4Address(n))


def _ip6(n: int) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(n))


#: unquoted, nft's lexer reads a name starting with a digit as a number and
#: some names as keywords ("ah", "ip", ...): those are quoted, the others may be
IFNAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=13)
SAFE_IFNAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=11).map(
    lambda t: "pm" + t
)


def condition(family: int):
    ipx = "ip" if family == 4 else "ip6"
    net = v4_net() if family == 4 else v6_net()
    addr = st.tuples(
        st.sampled_from(["saddr", "daddr"]), st.sampled_from(["", "!= ", "== "]), net
    ).map(lambda t: f"{ipx} {t[0]} {t[1]}{t[2]}")
    unquoted = st.tuples(SAFE_IFNAME, st.sampled_from(["", "*"])).map("".join)
    quoted = st.tuples(IFNAME, st.sampled_from(["", "*"])).map(lambda t: f'"{t[0]}{t[1]}"')
    name = st.tuples(
        st.sampled_from(["iifname", "oifname", "meta iifname"]),
        st.sampled_from(["", "!= "]),
        st.one_of(unquoted, quoted),
    ).map(lambda t: f"{t[0]} {t[1]}{t[2]}")
    return st.one_of(addr, name)


@pytest.mark.parametrize("family", [4, 6])
def test_compiled_conditions_list_as_nft_compiles_them(family, netns_factory, ct):
    """Conditions of the supported forms (any prefix length, negation,
    prefix names, quotes) compile to what `nft` makes of the same text."""
    py, ref = netns_factory("py"), netns_factory("ref")
    addr = V4 if family == 4 else V6
    fam = "ip" if family == 4 else "ip6"
    key = "conditionsV4" if family == 4 else "conditionsV6"

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(condition(family), min_size=1, max_size=3))
    def check(conds):
        conf = make_conf(GOOD, prev_result((addr,)), backend="nftables", snat=False, **{key: conds})
        with entered(py):
            tool("nft", "flush", "ruleset")
            ok(run("ADD", conf, ct))
            ours = nft_table(fam)
        with entered(ref):
            tool("nft", "flush", "ruleset")
            apply_nft(reference_nft_script(conf, addr, "pmctr"))
            theirs = nft_table(fam)
        assert ours == theirs

    check()
