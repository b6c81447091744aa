"""The vrf plugin as a runtime runs it: config errors, DEL's idempotency,
and ADD/CHECK/DEL against this kernel (which may lack VRF support: then ADD
must say so, leave the interface as it was, and the rest is skipped)."""

from __future__ import annotations

import pytest

from pycni.skel.testing import run_plugin

from support.bridge import links, routes
from support.outcomes import err, ok
from support.sandbox import ip

PLUGIN = "pycni.plugins.meta.vrf"
NO_VRF = "this kernel has no VRF support (CONFIG_NET_VRF)"


def conf(prev: dict | None = None, **keys) -> dict:
    c: dict = {"cniVersion": "1.0.0", "name": "vrnet", "type": "vrf", "vrfname": "vr-blue"}
    c.update(keys)
    if prev is not None:
        c["prevResult"] = prev
    return c


def prev_result(ct) -> dict:
    return {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": ct.path}],
        "ips": [{"address": "198.18.31.2/24", "gateway": "198.18.31.1", "interface": 0}],
    }


@pytest.fixture
def attached(container_ns):
    """A container with eth0 as an interface plugin leaves it: an address,
    up, a default route and a static route."""
    n = container_ns.name
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "vrpeer0", netns=n)
    ip("link", "set", "vrpeer0", "up", netns=n)
    ip("addr", "add", "198.18.31.2/24", "dev", "eth0", netns=n)
    ip("link", "set", "eth0", "up", netns=n)
    ip("route", "add", "default", "via", "198.18.31.1", netns=n)
    ip("route", "add", "198.19.31.0/24", "via", "198.18.31.1", netns=n)
    return container_ns


def run(command: str, c: dict, netns: str = "", **kw):
    return run_plugin(PLUGIN, command, c, netns=netns, container_id="vr-ctr", **kw)


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"vrfname": None}, "configuration is expected to have a valid vrf name"),
        ({"vrfname": ""}, "configuration is expected to have a valid vrf name"),
        ({"vrfname": 5}, '"vrfname": cannot unmarshal number into Go value of type string'),
        ({"vrfname": "vrf-name-too-long"}, "invalid \"vrfname\" 'vrf-name-too-long'"),
        ({"vrfname": "a/b"}, "invalid \"vrfname\" 'a/b'"),
        ({"table": "10"}, '"table": cannot unmarshal string into Go value of type uint32'),
        ({"table": 1.5}, '"table": cannot unmarshal number 1.5 into Go value of type uint32'),
        ({"table": -1}, '"table": cannot unmarshal number -1 into Go value of type uint32'),
        ({"table": 2**32}, f'"table": cannot unmarshal number {2**32} into Go value'),
    ],
)
def test_config_errors_are_code_7(container_ns, keys, message):
    for command in ("ADD", "DEL", "CHECK"):
        code, msg = err(run(command, conf({"cniVersion": "1.0.0"}, **keys), container_ns.path))
        assert code == 7, msg
        assert message in msg


def test_add_needs_a_prev_result(container_ns):
    code, msg = err(run("ADD", conf(), container_ns.path))
    assert (code, msg) == (7, "missing prevResult from earlier plugin")
    code, msg = err(run("CHECK", conf(), container_ns.path))
    assert (code, msg) == (7, "missing prevResult from earlier plugin")


def test_versions_before_0_3_1_are_refused(container_ns):
    code, _msg = err(run("ADD", conf(cniVersion="0.3.0"), container_ns.path))
    assert code == 1


# --- DEL is idempotent --------------------------------------------------------------------


def test_del_succeeds_without_netns_vrf_or_interface(container_ns):
    ok(run("DEL", conf(), ""))
    ok(run("DEL", conf(), "/run/netns/vr-not-there"))
    ok(run("DEL", conf(), container_ns.path))  # no VRF, no eth0
    ok(run("DEL", conf(), container_ns.path))


def test_del_leaves_a_link_of_that_name_that_is_no_vrf(attached):
    ok(run("DEL", conf(vrfname="eth0"), attached.path))
    assert "eth0" in links(attached.name)


# --- against the kernel ---------------------------------------------------------------------


def test_add_check_del(attached):
    before = routes(attached.name)
    out = run("ADD", conf(prev_result(attached), table=31), attached.path)
    if not out.ok:
        code, msg = err(out)
        assert code == 999
        assert NO_VRF in msg and "vr-blue" in msg, msg
        # nothing changed: no VRF, eth0 without a master, its routes in place
        assert "vr-blue" not in links(attached.name)
        assert "master" not in links(attached.name)["eth0"]
        assert routes(attached.name) == before
        pytest.skip(NO_VRF)
    assert out.json["interfaces"][0]["name"] == "eth0"
    state = links(attached.name)
    assert state["vr-blue"]["linkinfo"]["info_kind"] == "vrf"
    assert state["eth0"]["master"] == "vr-blue"
    moved = ip("route", "show", "table", "31", netns=attached.name)
    assert "default via 198.18.31.1 dev eth0" in moved
    assert "198.19.31.0/24 via 198.18.31.1 dev eth0" in moved
    ok(run("CHECK", conf(prev_result(attached), table=31), attached.path))
    ok(run("DEL", conf(table=31), attached.path))
    assert "vr-blue" not in links(attached.name)
    assert "master" not in links(attached.name)["eth0"]
    ok(run("DEL", conf(table=31), attached.path))
