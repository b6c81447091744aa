"""The macvlan plugin against the kernel, in sandbox namespaces: what the
reference does not do (bcqueuelen, linkInContainer, ndisc_notify in 1.1.1),
rollback, bad input and the DEL cases."""

from __future__ import annotations

import os

import pytest

from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG

from support.bridge import ping
from support.cni import reservations
from support.outcomes import err, ok
from support.sandbox import ip
from support.sublink import conf, links, make_uplink, run, sysctl_in


@pytest.fixture
def ct(netns_factory):
    return netns_factory("ct")


def names(ct) -> list[str]:
    return sorted(links(ct.name))


# --- what ADD builds ----------------------------------------------------------------


def test_l3_add_sets_notify_sysctls_and_addresses(uplink, ct, data_dir, cni_path):
    c = conf("macvlan", data_dir, master=uplink, subnets=("198.18.41.0/24", "fd00:18:41::/64"))
    res = ok(run("macvlan", "ADD", c, ct, path=cni_path))
    eth0 = links(ct.name)["eth0"]
    assert eth0["linkinfo"]["info_kind"] == "macvlan"
    assert eth0["linkinfo"]["info_data"]["mode"] == "bridge"
    assert eth0["address"] == res["interfaces"][0]["mac"]
    assert "UP" in eth0["flags"]
    assert sysctl_in(ct.name, "net/ipv4/conf/eth0/arp_notify") == "1"
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/ndisc_notify") == "1"
    assert [ipc["address"] for ipc in res["ips"]] == ["198.18.41.2/24", "fd00:18:41::2/64"]
    assert all(ipc["interface"] == 0 for ipc in res["ips"])


def test_bcqueuelen_reaches_the_kernel(uplink, ct, cni_path):
    c = conf("macvlan", None, l2=True, master=uplink, bcqueuelen=100)
    ok(run("macvlan", "ADD", c, ct, path=cni_path))
    assert links(ct.name)["eth0"]["linkinfo"]["info_data"]["bcqueuelen"] == 100


def test_l2_result_has_no_ips_and_link_is_up(uplink, ct, cni_path):
    res = ok(run("macvlan", "ADD", conf("macvlan", None, l2=True, master=uplink), ct))
    assert "ips" not in res
    assert "UP" in links(ct.name)["eth0"]["flags"]


def test_link_in_container_uses_a_master_inside_the_container(host_ns, ct, data_dir, cni_path):
    """The master lives in the container netns; no master given: the
    container's default-route interface."""
    make_uplink(netns=ct.name)
    c = conf("macvlan", data_dir, linkInContainer=True)
    ok(run("macvlan", "ADD", c, ct, ifname="net1", path=cni_path))
    net1 = links(ct.name)["net1"]
    assert net1["linkinfo"]["info_kind"] == "macvlan"
    assert net1["link"] == "mvup0"
    assert "mvup0" not in links()  # nothing of it in the host
    c["prevResult"] = ok(
        run(
            "macvlan",
            "ADD",
            {**c, "cniVersion": "1.0.0"},
            ct,
            ifname="net2",
            path=cni_path,
            container_id="other",
        )
    )
    ok(run("macvlan", "CHECK", c, ct, ifname="net2", path=cni_path, container_id="other"))
    ok(run("macvlan", "DEL", c, ct, ifname="net1", path=cni_path))
    assert "net1" not in links(ct.name)


def test_cni_versions_0_2_0_result(uplink, ct, data_dir, cni_path):
    res = ok(
        run("macvlan", "ADD", conf("macvlan", data_dir, "0.2.0", master=uplink), ct, path=cni_path)
    )
    assert res["ip4"]["ip"] == "198.18.41.2/24"


# --- rollback -----------------------------------------------------------------------


def test_failure_after_ipam_removes_link_and_reservation(uplink, ct, data_dir, cni_path):
    """A route ConfigureIface cannot add (its gateway is unreachable) fails
    the ADD after IPAM: the macvlan and the address are both gone."""
    c = conf(
        "macvlan",
        data_dir,
        master=uplink,
        ipam_extra={"routes": [{"dst": "198.19.0.0/16", "gw": "203.0.113.1"}]},
    )
    _, msg = err(run("macvlan", "ADD", c, ct, path=cni_path))
    assert "198.19.0.0/16" in msg
    assert names(ct) == ["lo"]
    assert reservations(data_dir, c["name"]) == []


def test_ifname_taken_keeps_the_existing_interface(uplink, ct, cni_path):
    ip("link", "add", "eth0", "type", "dummy", netns=ct.name, check=False)
    if "eth0" not in links(ct.name):
        ip("link", "add", "eth0", "type", "veth", "peer", "name", "mvpeer", netns=ct.name)
    before = names(ct)
    _, msg = err(run("macvlan", "ADD", conf("macvlan", None, l2=True, master=uplink), ct))
    assert "eth0" in msg and "already exists" in msg
    assert names(ct) == before  # the temporary macvlan is gone, eth0 untouched


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, needle",
    [
        ({"master": "mvup0", "mode": "bridgee"}, 'unknown macvlan mode: "bridgee"'),
        ({"master": "mvnothere"}, "\"master\" 'mvnothere'"),
        ({"master": "lo"}, "loopback"),
        ({"master": "mvup0", "mtu": 9000}, '"mtu" 9000: must be [0, master MTU(1500)]'),
        ({"master": "mvup0", "mtu": -1}, '"mtu" -1'),
        ({"master": "mvup0", "mtu": "1400"}, '"mtu"'),
        ({"master": "mvup0", "mac": "02:00:00"}, "invalid MAC address '02:00:00'"),
        ({"master": "mvup0", "bcqueuelen": -1}, '"bcqueuelen"'),
        ({"master": "mvup0", "runtimeConfig": {"mac": "zz"}}, "runtimeConfig.mac"),
        ({"master": "mv/bad"}, '"master"'),
    ],
)
def test_bad_config_is_code_7_and_changes_nothing(uplink, ct, keys, needle):
    code, msg = err(run("macvlan", "ADD", conf("macvlan", None, l2=True, **keys), ct))
    assert code == ERR_INVALID_NETWORK_CONFIG
    assert needle in msg
    assert names(ct) == ["lo"]


