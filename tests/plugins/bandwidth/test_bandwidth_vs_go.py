"""Differential tests against the reference plugin, /usr/lib/cni/bandwidth
(Debian's 1.1.1 build).

Each side gets its own sandbox host netns and container netns with the same
hand-made veth pair (host end `bwhdiff0`), and runs the same config under
strace. Compared: the result (the IFB's random MAC, the veth MACs, the netns path and
Go's `"dns": {}` of 1.x results aside), the qdiscs and filters as `tc -j`
reports them, the IFB's link attributes (its alias aside: pycni's GC mark),
and the traffic-control messages byte for byte (the IFB's RTM_NEWLINK
attribute by attribute: Go's IFLA_INFO_KIND has no trailing NUL). Each
side's CHECK is run on the other side's state, then each DEL.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pycni.kernel import netlink as nlmod

from support.bandwidth import (
    GO_PLUGIN,
    PLUGIN,
    Attachment,
    filters,
    ifbs,
    qdiscs,
    traced_run,
)
from support.outcomes import ok
from support.sandbox import entered

CONTAINER_ID = "bwdiff-ctr"
HOST = "bwhdiff0"

CASES = {
    "both": ("1.0.0", 1500, {"ingressRate": 8_000_000, "ingressBurst": 80_000,
                             "egressRate": 16_000_000, "egressBurst": 160_000}),
    "ingress-only": ("0.3.1", 1500, {"ingressRate": 1_000_000, "ingressBurst": 12_000}),
    "egress-only": ("0.4.0", 1400, {"egressRate": 100_000_000, "egressBurst": 800_000,
                                    "ingressRate": 0, "ingressBurst": 0}),
    "reference-test-values": ("1.0.0", 1500, {"ingressRate": 8, "ingressBurst": 8,
                                              "egressRate": 16, "egressBurst": 8}),
    "runtime-config": ("1.0.0", 1500, {"runtimeConfig": {"bandWidth": {
        "ingressRate": 16, "ingressBurst": 9, "egressRate": 24_000, "egressBurst": 999}}}),
    "40gbit": ("1.0.0", 9000, {"ingressRate": 40 * 10**9, "ingressBurst": 8 * 10**6,
                               "egressRate": 40 * 10**9 + 8, "egressBurst": 8 * 10**6}),
}  # fmt: skip

TC_TYPES = (nlmod.RTM_NEWQDISC, nlmod.RTM_NEWTFILTER)


def ifb_of(result: dict) -> str:
    names = [i["name"] for i in result.get("interfaces", []) if i["name"].startswith("bwp")]
    return names[0] if names else ""


def normalized_result(result: dict, netns: str) -> dict:
    out = json.loads(json.dumps(result).replace(netns, "<netns>"))
    for intf in out.get("interfaces", []):
        intf.pop("mac", None)
    if out.get("dns") == {}:
        del out["dns"]
    return out


def ifb_attrs(name: str) -> dict | None:
    link = ifbs().get(name)
    if link is None:
        return None
    keep = ("ifname", "flags", "mtu", "qdisc", "operstate", "txqlen", "linkinfo", "link_type")
    return {k: link.get(k) for k in keep}


def newlink(payload: bytes) -> dict:
    """The IFB's RTM_NEWLINK decoded: flags, change and the attributes."""
    _fam, _type, _index, flags, change = struct.unpack_from("=BxHiII", payload)
    attrs = {}
    for t, v in nlmod.iter_attrs(payload, 16):
        if t == 18:  # IFLA_LINKINFO: the kind, NUL or not
            attrs[t] = nlmod.get_str(nlmod.parse_attrs(v)[1])
        else:
            attrs[t] = bytes(v)
    return {"flags": flags, "change": change, "attrs": attrs}


