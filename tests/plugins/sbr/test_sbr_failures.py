"""Bad input is refused before anything is touched; a failed ADD is rolled
back; DEL succeeds whatever is already gone. Where Debian's Go build
behaves differently on purpose, the test pins both behaviours."""

from __future__ import annotations

import errno
import json

import pytest

from pycni.kernel.netlink import NetlinkError
from pycni.plugins.meta.sbr import routing, verbs
from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError

from support.outcomes import err, ok
from support.sbr import (
    PLUGIN,
    conf,
    normalize_result,
    prepare,
    prev_result,
    routes_in,
    rules_to,
    run,
    state,
)

V4 = ("198.18.1.2/24", "198.18.1.1", 0)
V6 = ("fd00:18:1::2/64", "fd00:18:1::1", 0)
DUAL = {
    "addrs": ("198.18.1.2/24", "fd00:18:1::2/64"),
    "routes": (
        "default via 198.18.1.1",
        "default via fd00:18:1::1",
        "198.19.5.0/24 via 198.18.1.1",
        "198.19.6.0/24 dev eth0 scope link",
    ),
}
NO_NETNS = "/run/netns/sbr-not-there"

# --- config errors: code 7 naming the key and value, before the netns is opened ----------

BAD_CONFIGS = [
    ({"table": "100"}, '"table": cannot unmarshal string into Go value of type int'),
    ({"table": 1.5}, '"table": cannot unmarshal number 1.5 into Go value of type int'),
    ({"table": True}, '"table": cannot unmarshal bool into Go value of type int'),
    ({"table": -1}, 'invalid "table" -1'),
    ({"table": 0}, 'invalid "table" 0'),
    ({"table": 2**32}, 'invalid "table" 4294967296'),
    (
        {"gateways": "198.18.1.1"},
        '"gateways": cannot unmarshal string into Go value of type []string',
    ),
    ({"gateways": [1]}, '"gateways": cannot unmarshal number into Go value of type string'),
    ({"gateways": ["nope"]}, '"gateways": invalid static gateway IP address: "nope"'),
    ({"gateways": ["198.18.1.1/24"]}, "invalid static gateway IP address"),
    (
        {"gateways": ["198.18.1.1", "198.18.1.254"]},
        '"gateways": list contains multiple IPv4 addresses: 198.18.1.1 and 198.18.1.254',
    ),
    (
        {"gateways": ["fd00::1", "fd00::2"]},
        '"gateways": list contains multiple IPv6 addresses: fd00::1 and fd00::2',
    ),
    (
        {"gateways": ["198.18.1.1", "fd00::1", "198.18.1.3"]},
        '"gateways": list cannot contain more than 2 entries (one IPv4, one IPv6), got 3',
    ),
    (
        {"addSourceHints": "true"},
        '"addSourceHints": cannot unmarshal string into Go value of type bool',
    ),
]


@pytest.mark.parametrize(
    ("keys", "message"), BAD_CONFIGS, ids=[json.dumps(k) for k, _ in BAD_CONFIGS]
)
def test_bad_config_is_code_7(keys, message):
    code, msg = err(run(PLUGIN, "ADD", conf(prev_result([V4]), **keys), NO_NETNS))
    assert code == 7
    assert message in msg


@pytest.mark.parametrize("command", ["DEL", "CHECK"])
def test_bad_table_fails_every_verb(command):
    code, msg = err(run(PLUGIN, command, conf(prev_result([V4]), table=-5), NO_NETNS))
    assert (code, msg) == (7, 'invalid "table" -5 (a routing table id is 1 to 4294967295)')


def test_gateway_values_are_only_checked_by_add(container_ns):
    """DEL does not use `gateways`: a DEL of an attachment whose config has
    since gone bad still cleans up."""
    ok(run(PLUGIN, "DEL", conf(None, gateways=["nope", "1.1.1.1", "2.2.2.2"]), container_ns))


def test_bad_config_touches_nothing(container_ns):
    prepare(container_ns, **DUAL)
    before = state(container_ns)
    bad = conf(prev_result([V4, V6]), gateways=["198.18.1.1", "198.18.1.9"])
    code, _msg = err(run(PLUGIN, "ADD", bad, container_ns))
    assert code == 7
    assert state(container_ns) == before


