"""Unit tests of the bridge plugin's pieces, and its start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pycni.plugins.main.bridge import conf as bridge_conf
from pycni.plugins.main.bridge import links
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
    gws = links.calc_gateways(result, conf_of(isDefaultGateway=True))
    assert [i.interface for i in result.ips] == [2, 2, 2]
    assert [i.gateway for i in result.ips] == ["198.18.0.1", "198.18.1.254", "fd00::1"]
    assert [(r.dst, r.gw) for r in result.routes] == [
        ("0.0.0.0/0", "198.18.0.1"),
        ("::/0", "fd00::1"),
    ]
    assert gws == {4: ["198.18.0.1/24", "198.18.1.254/24"], 6: ["fd00::1/64"]}


def test_calc_gateways_keeps_an_ipam_default_route_with_gw():
    result = Result(ips=[IPConfig("198.18.0.5/24")], routes=[Route("0.0.0.0/0", "198.18.0.9")])
    links.calc_gateways(result, conf_of(isDefaultGateway=True))
    assert [(r.dst, r.gw) for r in result.routes] == [("0.0.0.0/0", "198.18.0.9")]


def test_calc_gateways_without_is_gateway():
    result = Result(ips=[IPConfig("198.18.0.5/24")])
    assert links.calc_gateways(result, conf_of()) == {4: [], 6: []}
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
