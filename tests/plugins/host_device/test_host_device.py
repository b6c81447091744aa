"""host-device beyond the differential cases: DEL when the netns is gone
(and the kernel handed the device back), rollback of a failed ADD, name
conflicts, CHECK, and bad input."""

from __future__ import annotations

import pytest

from support.host_device import DEV, IFNAME, MAC
from support.outcomes import err, ok
from support.sandbox import ip


def test_del_with_netns_gone_renames_a_returned_device(hd, host_ns):
    """A physical device of a dead netns comes back to the initial netns
    as CNI_IFNAME, alias kept. That is simulated here by moving it to the
    sandbox host by hand before removing the container."""
    hd.device()
    ct = hd.container()
    conf = hd.conf(ipam=True, device=DEV)
    add = ok(hd.run("ADD", conf, ct))
    ip("-n", ct.name, "link", "set", IFNAME, "netns", host_ns.name)
    ct.close()
    assert hd.link(IFNAME)["alias"] == DEV
    ok(hd.run("DEL", {**conf, "prevResult": add}, ct))
    assert hd.link(IFNAME) is None
    back = hd.link(DEV)
    assert back["mac"] == MAC and back["alias"] == ""
    assert hd.reservations() == []


def test_del_with_netns_gone_renames_a_device_returned_as_devN(hd, host_ns):
    """When CNI_IFNAME is taken in the initial netns the kernel names the
    returned device dev<ifindex>."""
    hd.device()
    ct = hd.container()
    conf = hd.conf(device=DEV)
    add = ok(hd.run("ADD", conf, ct))
    index = hd_index(ct.name, IFNAME)
    ip("-n", ct.name, "link", "set", IFNAME, "netns", host_ns.name, "name", f"dev{index}")
    ct.close()
    ok(hd.run("DEL", {**conf, "prevResult": add}, ct))
    assert hd.link(DEV)["alias"] == ""
    assert hd.link(f"dev{index}") is None


def hd_index(netns: str, name: str) -> int:
    from support.sandbox import ip_json

    return ip_json("link", "show", "dev", name, netns=netns)[0]["ifindex"]


def test_del_with_netns_gone_leaves_unrelated_links_alone(hd, host_ns):
    """Without a matching MAC nothing on the host is renamed, even a link
    named CNI_IFNAME that has an alias."""
    ip("link", "add", IFNAME, "type", "veth", "peer", "name", "hdother")
    ip("link", "set", IFNAME, "alias", "uplink")
    ct = hd.container()
    ct.close()
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": IFNAME, "mac": "02:00:5e:48:44:99", "sandbox": ct.path}],
    }
    ok(hd.run("DEL", hd.conf(device=DEV, prevResult=prev), ct))
    assert hd.link(IFNAME)["alias"] == "uplink"


def test_del_with_netns_gone_and_no_prev_result(hd):
    ct = hd.container()
    ct.close()
    ok(hd.run("DEL", hd.conf(ipam=True, device=DEV), ct))


def test_del_without_netns_releases_ipam(hd):
    hd.device()
    ct = hd.container()
    conf = hd.conf(ipam=True, device=DEV)
    ok(hd.run("ADD", conf, ct))
    assert hd.reservations() != []
    ok(hd.run("DEL", conf, ct, netns=""))
    assert hd.reservations() == []


def test_failed_ipam_puts_the_device_back_as_it_was(hd):
    """ADD fails after the move (the IPAM plugin refuses its config): the
    device is back under its name, with its own alias and up again."""
    hd.device()
    ip("link", "set", DEV, "alias", "keep-me")
    before = hd.link(DEV)
    ct = hd.container()
    conf = hd.conf(device=DEV)
    conf["ipam"] = {"type": "host-local", "subnet": "not-a-subnet"}
    _code, msg = err(hd.run("ADD", conf, ct))
    assert "not-a-subnet" in msg
    assert hd.link(DEV) == before and before["up"]
    assert hd.link(IFNAME, ct) is None


def test_failed_configure_releases_the_address(hd):
    """ConfigureIface fails (a route through an unreachable gateway): the
    address is released and the device is back."""
    hd.device()
    ct = hd.container()
    conf = hd.conf(ipam=True, device=DEV)
    conf["ipam"]["routes"] = [{"dst": "198.19.0.0/16", "gw": "198.18.99.1"}]
    err(hd.run("ADD", conf, ct))
    assert hd.reservations() == []
    assert hd.link(DEV)["alias"] == "" and hd.link(DEV)["up"]


def test_add_refuses_a_taken_container_name(hd):
    hd.device()
    ct = hd.container()
    ip("link", "add", IFNAME, "type", "veth", "peer", "name", "hdx", netns=ct.name)
    _code, msg = err(hd.run("ADD", hd.conf(device=DEV), ct))
    assert "already exists" in msg
    assert hd.link(DEV)["up"] and hd.link(DEV)["alias"] == ""


def test_del_with_the_host_name_taken_keeps_the_device_and_can_be_retried(hd):
    hd.device()
    ct = hd.container()
    conf = hd.conf(device=DEV)
    ok(hd.run("ADD", conf, ct))
    ip("link", "add", DEV, "type", "veth", "peer", "name", "hdblock")
    _code, msg = err(hd.run("DEL", conf, ct))
    assert DEV in msg and "exists" in msg
    inside = hd.link(IFNAME, ct)
    assert inside["up"] and inside["alias"] == DEV
    ip("link", "del", DEV)
    ok(hd.run("DEL", conf, ct))
    assert hd.link(DEV)["mac"] == MAC


