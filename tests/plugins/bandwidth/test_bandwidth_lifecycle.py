"""ADD, CHECK, DEL, GC and STATUS of the bandwidth plugin against the kernel,
chained after a hand-made veth pair (the `att` fixture)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pycni.plugins.meta.bandwidth.ifb import ifb_name

from support.bandwidth import Attachment, filters, ifbs, link, qdiscs
from support.outcomes import err, ok
from support.sandbox import in_netns, ip

BOTH = {"ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 16_000_000}
BOTH["egressBurst"] = 160_000


def tbf(q: dict) -> tuple:
    o = q["options"]
    return (q["kind"], q["handle"], q.get("root", False), o["rate"], o["burst"], o["lat"])


def test_ingress_and_egress(att):
    conf = att.conf(**BOTH)
    result = ok(att.run("ADD", conf))
    name = ifb_name("bwnet", att.container_id)
    ifb = ifbs()[name]
    assert result == {
        "cniVersion": "1.0.0",
        "interfaces": [
            *conf["prevResult"]["interfaces"],
            {"name": name, "mac": ifb["address"]},
        ],
        "ips": conf["prevResult"]["ips"],
    }
    veth_q = qdiscs(att.host)
    assert [tbf(veth_q[0]), veth_q[1]["kind"]] == [
        ("tbf", "1:", True, 1_000_000, 10_000, 25000),
        "ingress",
    ]
    assert [tbf(q) for q in qdiscs(name)] == [("tbf", "1:", True, 2_000_000, 20_000, 25000)]
    assert "UP" in ifb["flags"] and ifb["mtu"] == 1500 and ifb.get("txqlen", 0) == 0
    assert ifb["ifalias"] == "pycni bandwidth bwnet"
    (node,) = [f for f in filters(att.host) if "actions" in f.get("options", {})]
    assert {a["to_dev"] for a in node["options"]["actions"]} == {name}

    ok(att.run("CHECK", {**conf, "prevResult": result}))
    ok(att.run("DEL", conf))
    assert name not in ifbs()
    ok(att.run("DEL", conf))  # again
    ok(att.run("DEL", att.conf(prev=False, **BOTH), netns=""))  # no netns, no prevResult


def test_ifb_takes_the_mtu_of_the_host_veth(host_ns, container_ns):
    att = Attachment(container_ns, mtu=1400)
    result = ok(att.run("ADD", att.conf(egressRate=8000, egressBurst=80)))
    ifb = ifbs()[result["interfaces"][-1]["name"]]
    assert ifb["mtu"] == 1400
    assert qdiscs(att.host)[0]["kind"] == "ingress"  # no root tbf without ingress limits


def test_ingress_only(att):
    conf = att.conf(ingressRate=8000, ingressBurst=80, egressRate=0, egressBurst=0)
    result = ok(att.run("ADD", conf))
    assert result == conf["prevResult"]
    assert [tbf(q) for q in qdiscs(att.host)] == [("tbf", "1:", True, 1000, 10, 25000)]
    assert ifbs() == {}
    ok(att.run("CHECK", {**conf, "prevResult": result}))
    ok(att.run("DEL", conf))


def test_runtime_config_and_static_block_precedence(att):
    runtime = {"bandwidth": {"ingressRate": 16, "ingressBurst": 9, "egressRate": 8}}
    runtime["bandwidth"]["egressBurst"] = 8
    result = ok(att.run("ADD", att.conf(runtimeConfig=runtime)))
    assert len(result["interfaces"]) == 3
    assert [q["options"]["rate"] for q in qdiscs(att.host) if q["kind"] == "tbf"] == [2]
    ok(att.run("DEL", att.conf()))
    ip("link", "del", att.host)

    att2 = Attachment(att.ct, ifname="eth1")
    conf = att2.conf(ingressRate=8000, ingressBurst=80, runtimeConfig=runtime)
    assert ok(att2.run("ADD", conf)) == conf["prevResult"]  # static: no egress
    assert [q["options"]["rate"] for q in qdiscs(att2.host)] == [1000]


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_versions(att, version):
    conf = att.conf(version, **BOTH)
    result = ok(att.run("ADD", conf))
    assert result["cniVersion"] == version and len(result["interfaces"]) == 3
    if version not in ("0.3.0", "0.3.1"):
        ok(att.run("CHECK", {**conf, "prevResult": result}))
    ok(att.run("DEL", conf))


def test_versions_before_0_3_0_are_refused(att):
    code, msg = err(att.run("ADD", att.conf("0.2.0", prev=False, **BOTH)))
    assert code == 1 and msg == "incompatible CNI versions"


def test_nothing_to_shape_passes_prev_result_through(att):
    for keys in ({}, {"ingressRate": 0, "egressBurst": 0}, {"runtimeConfig": {"bandwidth": {}}}):
        conf = att.conf(**keys)
        assert ok(att.run("ADD", conf)) == conf["prevResult"]
    # printed in the config's version
    conf = att.conf("0.4.0")
    result = ok(att.run("ADD", conf))
    assert result["interfaces"] == conf["prevResult"]["interfaces"]
    assert result["ips"] == [{"version": "4", "interface": 1, "address": "198.18.40.2/24"}]
    # without prevResult either: an empty result (the reference crashes)
    assert ok(att.run("ADD", att.conf(prev=False))) == {"cniVersion": "1.0.0"}
    assert qdiscs(att.host) == [] and ifbs() == {}


def test_del_when_the_netns_is_gone(att, netns_factory):
    ok(att.run("ADD", att.conf(**BOTH)))
    att.ct.close()  # the veth pair goes with it, the IFB stays
    assert len(ifbs()) == 1
    ok(att.run("DEL", att.conf(**BOTH)))
    assert ifbs() == {}


def test_del_leaves_a_link_of_that_name_alone_unless_it_is_an_ifb(att):
    name = ifb_name("bwnet", att.container_id)
    ip("link", "add", name, "type", "veth", "peer", "name", "bwpeer0")
    ok(att.run("DEL", att.conf()))
    assert link(name)["ifname"] == name


def test_check_finds_what_changed(att):
    conf = att.conf(**BOTH)
    result = ok(att.run("ADD", conf))
    check = {**conf, "prevResult": result}
    name = result["interfaces"][-1]["name"]

    subprocess.run(["tc", "filter", "del", "dev", att.host, "ingress"], check=True)
    assert "Failed to find filter" in err(att.run("CHECK", check))[1]

    subprocess.run(
        ["tc", "qdisc", "change", "dev", name, "root", "handle", "1:", "tbf",
         "rate", "8mbit", "burst", "20000", "latency", "25ms"], check=True,
    )  # fmt: skip
    assert err(att.run("CHECK", check))[1] == "Rate doesn't match"

    subprocess.run(
        ["tc", "qdisc", "change", "dev", att.host, "root", "handle", "1:", "tbf",
         "rate", "8mbit", "burst", "10000", "latency", "50ms"], check=True,
    )  # fmt: skip
    assert err(att.run("CHECK", check))[1] == "Limit doesn't match"

    subprocess.run(["tc", "qdisc", "del", "dev", att.host, "root"], check=True)
    assert err(att.run("CHECK", check))[1] == "Failed to find qdisc"

    ok(att.run("DEL", conf))
    code, msg = err(att.run("CHECK", att.conf(egressRate=8, egressBurst=8)))
    assert msg.startswith("get ifb device")
    code, msg = err(att.run("CHECK", att.conf(prev=False, **BOTH)))
    assert code == 7 and "chained plugin" in msg


def test_host_veth_discovery(att, host_ns, netns_factory):
    conf = att.conf(**BOTH)
    other = {"name": "bwother0", "mac": "02:00:00:00:00:01"}

    prev = {**conf["prevResult"], "interfaces": []}
    assert err(att.run("ADD", {**conf, "prevResult": prev}))[1] == "no interfaces provided"

    prev = {**conf["prevResult"], "interfaces": [other, conf["prevResult"]["interfaces"][1]]}
    msg = err(att.run("ADD", {**conf, "prevResult": prev}))[1]
    assert msg == "no veth peer of container interface found in host ns"

    # the host end listed, but as a container interface
    sandboxed = {**conf["prevResult"]["interfaces"][0], "sandbox": att.ct.path}
    prev = {**conf["prevResult"], "interfaces": [sandboxed]}
    msg = err(att.run("ADD", {**conf, "prevResult": prev}))[1]
    assert msg == "no veth peer of container interface found in host ns"

    msg = err(att.run("ADD", conf, ifname="eth9"))[1]
    assert msg.startswith("container interface eth9 has no veth peer: could not look up")

    ip("link", "add", "bwifb0", "type", "ifb", netns=att.ct.name)
    msg = err(att.run("ADD", conf, ifname="bwifb0"))[1]
    assert msg.startswith("container interface bwifb0 has no veth peer")
    assert "was not a veth interface" in msg

    # a veth whose peer lives in a third netns, not in the host
    third = netns_factory("third")
    ip("link", "add", "eth2", "type", "veth", "peer", "name", "bwthird0", "netns", third.name,
       netns=att.ct.name)  # fmt: skip
    msg = err(att.run("ADD", conf, ifname="eth2"))[1]
    assert msg.endswith("is not in host ns")
    assert qdiscs(att.host) == [] and ifbs() == {}


def test_needs_prev_result_and_a_netns(att):
    code, msg = err(att.run("ADD", att.conf(prev=False, **BOTH)))
    assert code == 7 and msg == "must be called as chained plugin"
    code, msg = err(att.run("ADD", att.conf(**BOTH), netns="/run/netns/bw-not-there"))
    assert code == 8 and "/run/netns/bw-not-there" in msg


def test_bad_config_is_code_7_naming_the_key(att):
    code, msg = err(att.run("ADD", att.conf(ingressRate=-1, ingressBurst=8)))
    assert code == 7 and msg.startswith('"ingressRate": cannot unmarshal number -1')
    code, msg = err(att.run("ADD", att.conf(egressRate=7, egressBurst=800)))
    assert code == 7 and 'invalid "egressRate" 7' in msg
    assert qdiscs(att.host) == [] and ifbs() == {}


def test_gc_removes_only_this_networks_stale_ifbs(host_ns, netns_factory):
    atts = [Attachment(netns_factory("ct")) for _ in range(3)]
    keys = {"egressRate": 8000, "egressBurst": 80}
    for a in atts[:2]:
        ok(a.run("ADD", a.conf("1.1.0", **keys)))
    ok(atts[2].run("ADD", atts[2].conf("1.1.0", name="bwother", **keys)))
    # one without our alias, as the reference plugin makes them
    stranger = ifb_name("bwnet", "made-by-the-reference")
    ip("link", "add", stranger, "type", "ifb")
    mine = [ifb_name("bwnet", a.container_id) for a in atts[:2]]
    theirs = ifb_name("bwother", atts[2].container_id)
    assert sorted(ifbs()) == sorted([*mine, theirs, stranger])

    gc = {"cniVersion": "1.1.0", "name": "bwnet", "type": "bandwidth"}
    ok(atts[0].run("GC", gc))  # no list of valid attachments: nothing
    assert len(ifbs()) == 4
    valid = [{"containerID": atts[0].container_id, "ifname": "eth0"}]
    ok(atts[0].run("GC", {**gc, "cni.dev/valid-attachments": valid}))
    assert sorted(ifbs()) == sorted([mine[0], theirs, stranger])
    ok(atts[0].run("GC", {**gc, "cni.dev/valid-attachments": []}))
    assert sorted(ifbs()) == sorted([theirs, stranger])


def test_status(att):
    ok(att.run("STATUS", {"cniVersion": "1.1.0", "name": "bwnet", "type": "bandwidth"}))


# --- the shaping works -----------------------------------------------------------------------

_SERVER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5201)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); n = 0; t = None
while True:
    b = c.recv(65536)
    if not b: break
    t = t or time.monotonic(); n += len(b)
print(n, time.monotonic() - t, flush=True)
"""
_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 5201)); c.sendall(b"x" * int(sys.argv[2])); c.close()
"""


def transfer(server_ns, client_ns, server_ip: str, size: int) -> float:
    """Seconds from the first to the last byte of `size` bytes over TCP."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, sys.executable, "-c", _SERVER, server_ip],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        in_netns(client_ns, sys.executable, "-c", _CLIENT, server_ip, str(size), check=True)
        received, seconds = server.stdout.readline().split()
    finally:
        server.wait(timeout=30)
    assert int(received) == size
    return float(seconds)


def test_traffic_is_shaped_both_ways(host_ns, container_ns):
    """4 Mbit/s is 500 kB/s: 300 kB take at least about 0.6 s minus the
    10 kB burst, in each direction; unshaped, a veth moves them in
    milliseconds. (Only the lower bound is asserted: a busy machine can
    only make it slower.)"""
    att = Attachment(container_ns, addrs=("198.18.40.1/24", "198.18.40.2/24"))
    rates = {"ingressRate": 4_000_000, "ingressBurst": 80_000}
    rates.update(egressRate=4_000_000, egressBurst=80_000)
    ok(att.run("ADD", att.conf(**rates)))
    start = time.monotonic()
    into = transfer(container_ns.name, host_ns.name, "198.18.40.2", 300_000)
    out_of = transfer(host_ns.name, container_ns.name, "198.18.40.1", 300_000)
    assert into > 0.45 and out_of > 0.45, (into, out_of, time.monotonic() - start)
    ok(att.run("DEL", att.conf(**rates)))
