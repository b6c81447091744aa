"""Unit tests of the bridge plugin's pieces, and its start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pycni.kernel import ipmasq
from pycni.plugins import common
from pycni.plugins.main import bridge, bridge_conf
from pycni.spec.errors import CNIError
from pycni.spec.result import IPConfig, Result, Route

HEAVY = ("subprocess", "ipaddress", "typing", "dataclasses", "shutil", "shlex")


def test_import_pulls_in_nothing_heavy():
    code = (
        "import sys, pycni.plugins.main.bridge, pycni.plugins.main.loopback\n"
        f"print(sorted(m for m in {(*HEAVY, 'enum', 're', 'json', 'socket')!r} "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out


@pytest.mark.parametrize("l3", [False, True])
def test_plain_add_needs_no_subprocess(net, netns_factory, l3):
    ct = netns_factory()
    conf = net.conf(l2=not l3, isGateway=l3)
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('MODULES ' + ' '.join(sorted(m for m in "
        f"{HEAVY!r} if m in sys.modules))))\n"
        "from pycni.plugins.main.bridge import main\nmain()\n"
    )
    env = {
        **os.environ,
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "ctr-imp",
        "CNI_NETNS": ct.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": net.cni_path[0],
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(conf).encode(), capture_output=True, env=env
    )
    assert proc.returncode == 0, proc
    assert proc.stderr.decode().rsplit("MODULES", 1)[1].strip() == ""


# --- calcGateways ------------------------------------------------------------------------


def conf_of(**keys):
    return bridge_conf.load({"name": "n", **keys}, "", True)


def test_calc_gateways_defaults_and_default_routes():
    result = Result(
        ips=[
            IPConfig("198.18.0.5/24"),
            IPConfig("198.18.1.5/24", "198.18.1.254"),
            IPConfig("fd00::5/64"),
        ]
    )
    gws = bridge.calc_gateways(result, conf_of(isDefaultGateway=True))
    assert [i.interface for i in result.ips] == [2, 2, 2]
    assert [i.gateway for i in result.ips] == ["198.18.0.1", "198.18.1.254", "fd00::1"]
    assert [(r.dst, r.gw) for r in result.routes] == [
        ("0.0.0.0/0", "198.18.0.1"),
        ("::/0", "fd00::1"),
    ]
    assert gws == {4: ["198.18.0.1/24", "198.18.1.254/24"], 6: ["fd00::1/64"]}


def test_calc_gateways_keeps_an_ipam_default_route_with_gw():
    result = Result(ips=[IPConfig("198.18.0.5/24")], routes=[Route("0.0.0.0/0", "198.18.0.9")])
    bridge.calc_gateways(result, conf_of(isDefaultGateway=True))
    assert [(r.dst, r.gw) for r in result.routes] == [("0.0.0.0/0", "198.18.0.9")]


def test_calc_gateways_without_is_gateway():
    result = Result(ips=[IPConfig("198.18.0.5/24")])
    assert bridge.calc_gateways(result, conf_of()) == {4: [], 6: []}
    assert result.ips[0].gateway is None and result.routes == []


# --- config ---------------------------------------------------------------------------------


def test_config_defaults():
    n = conf_of()
    assert n.br_name == "cni0"
    assert not (n.is_gw or n.is_default_gw or n.ip_masq or n.hairpin_mode or n.promisc_mode)
    assert n.ip_masq_backend is None and n.mac == "" and n.dns is None
    assert n.is_layer3 is False and n.vlan_filtering is False


def test_config_keys_are_case_insensitive_and_null_is_unset():
    n = conf_of(Bridge="pybx", ISGATEWAY=True, mtu=None, ipam={"TYPE": "host-local"})
    assert n.br_name == "pybx" and n.is_gw and n.mtu == 0 and n.ipam_type == "host-local"


def test_is_default_gateway_implies_is_gateway():
    assert conf_of(isDefaultGateway=True).is_gw


def test_dns_set_only_when_a_field_is_present():
    assert conf_of(dns={}).dns is None
    assert conf_of(dns={"domain": ""}).dns is None
    dns = conf_of(dns={"nameservers": []}).dns
    assert dns is not None and dns.nameservers == []
    assert conf_of(dns={"search": ["a.test"]}).dns.search == ["a.test"]


@pytest.mark.parametrize("mac", ["c2:11:22:33:44:55", "C2-11-22-33-44-55", "c211.2233.4455"])
def test_mac_forms(mac):
    assert conf_of(runtimeConfig={"mac": mac}).mac == "c2:11:22:33:44:55"


def test_mac_precedence():
    n = bridge_conf.load(
        {"name": "n", "args": {"cni": {"mac": "c2:00:00:00:00:02"}}}, "MAC=c2:00:00:00:00:01", True
    )
    assert n.mac == "c2:00:00:00:00:02"
    n = bridge_conf.load({"name": "n"}, "MAC=c2:00:00:00:00:01", True)
    assert n.mac == "c2:00:00:00:00:01"


def test_add_only_checks_do_not_fail_del():
    conf = {
        "name": "n",
        "hairpinMode": True,
        "promiscMode": True,
        "mtu": -1,
        "bridge": "x" * 20,
        "ipMasqBackend": "pf",
        "runtimeConfig": {"mac": "bad"},
    }
    bridge_conf.load(conf)
    with pytest.raises(CNIError) as exc:
        bridge_conf.load(conf, "", True)
    assert exc.value.code == 7


# --- common helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("198.18.0.5", True),
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("fd00::5", True),
        ("fe80::1", False),
        ("::1", False),
        ("ff02::1", False),
        ("::", False),
    ],
)
def test_is_global_unicast(ip, expected):
    assert common.is_global_unicast(ip) is expected


def test_random_veth_name():
    names = {common.random_veth_name() for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("veth") and len(n) == 12 and int(n[4:], 16) >= 0 for n in names)


def test_rollback_runs_in_reverse_and_survives_failures(capsys):
    done = []

    def fail():
        raise RuntimeError("boom")

    undo = common.Rollback()
    undo.push("first", done.append, 1)
    undo.push("broken", fail)
    undo.push("third", done.append, 3)
    undo.run()
    assert done == [3, 1]
    assert "rollback: broken failed: boom" in capsys.readouterr().err
    undo.push("dropped", done.append, 9)
    undo.commit()
    undo.run()
    assert done == [3, 1]


def test_open_netlink_errors():
    with pytest.raises(common.NetnsGone) as exc:
        common.open_netlink("/run/netns/pyc-absent-ns")
    assert exc.value.code == 8
    with pytest.raises(CNIError) as exc:
        common.open_netlink("/etc/hostname")
    assert exc.value.code == 8 and "/etc/hostname" in exc.value.msg


# --- masquerade backend selection --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ipt", "nft", "ipt_bin", "nft_bin", "expected"),
    [
        (True, True, True, True, "iptables"),
        (True, False, True, True, "iptables"),
        (False, True, True, True, "nftables"),
        (False, False, True, True, "iptables"),
        (False, False, False, True, "nftables"),
        (False, False, False, False, "iptables"),
    ],
)
def test_default_backend_selection(monkeypatch, ipt, nft, ipt_bin, nft_bin, expected):
    from pycni.kernel import nft as nftmod

    monkeypatch.setattr(ipmasq, "supports_iptables", lambda: ipt)
    monkeypatch.setattr(ipmasq, "supports_nftables", lambda: nft)
    monkeypatch.setattr(
        nftmod,
        "which",
        lambda name: f"/x/{name}" if (ipt_bin if name == "iptables" else nft_bin) else None,
    )
    monkeypatch.setattr(nftmod, "binary_available", lambda: nft_bin)
    assert ipmasq.default_backend() == expected


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown ipmasq backend"):
        ipmasq.setup(["198.18.0.2/24"], "n", "eth0", "c", "pf")


def test_split_args():
    assert ipmasq.split_args('-A X -m comment --comment "a \\"b\\" c" -j Y') == [
        "-A",
        "X",
        "-m",
        "comment",
        "--comment",
        'a "b" c',
        "-j",
        "Y",
    ]


def test_nft_setup_listing_failure_is_an_ipmasq_error(monkeypatch):
    """A failing `nft -j list` during setup is reported like any other
    masquerade failure (bridge turns IPMasqError into "failed to set up IP
    masquerade"), not as a bare NftError."""
    from pycni.kernel import nft as nftmod

    def broken(argv, stdin, op):
        raise nftmod.NftError(op, 1, "Error: Could not process rule: Permission denied")

    monkeypatch.setattr(nftmod, "_run", broken)
    with pytest.raises(ipmasq.IPMasqError, match="Permission denied"):
        ipmasq.setup(["198.18.0.2/24"], "n", "eth0", "c", "nftables")