# --- other ADD errors: as the reference ---------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (conf(None), "This plugin must be called as chained plugin"),
        (conf(prev_result([])), "No IP addresses supplied on interface: eth0"),
    ],
    ids=["no-prevResult", "no-ips"],
)
def test_add_needs_a_prev_result_with_ips(config, message, container_ns, go_sbr):
    for plugin in (go_sbr, PLUGIN):
        assert err(run(plugin, "ADD", config, container_ns)) == (999, message), plugin


def test_interface_missing(container_ns, go_sbr):
    config = conf(prev_result([V4]))
    for plugin in (go_sbr, PLUGIN):
        code, msg = err(run(plugin, "ADD", config, container_ns))
        assert code == 999
        assert msg.startswith("Cannot find network interface eth0: "), msg


def test_add_missing_netns_is_code_8_and_creates_nothing(tmp_path):
    """(The reference opens the path with O_CREAT for its lock: it leaves a
    file there and then fails on it.)"""
    path = tmp_path / "gone"
    code, msg = err(run(PLUGIN, "ADD", conf(prev_result([V4])), str(path)))
    assert code == 8 and str(path) in msg
    assert not path.exists()
    not_ns = tmp_path / "file"
    not_ns.write_text("")
    code, msg = err(run(PLUGIN, "ADD", conf(prev_result([V4])), str(not_ns)))
    assert (code, msg) == (8, f"{not_ns} is not a network namespace")


def test_no_address_on_the_interface_changes_nothing(container_ns, go_sbr, netns_factory):
    """Every prevResult address belongs to another interface. The reference
    still deletes all of the interface's main-table routes (and moves them
    nowhere); pycni leaves the netns as it is."""
    prev = prev_result([("198.18.9.2/24", "198.18.9.1", 1)], ("eth0", "net1"))
    go_ns = netns_factory("go")
    for ns in (container_ns, go_ns):
        prepare(ns, **DUAL)
    before = state(container_ns)
    assert normalize_result(ok(run(PLUGIN, "ADD", conf(prev), container_ns))) == prev
    assert state(container_ns) == before
    ok(run(go_sbr, "ADD", conf(prev), go_ns))
    assert [r for r in routes_in(go_ns, "main") if r.get("dev") == "eth0"] == []


# --- rollback ---------------------------------------------------------------------------


def test_unreachable_gateway_rolls_back(container_ns, go_sbr, netns_factory):
    """The second address's default route fails after the first address's
    rule and table are in place: pycni removes them; the reference leaves
    them (same error code)."""
    bad_v6 = ("fd00:18:1::2/64", "fd00:99::1", 0)
    config = conf(prev_result([V4, bad_v6]))
    go_ns = netns_factory("go")
    for ns in (container_ns, go_ns):
        prepare(ns, **DUAL)
    before = state(container_ns)
    code, msg = err(run(PLUGIN, "ADD", config, container_ns))
    assert code == 999 and msg.startswith("Failed to add default route to fd00:99::1: "), msg
    assert state(container_ns) == before
    code, msg = err(run(go_sbr, "ADD", config, go_ns))
    assert code == 999 and msg.startswith("Failed to add default route to fd00:99::1: "), msg
    assert rules_to(go_ns, 100) == [(32765, "198.18.1.2")]
    assert rules_to(go_ns, 101) == [(32765, "fd00:18:1::2")]
    assert routes_in(go_ns, 100) != []


def _add_in_process(ns, config: dict, ifname: str = "eth0") -> None:
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "sbr-ctr",
        "CNI_NETNS": ns.path,
        "CNI_IFNAME": ifname,
        "CNI_PATH": "/nonexistent",
        "CNI_ARGS": "",
    }
    verbs.cmd_add(CmdArgs.from_env(env, json.dumps(config).encode()))


ROLLBACK_CASES = {
    "dual-stack": ({}, [V4, V6]),
    "source-hints": ({"addSourceHints": True}, [V4, V6]),
    "static-gateways": ({"gateways": ["198.18.1.254", "fd00:18:1::fe"]}, [V4, V6]),
    "two-in-one-subnet": ({}, [V4, ("198.18.1.3/24", "198.18.1.1", 0)]),
    "table": ({"table": 1234}, [V4, V6]),
}