def run_side(plugin: str, host, ct, version: str, mtu: int, keys: dict, logs: Path) -> dict:
    with entered(host):
        att = Attachment(ct, host=HOST, mtu=mtu, container_id=CONTAINER_ID)
        conf = att.conf(version, **keys)
        env = {"CNI_CONTAINERID": CONTAINER_ID, "CNI_NETNS": ct.path, "CNI_IFNAME": "eth0"}
        add, sent = traced_run(plugin, "ADD", conf, logs / "add", **env)
        result = ok(add)
        name = ifb_of(result)
        side = {
            "att": att,
            "conf": conf,
            "env": env,
            "result": result,
            "ifb": name,
            "tc": [(t, f, p) for t, f, p in sent if t in TC_TYPES],
            "links": [newlink(p) for t, _f, p in sent if t == nlmod.RTM_NEWLINK],
            "state": {
                "veth": qdiscs(HOST),
                "filters": filters(HOST),
                "ifb": qdiscs(name) if name else None,
                "ifb_link": ifb_attrs(name) if name else None,
            },
        }
    return side


def check_and_del(side: dict, plugin: str, logs: Path, host) -> dict:
    """CHECK with `plugin` (0.4.0+), then its DEL twice; the state after."""
    conf, env = side["conf"], side["env"]
    with entered(host):
        out = {}
        if conf["cniVersion"] not in ("0.3.0", "0.3.1"):
            check_conf = {**conf, "prevResult": side["result"]}
            out["check"] = traced_run(plugin, "CHECK", check_conf, logs / "check", **env)[0]
        out["del"] = [traced_run(plugin, "DEL", conf, logs / "del", **env)[0] for _ in range(2)]
        out["after"] = (sorted(ifbs()), qdiscs(HOST), filters(HOST))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_as_the_reference(case, netns_factory, tmp_path):
    if not GO_PLUGIN.exists():
        pytest.skip(f"{GO_PLUGIN} not installed")
    version, mtu, keys = CASES[case]
    hosts, sides = {}, {}
    for name, plugin in (("go", str(GO_PLUGIN)), ("py", PLUGIN)):
        logs = tmp_path / name
        logs.mkdir()
        hosts[name] = netns_factory("h" + name)
        ct = netns_factory("c" + name)
        sides[name] = run_side(plugin, hosts[name], ct, version, mtu, keys, logs)
    go, py = sides["go"], sides["py"]

    assert normalized_result(py["result"], py["att"].ct.path) == normalized_result(
        go["result"], go["att"].ct.path
    )
    assert py["state"] == go["state"]
    state = go["state"]
    made = len(state["veth"]) + len(state["ifb"] or []) + (1 if go["ifb"] else 0)
    assert len(go["tc"]) == made > 0  # a qdisc or filter message for each thing made
    assert py["tc"] == go["tc"], "traffic-control messages differ"
    assert py["links"] == go["links"], "the IFB's RTM_NEWLINK differs"
    if go["ifb"]:
        assert len(go["links"]) == 1
        assert go["state"]["ifb_link"]["linkinfo"]["info_kind"] == "ifb"

    # each side's CHECK on the other's state, then its DEL
    for checker, state_of in (("go", "py"), ("py", "go")):
        plugin = str(GO_PLUGIN) if checker == "go" else PLUGIN
        logs = tmp_path / f"{checker}-on-{state_of}"
        logs.mkdir()
        done = check_and_del(sides[state_of], plugin, logs, hosts[state_of])
        if "check" in done:
            ok(done["check"])
        for d in done["del"]:
            ok(d)
        ifb_names, veth_qdiscs, _filters = done["after"]
        assert ifb_names == []
        # the qdiscs on the veth stay until the interface plugin deletes it
        assert veth_qdiscs == sides[state_of]["state"]["veth"]