def test_multicast_mac_is_refused_by_name(uplink, ct):
    c = conf("macvlan", None, l2=True, master=uplink, mac="03:00:00:00:00:01")
    _, msg = err(run("macvlan", "ADD", c, ct))
    assert "MAC address" in msg
    assert names(ct) == ["lo"]


def test_no_default_route_and_no_master(host_ns, ct):
    make_uplink(default_route=False)
    code, msg = err(run("macvlan", "ADD", conf("macvlan", None, l2=True), ct))
    assert code == ERR_INVALID_NETWORK_CONFIG
    assert "no default route interface found" in msg


def test_bad_cni_args_is_code_4(uplink, ct):
    code, _ = err(
        run(
            "macvlan",
            "ADD",
            conf("macvlan", None, l2=True, master=uplink),
            ct,
            args="MAC=1;Bogus=2",
        )
    )
    assert code == 4
    assert names(ct) == ["lo"]


def test_missing_netns_is_an_error(uplink):
    _, msg = err(
        run(
            "macvlan",
            "ADD",
            conf("macvlan", None, l2=True, master=uplink),
            netns="/run/netns/mv-nope",
        )
    )
    assert "mv-nope" in msg


# --- DEL ----------------------------------------------------------------------------


def test_del_twice_and_without_prev_result(uplink, ct, data_dir, cni_path):
    c = conf("macvlan", data_dir, master=uplink)
    ok(run("macvlan", "ADD", c, ct, path=cni_path))
    assert reservations(data_dir, c["name"]) != []
    ok(run("macvlan", "DEL", c, ct, path=cni_path))
    assert names(ct) == ["lo"]
    assert reservations(data_dir, c["name"]) == []
    ok(run("macvlan", "DEL", c, ct, path=cni_path))


def test_del_with_netns_gone_releases_ipam(uplink, netns_factory, data_dir, cni_path):
    ct = netns_factory("ct")
    c = conf("macvlan", data_dir, master=uplink)
    ok(run("macvlan", "ADD", c, ct, path=cni_path))
    path = ct.path
    ct.close()
    assert not os.path.exists(path)
    ok(run("macvlan", "DEL", c, netns=path, path=cni_path))
    ok(run("macvlan", "DEL", c, netns="", path=cni_path))
    assert reservations(data_dir, c["name"]) == []


def test_del_does_not_need_the_master_or_a_valid_mode(host_ns, ct):
    """DEL decodes without looking at the master or the mode (a master that
    went away takes its macvlans with it)."""
    c = conf("macvlan", None, l2=True, master="mvgone", mode="nonsense", mtu=99999)
    ok(run("macvlan", "DEL", c, ct))


# --- CHECK, STATUS, GC ---------------------------------------------------------------


def test_check_finds_mode_and_mac_changes(uplink, ct, data_dir, cni_path):
    c = conf("macvlan", data_dir, master=uplink)
    res = ok(run("macvlan", "ADD", c, ct, path=cni_path))
    ok(run("macvlan", "CHECK", {**c, "prevResult": res}, ct, path=cni_path))
    _, msg = err(
        run("macvlan", "CHECK", {**c, "mode": "vepa", "prevResult": res}, ct, path=cni_path)
    )
    assert "mode bridge does not match expected value: vepa" in msg
    bad_mac = {**res, "interfaces": [{**res["interfaces"][0], "mac": "02:00:00:00:00:99"}]}
    _, msg = err(run("macvlan", "CHECK", {**c, "prevResult": bad_mac}, ct, path=cni_path))
    assert "doesn't match container Mac" in msg
    _, msg = err(run("macvlan", "CHECK", c, ct, path=cni_path))
    assert "prevResult missing" in msg
    ip("addr", "flush", "dev", "eth0", netns=ct.name)
    _, msg = err(run("macvlan", "CHECK", {**c, "prevResult": res}, ct, path=cni_path))
    assert "198.18.41.2/24" in msg


def test_status_and_gc(uplink, ct, data_dir, cni_path):
    c = {**conf("macvlan", data_dir, "1.1.0", master=uplink)}
    ok(run("macvlan", "STATUS", c, path=cni_path))
    ok(run("macvlan", "STATUS", conf("macvlan", None, "1.1.0", l2=True), path=cni_path))
    ok(run("macvlan", "ADD", c, ct, path=cni_path, container_id="gc-1"))
    assert reservations(data_dir, c["name"]) != []
    ok(run("macvlan", "GC", {**c, "cni.dev/valid-attachments": []}, path=cni_path))
    assert reservations(data_dir, c["name"]) == []


def test_macvlan_and_host_reach_each_other(host_ns, netns_factory, data_dir, cni_path):
    """Two containers on one master (bridge mode) talk to each other."""
    make_uplink()
    a, b = netns_factory("a"), netns_factory("b")
    c = conf("macvlan", data_dir, master="mvup0")
    ra = ok(run("macvlan", "ADD", c, a, path=cni_path, container_id="a"))
    ok(run("macvlan", "ADD", c, b, path=cni_path, container_id="b"))
    target = ra["ips"][0]["address"].split("/")[0]
    assert ping(b, target)