def test_check_sees_a_changed_mac(hd):
    hd.device()
    ct = hd.container()
    conf = hd.conf(ipam=True, device=DEV)
    add = ok(hd.run("ADD", conf, ct))
    ok(hd.run("CHECK", {**conf, "prevResult": add}, ct))
    ip("link", "set", IFNAME, "address", "02:00:5e:48:44:77", netns=ct.name)
    code, msg = err(hd.run("CHECK", {**conf, "prevResult": add}, ct))
    assert code == 999 and "Mac" in msg
    _code, msg = err(hd.run("CHECK", conf, ct))
    assert msg == "Required prevResult missing"


def test_status_and_gc_forward_to_ipam(hd, launcher_dir):
    """Through pycni's host-local (Go's 1.1.1 knows neither verb): GC
    releases what no valid attachment holds."""
    hd.device()
    ct = hd.container()
    conf = hd.conf(version="1.1.0", ipam=True, device=DEV)
    ok(hd.run("ADD", conf, ct, path=str(launcher_dir)))
    ok(hd.run("STATUS", conf, ct, netns="", path=str(launcher_dir)))
    assert hd.reservations() != []
    gc = {**conf, "cni.dev/valid-attachments": []}
    ok(hd.run("GC", gc, ct, netns="", path=str(launcher_dir)))
    assert hd.reservations() == []
    ok(hd.run("DEL", conf, ct, path=str(launcher_dir)))


BAD = {
    "no selector": ({}, 'specify either "device", "hwaddr", "kernelpath" or "pciBusID"'),
    "device not a name": ({"device": "a/b"}, 'invalid "device"'),
    "device too long": ({"device": "x" * 16}, 'invalid "device"'),
    "device missing": ({"device": "hdnope"}, 'no interface named "hdnope"'),
    "hwaddr": ({"hwaddr": "zz:zz"}, 'invalid "hwaddr"'),
    "hwaddr missing": ({"hwaddr": "02:00:5e:48:44:fe"}, "no interface with MAC"),
    "kernelpath relative": ({"kernelpath": "sys/devices/x"}, 'invalid "kernelpath"'),
    "kernelpath outside": ({"kernelpath": "/tmp/x"}, 'invalid "kernelpath"'),
    "kernelpath dotdot": ({"kernelpath": "/sys/devices/../../etc"}, 'invalid "kernelpath"'),
    "kernelpath missing": ({"kernelpath": "/sys/devices/nothing-here"}, "failed to find"),
    "pci short": ({"pciBusID": "00:01.0"}, 'invalid "pciBusID"'),
    "pci bad hex": ({"pciBusID": "0000:0g:01.0"}, 'invalid "pciBusID"'),
    "pci function": ({"pciBusID": "0000:00:01.8"}, 'invalid "pciBusID"'),
    "pci path": ({"pciBusID": "../../../etc"}, 'invalid "pciBusID"'),
    "pci absent": ({"pciBusID": "ffff:ff:1f.7"}, "error with host device"),
    "deviceID absent": ({"runtimeConfig": {"deviceID": "nope-0"}}, "DeviceID nope-0 not found"),
    "deviceID path": ({"runtimeConfig": {"deviceID": "../x"}}, "runtimeConfig.deviceID"),
    "device type": ({"device": 5}, '"device"'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_config_error_and_changes_nothing(hd, case):
    keys, words = BAD[case]
    hd.device()
    before = hd.link(DEV)
    ct = hd.container()
    code, msg = err(hd.run("ADD", hd.conf(**keys), ct))
    assert code == 7, msg
    assert words in msg
    assert hd.link(DEV) == before


# --- the host-side state kept for DEL ---------------------------------------------------


@pytest.mark.parametrize("up", [True, False])
def test_del_gives_back_the_up_state_and_the_own_alias(hd, up):
    hd.device(up=up)
    ip("link", "set", DEV, "alias", "uplink to rack 7")
    before = hd.link(DEV)
    ct = hd.container()
    conf = hd.conf(device=DEV)
    ok(hd.run("ADD", conf, ct))
    assert hd.state_file().stat().st_mode & 0o777 == 0o600
    assert hd.link(IFNAME, ct)["alias"] == DEV  # the Go plugin's contract
    ok(hd.run("DEL", conf, ct))
    assert hd.link(DEV) == before
    assert not hd.state_file().exists()


def test_netns_gone_without_prev_result_finds_the_device_by_the_saved_mac(hd, host_ns):
    hd.device()
    ct = hd.container()
    conf = hd.conf(device=DEV)
    ok(hd.run("ADD", conf, ct))
    ip("-n", ct.name, "link", "set", IFNAME, "netns", host_ns.name)
    ct.close()
    ok(hd.run("DEL", conf, ct))
    back = hd.link(DEV)
    assert back["alias"] == "" and back["up"]
    assert not hd.state_file().exists()


def test_without_saved_state_del_leaves_the_device_down_as_the_reference(hd):
    """An attachment the Go plugin made has no state file."""
    from support.host_device import GO

    hd.device()
    ct = hd.container()
    conf = hd.conf(device=DEV)
    ok(hd.run("ADD", conf, ct, plugin=GO))
    assert not hd.state_file().exists()
    ok(hd.run("DEL", conf, ct))
    back = hd.link(DEV)
    assert back["alias"] == "" and not back["up"]


def test_failed_add_leaves_no_state_file(hd):
    hd.device()
    ct = hd.container()
    conf = hd.conf(device=DEV)
    conf["ipam"] = {"type": "host-local", "subnet": "not-a-subnet"}
    err(hd.run("ADD", conf, ct))
    assert not hd.state_file().exists()
    assert not list(hd.state_file().parent.glob(hd.container_id + "*"))
