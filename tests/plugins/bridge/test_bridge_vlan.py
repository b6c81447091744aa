"""VLAN features of the bridge plugin.

This kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING):
creating a bridge with vlan_filtering=1 is refused. So the VLAN steps are
tested at the message level, with a recording RtNetlink that passes
everything else to the real kernel of the sandbox, and the executable is
kernel-tested with a skip naming the reason where the kernel refuses.
"""

from __future__ import annotations

import json

import pytest

from pycni.kernel.bridge import BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED
from pycni.plugins.main.bridge import add as bridge_add
from pycni.plugins.main.bridge import check
from pycni.plugins.main.bridge import conf as bridge_conf
from pycni.plugins.main.bridge import links as bridge_links
from pycni.plugins.main.bridge import verbs as bridge
from pycni.spec.errors import CNIError

from support.bridge import addrs, links, veths_on

DEFAULT_PVID = [(1, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED)]


class Recorder:
    """An RtNetlink stand-in: VLAN calls and vlan_filtering are recorded and
    simulated (a new port starts with the default PVID 1); every other call
    is recorded and forwarded to `real` (None: not forwarded)."""

    def __init__(self, real=None, log=None, vlans=None) -> None:
        self.real = real
        self.calls = log if log is not None else []
        self.vlans = vlans if vlans is not None else {}

    def _name(self, index) -> str:
        if self.real is None:
            return str(index)
        return self.real.link_get(index=getattr(index, "index", index)).name

    def link_add_bridge(self, name, mtu=0, vlan_filtering=None, mac=None):
        self.calls.append(("link_add_bridge", name, {"mtu": mtu, "vlan_filtering": vlan_filtering}))
        if self.real is not None:
            self.real.link_add_bridge(name, mtu=mtu, mac=mac)

    def bridge_vlan_list(self, index):
        name = self._name(index)
        self.calls.append(("bridge_vlan_list", name))
        return list(self.vlans.setdefault(name, list(DEFAULT_PVID)))

    def bridge_vlan_add(self, index, vid, *, pvid=False, untagged=False, master=True, self_=False):
        name = self._name(index)
        self.calls.append(
            ("bridge_vlan_add", name, vid, {"pvid": pvid, "untagged": untagged, "master": master})
        )
        table = self.vlans.setdefault(name, list(DEFAULT_PVID))
        flags = (BRIDGE_VLAN_INFO_PVID if pvid else 0) | (
            BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0
        )
        table[:] = [(v, f) for v, f in table if v != vid] + [(vid, flags)]

    def bridge_vlan_del(self, index, vid, *, pvid=False, untagged=False, master=True, self_=False):
        name = self._name(index)
        self.calls.append(("bridge_vlan_del", name, vid, {"master": master}))
        table = self.vlans.setdefault(name, list(DEFAULT_PVID))
        table[:] = [(v, f) for v, f in table if v != vid]

    def __getattr__(self, attr):
        target = getattr(self.real, attr) if self.real is not None else None

        def call(*args, **kw):
            self.calls.append((attr, *args, kw))
            return target(*args, **kw) if target is not None else None

        return call


def vlan_calls(calls, name=None):
    return [c for c in calls if c[0].startswith("bridge_vlan") and (name is None or c[1] == name)]


# --- the VLAN table steps of one port, with a pure fake -------------------------------


class Port:
    index = 42
    name = "veth42"


@pytest.mark.parametrize(
    ("vlan", "trunk", "preserve", "expected"),
    [
        (0, [], True, []),
        (0, [], False, []),
        (
            100,
            [],
            True,
            [("bridge_vlan_add", "42", 100, {"pvid": True, "untagged": True, "master": True})],
        ),
        (
            100,
            [],
            False,
            [
                ("bridge_vlan_list", "42"),
                ("bridge_vlan_del", "42", 1, {"master": True}),
                ("bridge_vlan_add", "42", 100, {"pvid": True, "untagged": True, "master": True}),
            ],
        ),
        (
            0,
            [101, 200],
            True,
            [
                ("bridge_vlan_add", "42", 101, {"pvid": False, "untagged": False, "master": True}),
                ("bridge_vlan_add", "42", 200, {"pvid": False, "untagged": False, "master": True}),
                ("bridge_vlan_add", "42", 1, {"pvid": True, "untagged": True, "master": True}),
            ],
        ),
        (
            0,
            [101],
            False,
            [
                ("bridge_vlan_list", "42"),
                ("bridge_vlan_del", "42", 1, {"master": True}),
                ("bridge_vlan_add", "42", 101, {"pvid": False, "untagged": False, "master": True}),
                ("bridge_vlan_add", "42", 1, {"pvid": True, "untagged": True, "master": True}),
            ],
        ),
        (
            100,
            [101, 102],
            True,
            [
                ("bridge_vlan_add", "42", 100, {"pvid": True, "untagged": True, "master": True}),
                ("bridge_vlan_add", "42", 101, {"pvid": False, "untagged": False, "master": True}),
                ("bridge_vlan_add", "42", 102, {"pvid": False, "untagged": False, "master": True}),
            ],
        ),
    ],
)
def test_port_vlan_steps(vlan, trunk, preserve, expected):
    rec = Recorder()
    bridge_links.setup_port_vlans(rec, Port, vlan, trunk, preserve)
    assert rec.calls == expected