BAD = {
    "rate-without-burst": {"ingressRate": 100},
    "burst-without-rate": {"egressBurst": 100},
    "burst-over-4gb": {"ingressRate": 8, "ingressBurst": ((1 << 32) - 1) * 8},
    "negative": {"ingressRate": -1, "ingressBurst": 8},
    "fraction": {"egressRate": 1.5, "egressBurst": 8},
    "string": {"egressRate": "8", "egressBurst": 8},
    "overflow": {"ingressRate": 1 << 64, "ingressBurst": 8},
    "runtime-rate-without-burst": {"runtimeConfig": {"bandwidth": {"egressRate": 8}}},
    "below-8-bits": {"ingressRate": 7, "ingressBurst": 8000},  # Go: EINVAL from the kernel
    "no-prev-result": {"ingressRate": 8, "ingressBurst": 8, "prevResult": None},
    "no-interfaces": {"ingressRate": 8, "ingressBurst": 8, "prevResult": {"cniVersion": "1.0.0"}},
    "wrong-host-interface": {
        "ingressRate": 8,
        "ingressBurst": 8,
        "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "bwnotit0"}]},
    },
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_both_refuse(case, netns_factory, tmp_path):
    """Both fail, and neither leaves anything; pycni's config errors are
    code 7 (the reference's are all 999)."""
    if not GO_PLUGIN.exists():
        pytest.skip(f"{GO_PLUGIN} not installed")
    outcomes = {}
    for name, plugin in (("go", str(GO_PLUGIN)), ("py", PLUGIN)):
        host, ct = netns_factory("h" + name), netns_factory("c" + name)
        with entered(host):
            att = Attachment(ct, host=HOST, container_id=CONTAINER_ID)
            keys = dict(BAD[case])
            prev = keys.pop("prevResult", att.prev())
            conf = att.conf(prev=False, **keys)
            if prev is not None:
                conf["prevResult"] = prev
            env = {"CNI_CONTAINERID": CONTAINER_ID, "CNI_NETNS": ct.path, "CNI_IFNAME": "eth0"}
            out, _ = traced_run(plugin, "ADD", conf, tmp_path / f"{name}.log", **env)
            outcomes[name] = out
            assert out.exit_code == 1, (name, out)
            assert (qdiscs(HOST), ifbs()) == ([], {}), name
    code = outcomes["py"].json["code"]
    config_error = case not in ("no-interfaces", "wrong-host-interface")
    assert code == (7 if config_error else 999), outcomes["py"]


def test_chained_after_the_reference_ptp(netns_factory, tmp_path):
    """prevResult from a real /usr/lib/cni/ptp + host-local: pycni shapes the
    veth ptp made, the reference's CHECK accepts it, DELs clean up."""
    from pycni.skel.testing import run_plugin

    ptp = Path("/usr/lib/cni/ptp")
    if not (GO_PLUGIN.exists() and ptp.exists()):
        pytest.skip("reference ptp or bandwidth not installed")
    host, ct = netns_factory("host"), netns_factory("ct")
    net = {
        "cniVersion": "1.0.0",
        "name": "bwptp",
        "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "198.18.41.0/24", "dataDir": str(tmp_path)},
    }
    kw = {"netns": ct.path, "container_id": CONTAINER_ID, "path": ["/usr/lib/cni"]}
    with entered(host):
        prev = ok(run_plugin(str(ptp), "ADD", net, **kw))
        bw = {"cniVersion": "1.0.0", "name": "bwptp", "type": "bandwidth", "prevResult": prev}
        bw.update(ingressRate=8000, ingressBurst=80, egressRate=16000, egressBurst=160)
        result = ok(run_plugin(PLUGIN, "ADD", bw, **kw))
        veth = result["interfaces"][0]["name"]
        assert veth.startswith("veth") and ifb_of(result)
        assert [q["kind"] for q in qdiscs(veth)] == ["tbf", "ingress"]
        check = {**bw, "prevResult": result}
        ok(run_plugin(str(GO_PLUGIN), "CHECK", check, **kw))
        ok(run_plugin(PLUGIN, "CHECK", check, **kw))
        ok(run_plugin(PLUGIN, "DEL", bw, **kw))
        ok(run_plugin(str(ptp), "DEL", net, **kw))
        assert ifbs() == {}