@pytest.mark.parametrize("case", sorted(ROLLBACK_CASES))
def test_failure_at_every_step_rolls_back(case, host_ns, netns_factory, monkeypatch):
    """Record the steps of a clean ADD; then fail an ADD at each step in
    turn (the fault point raises): the netns must be as before each time,
    and a last clean ADD must then do exactly what the first one did."""
    keys, ips = ROLLBACK_CASES[case]
    setup = {**DUAL, "addrs": (*DUAL["addrs"], "198.18.1.3/24")}
    config = conf(prev_result(ips), **keys)
    steps: list[str] = []
    monkeypatch.setattr(routing, "step", steps.append)
    reference = netns_factory("ref")
    prepare(reference, **setup)
    _add_in_process(reference, config)
    expected = state(reference)
    assert steps and len(set(steps)) >= (1 if case == "table" else 3), steps

    ns = netns_factory("ct")
    prepare(ns, **setup)
    before = state(ns)
    assert expected != before
    for fail_at in range(len(steps)):
        seen: list[str] = []

        def failing(name: str, seen=seen, fail_at=fail_at) -> None:
            seen.append(name)
            if len(seen) > fail_at:
                raise CNIError(999, f"injected failure at {name}")

        monkeypatch.setattr(routing, "step", failing)
        with pytest.raises(CNIError, match="injected failure"):
            _add_in_process(ns, config)
        assert state(ns) == before, f"after a failure at step {fail_at}: {steps[fail_at]}"
    monkeypatch.setattr(routing, "step", lambda name: None)
    _add_in_process(ns, config)
    assert state(ns) == expected


def test_rollback_restores_a_route_whose_subnet_comes_later(host_ns, container_ns, monkeypatch):
    """The kernel fails the ADD after the main table lost both the default
    route and, listed after it, the subnet route: the default route cannot
    come back before its subnet, so re-adding repeats until all are back."""
    prepare(container_ns, addrs=("198.18.1.2/24",), routes=("default via 198.18.1.1",))
    before = state(container_ns)
    real = routing.delete_route
    deleted: list[str] = []

    def delete_then_fail(nl, route) -> None:
        real(nl, route)
        deleted.append(route.dst or "default")
        if len(deleted) == 2:
            raise NetlinkError(errno.EIO, "injected")

    monkeypatch.setattr(routing, "delete_route", delete_then_fail)
    with pytest.raises(CNIError, match="Failed to delete route: injected"):
        _add_in_process(container_ns, conf(prev_result([V4])))
    assert deleted[:2] == ["default", "198.18.1.0/24"]
    assert state(container_ns) == before


# --- DEL ---------------------------------------------------------------------------------


def test_del_netns_gone(tmp_path, go_sbr):
    """pycni: success, nothing created. The reference creates a file at the
    path for its lock and then fails."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ok(run(PLUGIN, "DEL", conf(None), str(ours)))
    assert not ours.exists()
    assert not run(go_sbr, "DEL", conf(None), str(theirs)).ok
    assert theirs.exists()


@pytest.mark.parametrize("netns", ["", "file"])
def test_del_without_a_netns(netns, tmp_path):
    if netns == "file":
        netns = str(tmp_path / "file")
        (tmp_path / "file").write_text("")
    for _ in (1, 2):
        ok(run(PLUGIN, "DEL", conf(prev_result([V4])), netns))


def test_del_interface_gone(container_ns, go_sbr):
    """pycni (and later reference versions) succeed; 1.1.1 fails."""
    ok(run(PLUGIN, "DEL", conf(None), container_ns))
    _code, msg = err(run(go_sbr, "DEL", conf(None), container_ns))
    assert msg.startswith("Failed to get link eth0")


def test_del_takes_only_rules_from_addresses_of_the_interface(container_ns):
    prepare(
        container_ns,
        **DUAL,
        rules=(
            "from 198.18.1.2 lookup 500",
            "from 198.18.1.0/24 lookup 501",
            "from 198.18.99.9 lookup 502",
            "-6 from fd00:18:1::2 lookup 503",
            "to 198.18.1.2 lookup 504",
        ),
    )
    ok(run(PLUGIN, "DEL", conf(None), container_ns))
    assert [t for t in range(500, 505) if rules_to(container_ns, t)] == [501, 502, 504]


def test_gc_and_status_succeed(container_ns):
    for command in ("GC", "STATUS"):
        ok(run(PLUGIN, command, conf(None, "1.1.0"), container_ns))
