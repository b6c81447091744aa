"""The tap plugin against the kernel (taps work here; the Go 1.1.1 set has
no tap plugin, so there is no differential test): owner, group and the tun
flags as sysfs shows them inside the container, MTU, MAC precedence, the
bridge port, IPAM, DEL and CHECK, rollback and bad input. Plus the ioctl
sequence, recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycni.plugins.main.tap import tuntap
from pycni.skel.testing import run_plugin

from support.outcomes import err, ok
from support.sandbox import in_netns, ip, ip_json

# plugins run from a sandbox host netns: a mistake cannot touch the real one
pytestmark = pytest.mark.usefixtures("host_ns")

PLUGIN = "pycni.plugins.main.tap"
IFNAME = "tap0"
IFF_PERSIST = 0x0800


def conf(tmp_path: Path, ipam: bool = False, **keys) -> dict:
    c: dict = {"cniVersion": "1.0.0", "name": "hdtap", "type": "tap"}
    if ipam:
        c["ipam"] = {"type": "host-local", "subnet": "198.18.42.0/24", "dataDir": str(tmp_path)}
    c.update(keys)
    return c


def run(command: str, c: dict, ct, args: str = ""):
    return run_plugin(
        PLUGIN, command, c, netns=ct.path, ifname=IFNAME, args=args, path=["/usr/lib/cni"]
    )


def sysfs(ct, attr: str) -> str:
    proc = in_netns(
        ct.name, "cat", f"/sys/class/net/{IFNAME}/{attr}", capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def link(ct, name: str = IFNAME) -> dict | None:
    try:
        return ip_json("-d", "link", "show", "dev", name, netns=ct.name)[0]
    except RuntimeError:
        return None


def reservations(tmp_path: Path) -> list[str]:
    folder = tmp_path / "hdtap"
    return (
        sorted(p.name for p in folder.iterdir() if p.name[0].isdigit()) if folder.is_dir() else []
    )


@pytest.mark.parametrize(
    "keys,owner,group,flags",
    [
        ({}, "-1", "-1", tuntap.IFF_TAP | tuntap.IFF_NO_PI),
        ({"owner": 1000}, "1000", "-1", tuntap.IFF_TAP | tuntap.IFF_NO_PI),
        ({"group": 1001}, "-1", "1001", tuntap.IFF_TAP | tuntap.IFF_NO_PI),
        # both given: the reference's netlink path, vnet_hdr instead of no_pi
        ({"owner": 0, "group": 0}, "0", "0", tuntap.IFF_TAP | tuntap.IFF_VNET_HDR),
        (
            {"multiQueue": True},
            "-1",
            "-1",
            tuntap.IFF_TAP | tuntap.IFF_NO_PI | tuntap.IFF_MULTI_QUEUE,
        ),
        (
            {"multiQueue": True, "owner": 7, "group": 8},
            "7",
            "8",
            tuntap.IFF_TAP | tuntap.IFF_NO_PI | tuntap.IFF_MULTI_QUEUE | tuntap.IFF_VNET_HDR,
        ),
    ],
)
def test_owner_group_and_flags(container_ns, tmp_path, keys, owner, group, flags):
    add = ok(run("ADD", conf(tmp_path, **keys), container_ns))
    assert add["interfaces"] == [
        {"name": IFNAME, "mac": link(container_ns)["address"], "sandbox": container_ns.path}
    ]
    assert sysfs(container_ns, "owner") == owner
    assert sysfs(container_ns, "group") == group
    assert int(sysfs(container_ns, "tun_flags"), 16) == flags | IFF_PERSIST
    assert "UP" in link(container_ns)["flags"]
    ok(run("DEL", conf(tmp_path, **keys), container_ns))
    assert link(container_ns) is None


def test_mtu_and_mac_precedence(container_ns, tmp_path):
    c = conf(tmp_path, mtu=1400, mac="02:00:5e:00:00:01")
    ok(run("ADD", c, container_ns))
    assert link(container_ns)["mtu"] == 1400
    assert link(container_ns)["address"] == "02:00:5e:00:00:01"
    ok(run("DEL", c, container_ns))
    ok(run("ADD", c, container_ns, args="IgnoreUnknown=1;MAC=02:00:5e:00:00:02"))
    assert link(container_ns)["address"] == "02:00:5e:00:00:02"
    ok(run("DEL", c, container_ns))
    c["runtimeConfig"] = {"mac": "02:00:5e:00:00:03"}
    ok(run("ADD", c, container_ns, args="MAC=02:00:5e:00:00:02"))
    assert link(container_ns)["address"] == "02:00:5e:00:00:03"
    ok(run("DEL", c, container_ns))


def test_bridge_port_inside_the_container(container_ns, tmp_path):
    ip("link", "add", "hdbr0", "type", "bridge", netns=container_ns.name)
    c = conf(tmp_path, bridge="hdbr0")
    ok(run("ADD", c, container_ns))
    assert link(container_ns)["master"] == "hdbr0"
    ok(run("DEL", c, container_ns))
    assert link(container_ns, "hdbr0") is not None


def test_bridge_that_is_missing_or_not_a_bridge(container_ns, tmp_path):
    code, msg = err(run("ADD", conf(tmp_path, bridge="hdbr9"), container_ns))
    assert code == 7 and "hdbr9" in msg
    ip("link", "add", "hdv0", "type", "veth", "peer", "name", "hdv0p", netns=container_ns.name)
    code, msg = err(run("ADD", conf(tmp_path, bridge="hdv0"), container_ns))
    assert code == 7 and "not a bridge" in msg
    assert link(container_ns) is None


def test_ipam_lifecycle(container_ns, tmp_path):
    c = conf(tmp_path, ipam=True, dns={"nameservers": ["198.18.42.53"]})
    add = ok(run("ADD", c, container_ns))
    assert add["ips"] == [{"interface": 0, "address": "198.18.42.2/24", "gateway": "198.18.42.1"}]
    assert add["dns"] == {"nameservers": ["198.18.42.53"]}
    addrs = ip_json("addr", "show", "dev", IFNAME, netns=container_ns.name)[0]["addr_info"]
    assert any(a["local"] == "198.18.42.2" for a in addrs)
    proc = in_netns(
        container_ns.name,
        "cat",
        f"/proc/sys/net/ipv4/conf/{IFNAME}/arp_notify",
        capture_output=True,
        text=True,
    )
    assert proc.stdout.strip() == "1"
    ok(run("CHECK", {**c, "prevResult": add}, container_ns))
    ip("addr", "flush", "dev", IFNAME, netns=container_ns.name)
    err(run("CHECK", {**c, "prevResult": add}, container_ns))
    ok(run("DEL", c, container_ns))
    ok(run("DEL", c, container_ns))
    assert reservations(tmp_path) == [] and link(container_ns) is None


def test_del_with_netns_gone(netns_factory, tmp_path):
    ct = netns_factory("gone")
    c = conf(tmp_path, ipam=True)
    ok(run("ADD", c, ct))
    ct.close()
    ok(run("DEL", c, ct))
    assert reservations(tmp_path) == []


def test_failed_ipam_removes_the_tap(container_ns, tmp_path):
    c = conf(tmp_path)
    c["ipam"] = {"type": "host-local", "subnet": "not-a-subnet"}
    err(run("ADD", c, container_ns))
    assert link(container_ns) is None


def test_failed_mac_removes_the_tap(container_ns, tmp_path):
    """The kernel refuses a multicast MAC after the tap exists."""
    err(run("ADD", conf(tmp_path, mac="03:00:5e:00:00:01"), container_ns))
    assert link(container_ns) is None


def test_existing_interface_is_not_taken_over(container_ns, tmp_path):
    in_netns(container_ns.name, "ip", "tuntap", "add", "mode", "tap", "name", IFNAME, check=True)
    _code, msg = err(run("ADD", conf(tmp_path), container_ns))
    assert "already exists" in msg
    ok(run("DEL", conf(tmp_path), container_ns))  # DEL removes by name, as the reference


def test_selinux_context_is_ignored_without_selinux(container_ns, tmp_path):
    if tuntap.selinux_enabled():
        pytest.skip("this system has SELinux")
    out = run("ADD", conf(tmp_path, selinuxContext="system_u:system_r:svirt_t:s0"), container_ns)
    ok(out)
    assert "SELinux is not enabled" in out.stderr
    ok(run("DEL", conf(tmp_path), container_ns))


BAD = {
    "mac": ({"mac": "nope"}, "'nope'"),
    "mtu": ({"mtu": -1}, '"mtu"'),
    "owner": ({"owner": -1}, '"owner"'),
    "group": ({"group": 1 << 32}, '"group"'),
    "owner type": ({"owner": "root"}, '"owner"'),
    "bridge name": ({"bridge": "a b"}, '"bridge"'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(container_ns, tmp_path, case):
    keys, words = BAD[case]
    code, msg = err(run("ADD", conf(tmp_path, **keys), container_ns))
    assert code == 7 and words in msg
    assert link(container_ns) is None


def test_bad_cni_args_is_code_4(container_ns, tmp_path):
    code, _msg = err(run("ADD", conf(tmp_path), container_ns, args="FOO=1"))
    assert code == 4


def test_ioctl_sequence():
    calls = []
    tuntap.make_persistent(
        3, "tap0", tuntap.tap_flags(True, False), 4294967294, 5, ioctl=lambda *a: calls.append(a)
    )
    assert [c[1] for c in calls] == [
        tuntap.TUNSETIFF,
        tuntap.TUNSETOWNER,
        tuntap.TUNSETGROUP,
        tuntap.TUNSETPERSIST,
    ]
    name, flags = calls[0][2][:16].rstrip(b"\0"), int.from_bytes(calls[0][2][16:18], "little")
    assert name == b"tap0" and len(calls[0][2]) == 40
    assert flags == tuntap.IFF_TAP | tuntap.IFF_NO_PI | tuntap.IFF_MULTI_QUEUE | tuntap.IFF_TUN_EXCL
    assert calls[1][2] == -2 and calls[2][2] == 5 and calls[3][2] == 1


def test_killed_at_every_add_step_then_del_leaves_nothing(container_ns, tmp_path):
    c = conf(tmp_path, ipam=True, mtu=1400, bridge="hdbr0")
    ip("link", "add", "hdbr0", "type", "bridge", netns=container_ns.name)
    trace = tmp_path / "trace"
    ok(
        run_plugin(
            PLUGIN,
            "ADD",
            c,
            netns=container_ns.path,
            ifname=IFNAME,
            path=["/usr/lib/cni"],
            env={"PYCNI_FAULT_TRACE": str(trace)},
        )
    )
    ok(run("DEL", c, container_ns))
    steps = trace.read_text().split()
    assert steps[:4] == ["tap.add.create", "tap.add.mtu-mac", "tap.add.bridge", "tap.add.up"]
    for step in steps:
        killed = run_plugin(
            PLUGIN,
            "ADD",
            c,
            netns=container_ns.path,
            ifname=IFNAME,
            path=["/usr/lib/cni"],
            env={"PYCNI_FAULT_STEP": step},
        )
        assert killed.exit_code == -9, (step, killed)
        ok(run("DEL", c, container_ns))
        assert link(container_ns) is None, step
        assert reservations(tmp_path) == [], step


def test_selinux_context_applied_when_selinux_is_there(container_ns, tmp_path, monkeypatch):
    """With SELinux (faked: its folder exists) the tap is made by a thread
    running under the label; a label the kernel refuses is an error naming
    it, and no tap is left. Run in-process to fake the folder and the
    label file (the label goes to a plain file here)."""
    import io
    import json

    from pycni.plugins.main import tap
    from pycni.skel import run as skel_run

    (tmp_path / "selinux").mkdir()
    monkeypatch.setattr(tuntap, "SELINUX_FS", str(tmp_path / "selinux"))
    label_file = tmp_path / "attr-current"
    monkeypatch.setattr(tuntap, "ATTR_CURRENT", str(label_file))
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "hd-sel",
        "CNI_NETNS": container_ns.path,
        "CNI_IFNAME": IFNAME,
        "CNI_PATH": "/usr/lib/cni",
    }
    c = conf(tmp_path, selinuxContext="system_u:system_r:svirt_t:s0", owner=1, group=2)

    def add() -> tuple[int, str]:
        out = io.StringIO()
        code = skel_run(env, io.BytesIO(json.dumps(c).encode()), out, io.StringIO(), tap.PLUGIN)
        return code, out.getvalue()

    code, out = add()
    assert code == 0, out
    assert label_file.read_text() == "system_u:system_r:svirt_t:s0"
    # the reference's `ip tuntap` path when a label is set: no vnet_hdr
    assert (
        int(sysfs(container_ns, "tun_flags"), 16) == tuntap.IFF_TAP | tuntap.IFF_NO_PI | IFF_PERSIST
    )
    ok(run("DEL", c, container_ns))
    monkeypatch.setattr(tuntap, "ATTR_CURRENT", str(tmp_path / "no" / "such"))
    code, out = add()
    assert code == 1 and "SELinux context 'system_u:system_r:svirt_t:s0'" in out
    assert link(container_ns) is None
