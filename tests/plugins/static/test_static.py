"""static IPAM: results as the reference's, its precedence, clear errors.

Debian's Go static (1.1.1) runs beside ours on the same configs; it knows
cniVersion up to 1.0.0, so the differential cases stay there.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.skel.testing import run_plugin

from support.outcomes import err, ok
from support.static import GO_STATIC, PLUGIN

ADDRS = [
    {"address": "198.18.7.5/24", "gateway": "198.18.7.1"},
    {"address": "fd00:7::5/64", "gateway": "fd00:7::1"},
]
ROUTES = [{"dst": "0.0.0.0/0"}, {"dst": "198.19.0.0/16", "gw": "198.18.7.254"}]
DNS = {"nameservers": ["198.18.7.53"], "domain": "example.test", "search": ["a.test"]}


def conf(version: str = "1.0.0", top: dict | None = None, **ipam) -> dict:
    return {
        "cniVersion": version,
        "name": "stnet",
        "type": "bridge",
        "ipam": {"type": "static", **ipam},
        **(top or {}),
    }


CASES = {
    "addresses": ({"addresses": ADDRS}, {}, ""),
    "routes-dns": ({"addresses": ADDRS, "routes": ROUTES, "dns": DNS}, {}, ""),
    "host-bits-kept": ({"addresses": [{"address": "198.18.7.77/16"}]}, {}, ""),
    "cni-args-ip-gateway": (
        {"addresses": [ADDRS[0]]},
        {},
        "IP=198.18.8.9/24,fd00:8::9/64;GATEWAY=198.18.8.1,fd00:8::1",
    ),
    "cni-args-gateway-for-config": (
        {"addresses": [{"address": "198.18.7.5/24"}]},
        {},
        "GATEWAY=198.18.7.2",
    ),
    "args-ips-replace": (
        {"addresses": ADDRS},
        {"args": {"cni": {"ips": ["198.18.9.9/24"]}}},
        "IP=198.18.8.9/24",
    ),
    "runtime-ips-replace-args": (
        {"addresses": ADDRS},
        {"args": {"cni": {"ips": ["198.18.9.9/24"]}}, "runtimeConfig": {"ips": ["fd00:9::9/64"]}},
        "",
    ),
    "no-addresses": ({}, {}, ""),
    "ignore-unknown": ({"addresses": [ADDRS[0]]}, {}, "IgnoreUnknown=1;K8S_POD_NAME=p"),
}
VERSIONS = ("0.3.1", "0.4.0", "1.0.0")


def same(result: dict | None) -> dict | None:
    """A result as compared: Go 1.1.1 prints an empty "dns" object in 1.0.0
    results, pycni leaves it out as later libcni releases do."""
    if result is not None and result.get("dns") == {} and result["cniVersion"] == "1.0.0":
        result = {k: v for k, v in result.items() if k != "dns"}
    return result


def fails(outcome, code: int) -> str:
    """The run failed with CNI error `code`; its message."""
    got, msg = err(outcome)
    assert got == code, msg
    return msg


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_add_same_result_as_go(runner, go_runner, case, version):
    ipam, top, cni_args = CASES[case]
    c = conf(version, top, **ipam)
    ours, theirs = runner.add(c, args=cni_args), go_runner.add(c, args=cni_args)
    assert same(ok(theirs)) == same(ok(ours))


def test_pre_030_one_address_per_family(runner, go_runner):
    one = conf("0.2.0", addresses=[ADDRS[0]])
    assert ok(runner.add(one)) == ok(go_runner.add(one))
    two = conf("0.2.0", addresses=[ADDRS[0], {"address": "198.18.8.1/24"}])
    go_failed = go_runner.add(two)
    assert not go_failed.ok
    assert "does not support more than 1 address per family" in fails(runner.add(two), 7)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
                lambda t: f"{t[0] >> 24}.{t[0] >> 16 & 255}.{t[0] >> 8 & 255}.{t[0] & 255}/{t[1]}"
            ),
            st.tuples(
                st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1), st.integers(0, 128)
            ).map(lambda t: f"fd00:{t[0]:x}::{t[1]:x}/{t[2]}"),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_runtime_ips_as_go_prints_them(st_netns, cidrs):
    c = conf("1.0.0", {"runtimeConfig": {"ips": cidrs}})
    ours, theirs = (run_plugin(p, "ADD", c, netns=st_netns) for p in (PLUGIN, str(GO_STATIC)))
    assert same(ok(ours)) == same(ok(theirs))


@pytest.mark.parametrize(
    ("ipam", "top", "cni_args", "code", "named"),
    [
        ({"addresses": [{"address": "198.18.7.5"}]}, {}, "", 7, "ipam.addresses[0].address"),
        ({"addresses": [{"address": "nope/24"}]}, {}, "", 7, "'nope/24'"),
        (
            {"addresses": [{"address": "198.18.7.5/24", "gateway": "198.18.7"}]},
            {},
            "",
            7,
            "ipam.addresses[0].gateway",
        ),
        (
            {"addresses": [{"address": "198.18.7.5/24", "gateway": "fd00::1"}]},
            {},
            "",
            7,
            "is IPv6, its address 198.18.7.5/24 is IPv4",
        ),
        ({"addresses": "198.18.7.5/24"}, {}, "", 7, "addresses"),
        ({}, {}, "IP=198.18.7.5", 7, "CNI_ARGS IP"),
        ({}, {}, "GATEWAY=bad", 4, "invalid gateway address: bad"),
        ({}, {}, "FOO=bar", 4, "unknown args"),
        ({}, {"args": {"cni": {"ips": ["x"]}}}, "", 7, "args.cni.ips[0]"),
        ({}, {"runtimeConfig": {"ips": ["198.18.1.1"]}}, "", 7, "runtimeConfig.ips[0]"),
        ({"routes": [{"dst": "bad"}]}, {}, "", 7, "ipam.routes[0]"),
    ],
)
def test_bad_input_is_a_clear_error(runner, ipam, top, cni_args, code, named):
    msg = fails(runner.add(conf("1.0.0", top, **ipam), args=cni_args), code)
    assert named in msg, msg


def test_missing_ipam_key(runner):
    c = conf()
    del c["ipam"]
    assert "IPAM config missing 'ipam' key" in fails(runner.add(c), 7)


def test_del_gc_status_do_nothing_and_succeed(runner):
    c = conf("1.1.0", addresses=ADDRS)
    ok(runner.delete(c))
    ok(runner.delete(c))
    ok(runner.gc({**c, "cni.dev/valid-attachments": []}))
    ok(runner.status(c))


def _with_prev(c: dict, prev: dict) -> dict:
    return {**c, "prevResult": prev}


def test_check_matches_gateways_like_go(runner, go_runner):
    c = conf("1.0.0", addresses=ADDRS)
    prev = ok(runner.add(c))
    for plugin in (runner, go_runner):
        ok(plugin.check(_with_prev(c, prev)))
    wrong = {**prev, "ips": [{**prev["ips"][0], "gateway": "198.18.7.9"}, prev["ips"][1]]}
    assert not go_runner.check(_with_prev(c, wrong)).ok
    msg = fails(runner.check(_with_prev(c, wrong)), 999)
    assert "Failed to match addr 198.18.7.5 on interface eth0" in msg
    # an address absent from prevResult is not reported (as the reference)
    ok(runner.check(_with_prev(c, {**prev, "ips": prev["ips"][1:]})))


def test_check_needs_prev_result(runner):
    msg = fails(runner.check(conf("1.0.0", addresses=ADDRS)), 7)
    assert "Required prevResult missing" in msg