# --- config parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trunk", "vids"),
    [
        (None, []),
        ([], []),
        ([{"id": 101}], [101]),
        ([{"minID": 200, "maxID": 203}], [200, 201, 202, 203]),
        ([{"id": 5}, {"minID": 3, "maxID": 6}, {"id": 5}], [3, 4, 5, 6]),
        ([{"minID": 10, "maxID": 10, "id": 1}], [1, 10]),
        ([{"ID": 7}, {"MinId": 8, "maxid": 9}], [7, 8, 9]),
        ([{"id": 4094}, {"id": 1}], [1, 4094]),
    ],
)
def test_vlan_trunk_parsing(trunk, vids):
    assert bridge_conf.collect_vlan_trunk(trunk) == vids


@pytest.mark.parametrize(
    ("trunk", "message"),
    [
        ([{"minID": 0, "maxID": 5}], "incorrect trunk minID parameter"),
        ([{"minID": 5000, "maxID": 5001}], "incorrect trunk minID parameter"),
        ([{"minID": 5, "maxID": 4095}], "incorrect trunk maxID parameter"),
        ([{"minID": 5, "maxID": -1}], "incorrect trunk maxID parameter"),
        ([{"minID": 9, "maxID": 5}], "minID is greater than maxID in trunk parameter"),
        ([{"maxID": 5}], "minID and maxID should be configured simultaneously, minID is missing"),
        ([{"minID": 5}], "minID and maxID should be configured simultaneously, maxID is missing"),
        ([{"id": 0}], "incorrect trunk id parameter"),
        ([{"id": 4095}], "incorrect trunk id parameter"),
        ([{"id": "7"}], '"id": cannot unmarshal string into Go value of type int'),
        ([7], '"vlanTrunk": cannot unmarshal 7 into Go value of type VlanTrunk'),
    ],
)
def test_vlan_trunk_errors(trunk, message):
    with pytest.raises(CNIError) as exc:
        bridge_conf.collect_vlan_trunk(trunk)
    assert exc.value.code == 7
    assert exc.value.msg == message


@pytest.mark.parametrize("vlan", [0, 1, 100, 4094])
def test_vlan_bounds_ok(vlan):
    n = bridge_conf.load({"name": "n", "vlan": vlan})
    assert n.vlan == vlan
    assert n.vlan_filtering == (vlan != 0)


def test_vlan_filtering_with_an_empty_trunk_and_default_preserve():
    n = bridge_conf.load({"name": "n", "vlanTrunk": []})
    assert n.vlan_filtering and n.vlans == []
    assert n.preserve_default_vlan is True
    assert (
        bridge_conf.load({"name": "n", "preserveDefaultVlan": False}).preserve_default_vlan is False
    )


# --- whole ADD/DEL in-process, VLAN calls recorded -----------------------------------------------


@pytest.fixture
def recorded(host_ns, monkeypatch):
    """Run bridge verbs in-process with every socket wrapped in a Recorder."""
    from pycni.plugins.pkg import netns as pkg_netns
    from pycni.skel import CmdArgs

    log: list = []
    vlans: dict = {}
    real_open = pkg_netns.open_netlink

    def open_netlink(netns=None):
        return Recorder(real_open(netns), log, vlans)

    for module in (bridge_add, check):
        monkeypatch.setattr(module, "open_netlink", open_netlink)

    def run(verb, conf, ct, cni_path, ifname="eth0", cid="ctr-vlan"):
        env = {
            "CNI_COMMAND": verb,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": ct.path,
            "CNI_IFNAME": ifname,
            "CNI_PATH": cni_path[0],
            "CNI_ARGS": "",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        args = CmdArgs.from_env(env, json.dumps(conf).encode())
        handler = {"ADD": bridge.cmd_add, "DEL": bridge.cmd_del, "CHECK": bridge.cmd_check}[verb]
        return handler(args)

    run.calls = log
    run.vlans = vlans
    return run


def test_access_vlan_add_and_del(recorded, net, netns_factory):
    ct = netns_factory()
    conf = net.conf(l2=True, vlan=100, preserveDefaultVlan=False)
    result = recorded("ADD", conf, ct, net.cni_path)
    host_veth = result.interfaces[1].name
    assert ("link_add_bridge", net.brname, {"mtu": 0, "vlan_filtering": True}) in recorded.calls
    assert vlan_calls(recorded.calls) == [
        ("bridge_vlan_list", host_veth),
        ("bridge_vlan_del", host_veth, 1, {"master": True}),
        ("bridge_vlan_add", host_veth, 100, {"pvid": True, "untagged": True, "master": True}),
    ]
    assert recorded.vlans[host_veth] == [(100, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED)]
    assert [v["ifname"] for v in veths_on(net.brname)] == [host_veth]
    recorded("DEL", conf, ct, net.cni_path)
    assert veths_on(net.brname) == []


def test_trunk_add(recorded, net, netns_factory):
    ct = netns_factory()
    trunk = [{"id": 101}, {"minID": 200, "maxID": 202}]
    result = recorded("ADD", net.conf(l2=True, vlanTrunk=trunk), ct, net.cni_path)
    host_veth = result.interfaces[1].name
    assert ("link_add_bridge", net.brname, {"mtu": 0, "vlan_filtering": True}) in recorded.calls
    assert [c[2] for c in vlan_calls(recorded.calls, host_veth)] == [101, 200, 201, 202, 1]
    assert vlan_calls(recorded.calls)[-1][3] == {"pvid": True, "untagged": True, "master": True}


def test_no_vlan_means_no_vlan_calls_and_no_filtering(recorded, net, netns_factory):
    recorded("ADD", net.conf(l2=True), netns_factory(), net.cni_path)
    assert vlan_calls(recorded.calls) == []
    assert ("link_add_bridge", net.brname, {"mtu": 0, "vlan_filtering": None}) in recorded.calls


def test_gateway_on_vlan_interface(recorded, net, netns_factory):
    ct = netns_factory()
    conf = net.conf(vlan=100, isDefaultGateway=True, preserveDefaultVlan=False)
    result = recorded("ADD", conf, ct, net.cni_path)
    names = [i.name for i in result.interfaces]
    gw_if = f"{net.brname}.100"
    assert names[0] == net.brname and names[2] == "eth0" and names[3] == gw_if
    assert result.interfaces[3].mac == links()[gw_if]["address"]
    assert links()[gw_if]["linkinfo"]["info_kind"] == "veth"
    assert "UP" in links()[gw_if]["flags"]
    assert addrs(gw_if) == ["198.18.5.1/24"]
    assert addrs(net.brname) == []
    ports = {v["ifname"] for v in veths_on(net.brname)}
    assert len(ports) == 2  # the container's and the gateway's
    for port in ports:
        assert recorded.vlans[port] == [(100, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED)]
    assert [str(r.dst) for r in result.routes] == ["0.0.0.0/0"]
    # a second container reuses the gateway interface
    recorded.calls.clear()
    second = recorded("ADD", conf, netns_factory(), net.cni_path, cid="ctr-vlan2")
    assert second.interfaces[3].name == gw_if
    assert len(veths_on(net.brname)) == 3
    # DEL keeps the shared gateway interface
    recorded("DEL", conf, ct, net.cni_path)
    assert gw_if in links()


# --- the executable on this kernel ---------------------------------------------------------------


@pytest.mark.parametrize("keys", [{"vlan": 100}, {"vlanTrunk": [{"id": 101}]}])
def test_vlan_in_the_kernel_or_skip(net, netns_factory, keys):
    import subprocess

    from support.sandbox import ip

    ct = netns_factory()
    conf = net.conf(l2=True, **keys)
    out = net.runner(ct).add(conf)
    if not out.ok and "vlan_filtering" in out.error["msg"]:
        # nothing may be left behind by the refused ADD
        assert net.brname not in links()
        assert "eth0" not in links(ct.name)
        pytest.skip(f"this kernel refuses bridge vlan_filtering: {out.error['msg']}")
    assert out.ok, out
    port = out.json["interfaces"][1]["name"]
    shown = subprocess.run(
        ["bridge", "-j", "vlan", "show", "dev", port], capture_output=True, text=True
    ).stdout
    vid = keys.get("vlan") or 101
    assert str(vid) in shown
    assert ip("-d", "link", "show", net.brname).count("vlan_filtering 1") == 1
