"""bridge ADD through the plugin executable: results, families, config keys."""

from __future__ import annotations

import os
import subprocess

import pytest

from pycni.spec import version

from support.bridge import addrs, brport, links, ping, routes, sysctl_in, veths_on
from support.outcomes import ok
from support.plugin_dirs import write_launcher
from support.sandbox import in_netns, ip

# --- result shape per version --------------------------------------------------------


@pytest.mark.parametrize("cni_version", version.ALL)
def test_result_shape_per_version(net, netns_factory, cni_version):
    ct = netns_factory()
    conf = net.conf(cni_version, isGateway=True)
    r = net.runner(ct)
    result = ok(r.add(conf))
    assert result["cniVersion"] == cni_version
    host_veth = veths_on(net.brname)
    assert len(host_veth) == 1
    if cni_version in ("0.1.0", "0.2.0"):
        assert result == {
            "cniVersion": cni_version,
            "ip4": {"ip": "198.18.5.2/24", "gateway": "198.18.5.1"},
            "dns": {},
        }
    else:
        br, hveth, cont = result["interfaces"]
        assert br == {"name": net.brname, "mac": links()[net.brname]["address"]}
        assert hveth == {"name": host_veth[0]["ifname"], "mac": host_veth[0]["address"]}
        assert hveth["name"].startswith("veth") and len(hveth["name"]) == 12
        assert cont == {
            "name": "eth0",
            "mac": links(ct.name)["eth0"]["address"],
            "sandbox": ct.path,
        }
        ipc = {"interface": 2, "address": "198.18.5.2/24", "gateway": "198.18.5.1"}
        if cni_version.startswith("0."):
            ipc = {"version": "4", **ipc}
        assert result["ips"] == [ipc]
        assert "routes" not in result
        if cni_version.startswith("0."):
            assert result["dns"] == {}
    assert ok(r.delete(conf)) is None
    assert veths_on(net.brname) == []


def test_l2_result_has_no_ips_and_0_2_0_cannot_express_it(net, netns_factory):
    ct = netns_factory()
    result = ok(net.runner(ct).add(net.conf(l2=True)))
    assert [i["name"] for i in result["interfaces"]] == [
        net.brname,
        result["interfaces"][1]["name"],
        "eth0",
    ]
    assert "ips" not in result
    assert "UP" in links(ct.name)["eth0"]["flags"]
    assert addrs("eth0", ct.name) == []
    ct2 = netns_factory()
    out = net.runner(ct2).add(net.conf("0.2.0", l2=True))
    assert not out.ok
    assert "cannot convert: no valid IP addresses" in out.error["msg"]


# --- address families -------------------------------------------------------------------


def test_ipv4_gateway_and_default_route(net, netns_factory):
    ct = netns_factory()
    result = ok(net.runner(ct).add(net.conf(isDefaultGateway=True)))
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "198.18.5.1"}]
    assert addrs(net.brname) == ["198.18.5.1/24"]
    assert addrs("eth0", ct.name) == ["198.18.5.2/24"]
    default = [r for r in routes(ct.name) if r["dst"] == "default"]
    assert default and default[0]["gateway"] == "198.18.5.1"
    assert sysctl_in(None, "net/ipv4/ip_forward") == "1"


def test_ipv6_only(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(subnets=("fd00:18:6::/64",), isDefaultGateway=True)
    result = ok(net.runner(ct).add(conf))
    assert result["ips"] == [
        {"interface": 2, "address": "fd00:18:6::2/64", "gateway": "fd00:18:6::1"}
    ]
    assert result["routes"] == [{"dst": "::/0", "gw": "fd00:18:6::1"}]
    assert addrs(net.brname) == ["fd00:18:6::1/64"]
    assert addrs("eth0", ct.name) == ["fd00:18:6::2/64"]
    assert any(
        r["dst"] == "default" and r.get("gateway") == "fd00:18:6::1" for r in routes(ct.name, "-6")
    )
    assert sysctl_in(None, "net/ipv6/conf/all/forwarding") == "1"
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/disable_ipv6") == "0"
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/keep_addr_on_down") == "1"
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/accept_dad") == "0"


def test_dual_stack(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(subnets=("198.18.7.0/24", "fd00:18:7::/64"), isDefaultGateway=True)
    result = ok(net.runner(ct).add(conf))
    assert [i["address"] for i in result["ips"]] == ["198.18.7.2/24", "fd00:18:7::2/64"]
    assert all(i["interface"] == 2 for i in result["ips"])
    assert result["routes"] == [
        {"dst": "0.0.0.0/0", "gw": "198.18.7.1"},
        {"dst": "::/0", "gw": "fd00:18:7::1"},
    ]
    assert sorted(addrs(net.brname)) == ["198.18.7.1/24", "fd00:18:7::1/64"]
    assert sorted(addrs("eth0", ct.name)) == ["198.18.7.2/24", "fd00:18:7::2/64"]


def test_ping_between_two_containers_on_one_bridge(net, netns_factory):
    a, b = netns_factory("pa"), netns_factory("pb")
    conf = net.conf(subnets=("198.18.8.0/24", "fd00:18:8::/64"), isGateway=True)
    ra, rb = net.runner(a), net.runner(b)
    ip_a = ok(ra.add(conf))["ips"]
    ip_b = ok(rb.add(conf))["ips"]
    assert ip_a[0]["address"] != ip_b[0]["address"]
    for src, dst in ((a, ip_b[0]), (b, ip_a[0]), (a, ip_b[1]), (b, ip_a[1])):
        target = dst["address"].split("/")[0]
        assert ping(src, target), f"{src} cannot reach {target}"
    assert ping(a, "198.18.8.1")  # the gateway on the bridge
    ok(ra.delete(conf))
    ok(rb.delete(conf))
    assert veths_on(net.brname) == []


# --- config keys, one by one ------------------------------------------------------------------


def test_default_bridge_name_is_cni0(host_ns, netns_factory, data_dir, cni_path):
    from support.bridge import Net

    n = Net("cni0", data_dir, cni_path)
    conf = n.conf(l2=True)
    del conf["bridge"]
    result = ok(n.runner(netns_factory()).add(conf))
    assert result["interfaces"][0]["name"] == "cni0"
    assert links()["cni0"]["linkinfo"]["info_kind"] == "bridge"


def test_existing_bridge_is_reused(net, netns_factory):
    ip("link", "add", net.brname, "type", "bridge")
    index = links()[net.brname]["ifindex"]
    ok(net.runner(netns_factory()).add(net.conf(l2=True)))
    assert links()[net.brname]["ifindex"] == index


def test_existing_non_bridge_is_refused(net, netns_factory):
    ip("link", "add", net.brname, "type", "veth", "peer", "name", net.brname + "p")
    out = net.runner(netns_factory()).add(net.conf())
    assert not out.ok
    assert out.error["msg"] == f'"{net.brname}" already exists but is not a bridge'
    assert net.reservations() == []


def test_is_gateway_without_default_route(net, netns_factory):
    ct = netns_factory()
    result = ok(net.runner(ct).add(net.conf(isGateway=True)))
    assert "routes" not in result
    assert not [r for r in routes(ct.name) if r["dst"] == "default"]
    assert addrs(net.brname) == ["198.18.5.1/24"]


def test_no_gateway_leaves_bridge_without_address(net, netns_factory):
    ct = netns_factory()
    result = ok(net.runner(ct).add(net.conf()))
    assert result["ips"][0]["gateway"] == "198.18.5.1"  # host-local's default
    assert addrs(net.brname) == []
    assert sysctl_in(ct.name, "net/ipv4/conf/eth0/arp_notify") == "1"


def test_ipam_gateway_is_kept(net, netns_factory):
    ct = netns_factory()
    ipam = {
        "type": "host-local",
        "dataDir": str(net.data_dir),
        "ranges": [[{"subnet": "198.18.9.0/24", "gateway": "198.18.9.254"}]],
    }
    result = ok(net.runner(ct).add(net.conf(ipam=ipam, isDefaultGateway=True)))
    assert result["ips"][0]["gateway"] == "198.18.9.254"
    assert addrs(net.brname) == ["198.18.9.254/24"]


def test_bridge_mac_is_stable_once_it_has_an_address(net, netns_factory):
    conf = net.conf(isGateway=True)
    first = ok(net.runner(netns_factory()).add(conf))
    second = ok(net.runner(netns_factory()).add(conf))
    assert first["interfaces"][0]["mac"] == second["interfaces"][0]["mac"]
    assert links()[net.brname]["address"] == first["interfaces"][0]["mac"]


def test_force_address_replaces_a_conflicting_bridge_address(net, netns_factory):
    ip("link", "add", net.brname, "type", "bridge")
    ip("addr", "add", "198.18.99.1/24", "dev", net.brname)
    ok(net.runner(netns_factory()).add(net.conf(isGateway=True, forceAddress=True)))
    assert addrs(net.brname) == ["198.18.5.1/24"]


def test_same_gateway_address_is_not_a_conflict(net, netns_factory):
    ip("link", "add", net.brname, "type", "bridge")
    ip("addr", "add", "198.18.5.1/24", "dev", net.brname)
    ok(net.runner(netns_factory()).add(net.conf(isGateway=True)))
    assert addrs(net.brname) == ["198.18.5.1/24"]


def test_mtu_on_new_bridge_and_both_veth_ends(net, netns_factory):
    ct = netns_factory()
    ok(net.runner(ct).add(net.conf(mtu=1400)))
    assert links()[net.brname]["mtu"] == 1400
    assert veths_on(net.brname)[0]["mtu"] == 1400
    assert links(ct.name)["eth0"]["mtu"] == 1400


def test_hairpin_mode(net, netns_factory):
    ok(net.runner(netns_factory()).add(net.conf(hairpinMode=True)))
    port = brport(veths_on(net.brname)[0]["ifname"])
    assert port["hairpin"] is True and port["isolated"] is False


def test_port_isolation(net, netns_factory):
    ok(net.runner(netns_factory()).add(net.conf(portIsolation=True)))
    port = brport(veths_on(net.brname)[0]["ifname"])
    assert port["isolated"] is True and port["hairpin"] is False


def test_port_flags_are_always_written(net, netns_factory):
    ok(net.runner(netns_factory()).add(net.conf()))
    port = brport(veths_on(net.brname)[0]["ifname"])
    assert port["hairpin"] is False and port["isolated"] is False


def test_promisc_mode(net, netns_factory):
    ok(net.runner(netns_factory()).add(net.conf(promiscMode=True)))
    assert "PROMISC" in links()[net.brname]["flags"]


def test_container_sysctls_default(net, netns_factory):
    ct = netns_factory()
    ok(net.runner(ct).add(net.conf()))
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/accept_dad") == "0"
    assert sysctl_in(ct.name, "net/ipv4/conf/eth0/arp_notify") == "1"
    host_veth = veths_on(net.brname)[0]["ifname"]
    assert sysctl_in(None, f"net/ipv6/conf/{host_veth}/accept_ra") == "0"
    assert sysctl_in(None, f"net/ipv6/conf/{net.brname}/accept_ra") == "0"


def test_enabledad(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(subnets=("fd00:18:a::/64",), isGateway=True, enabledad=True)
    ok(net.runner(ct).add(conf))
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/accept_dad") == "1"
    assert sysctl_in(ct.name, "net/ipv6/conf/eth0/enhanced_dad") == "1"
    out = in_netns(
        ct.name,
        "ip",
        "-6",
        "addr",
        "show",
        "dev",
        "eth0",
        "scope",
        "global",
        capture_output=True,
        text=True,
    ).stdout
    assert "fd00:18:a::2/64" in out and "tentative" not in out


def test_disable_container_interface_leaves_it_down(net, netns_factory):
    ct = netns_factory()
    result = ok(net.runner(ct).add(net.conf(l2=True, disableContainerInterface=True)))
    assert len(result["interfaces"]) == 3
    assert "UP" not in links(ct.name)["eth0"]["flags"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"env": "c2:11:22:33:44:55"}, "c2:11:22:33:44:55"),
        ({"args": "c2:11:22:33:44:66"}, "c2:11:22:33:44:66"),
        ({"runtime": "C2-11-22-33-44-77"}, "c2:11:22:33:44:77"),
        ({"env": "c2:00:00:00:00:01", "args": "c2:00:00:00:00:02"}, "c2:00:00:00:00:02"),
        (
            {
                "env": "c2:00:00:00:00:01",
                "args": "c2:00:00:00:00:02",
                "runtime": "c2:00:00:00:00:03",
            },
            "c2:00:00:00:00:03",
        ),
    ],
)
def test_container_mac_sources_and_precedence(net, netns_factory, where, expected):
    ct = netns_factory()
    extra = {}
    if "args" in where:
        extra["args"] = {"cni": {"mac": where["args"]}}
    if "runtime" in where:
        extra["runtimeConfig"] = {"mac": where["runtime"]}
    cni_args = f"IgnoreUnknown=1;MAC={where['env']}" if "env" in where else ""
    result = ok(net.runner(ct).add(net.conf(**extra), args=cni_args))
    assert result["interfaces"][2]["mac"] == expected
    assert links(ct.name)["eth0"]["address"] == expected


def test_runtime_config_ips_reach_ipam(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(capabilities={"ips": True}, runtimeConfig={"ips": ["198.18.5.77/24"]})
    result = ok(net.runner(ct).add(conf))
    assert result["ips"][0]["address"] == "198.18.5.77/24"
    assert addrs("eth0", ct.name) == ["198.18.5.77/24"]


def test_config_dns_overrides_ipam_dns(net, netns_factory, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 198.18.0.53\nsearch ipam.test\n")
    ipam = {
        "type": "host-local",
        "dataDir": str(net.data_dir),
        "resolvConf": str(resolv),
        "ranges": [[{"subnet": "198.18.5.0/24"}]],
    }
    kept = ok(net.runner(netns_factory()).add(net.conf(ipam=ipam)))
    assert kept["dns"] == {"nameservers": ["198.18.0.53"], "search": ["ipam.test"]}
    dns = {"nameservers": ["198.18.1.53"], "domain": "conf.test"}
    overridden = ok(net.runner(netns_factory()).add(net.conf(ipam=ipam, dns=dns)))
    assert overridden["dns"] == dns


def test_ipam_routes_get_the_gateway(net, netns_factory):
    ct = netns_factory()
    ipam = {
        "type": "host-local",
        "dataDir": str(net.data_dir),
        "ranges": [[{"subnet": "198.18.5.0/24"}]],
        "routes": [{"dst": "198.19.0.0/16"}, {"dst": "198.18.128.0/17", "gw": "198.18.5.9"}],
    }
    result = ok(net.runner(ct).add(net.conf(ipam=ipam, isGateway=True)))
    assert result["routes"] == [
        {"dst": "198.19.0.0/16"},
        {"dst": "198.18.128.0/17", "gw": "198.18.5.9"},
    ]
    table = {r["dst"]: r.get("gateway") for r in routes(ct.name)}
    assert table["198.19.0.0/16"] == "198.18.5.1"
    assert table["198.18.128.0/17"] == "198.18.5.9"


def test_two_attachments_of_one_container(net, netns_factory):
    ct = netns_factory()
    conf = net.conf(isGateway=True)
    ok(net.runner(ct, ifname="eth0", container_id="ctr-two").add(conf))
    ok(net.runner(ct, ifname="net1", container_id="ctr-two").add(conf))
    assert set(links(ct.name)) >= {"eth0", "net1"}
    assert len(veths_on(net.brname)) == 2


def test_plugin_runs_from_a_launcher_and_prints_about(host_ns, tmp_path):
    launcher = write_launcher(tmp_path / "bridge", "pycni.plugins.main.bridge")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    proc = subprocess.run([str(launcher)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    assert "CNI protocol versions supported: 0.1.0, 0.2.0" in proc.stderr


def test_route_mtu_and_advmss_reach_the_kernel(net, netns_factory):
    """Issue 6, item 7: they were in the result but not on the route."""
    ct = netns_factory()
    ipam = {
        "type": "host-local",
        "dataDir": str(net.data_dir),
        "ranges": [[{"subnet": "198.18.14.0/24"}], [{"subnet": "fd00:18:14::/64"}]],
        "routes": [
            {"dst": "198.19.0.0/16", "mtu": 1400, "advmss": 1360},
            {"dst": "fd00:19::/32", "mtu": 1350, "advmss": 1290, "priority": 7},
        ],
    }
    result = ok(net.runner(ct).add(net.conf(ipam=ipam)))
    assert result["routes"][0] == {"dst": "198.19.0.0/16", "mtu": 1400, "advmss": 1360}
    text = ip("-4", "route", "show", "198.19.0.0/16", netns=ct.name)
    assert "mtu 1400" in text and "advmss 1360" in text, text
    text = ip("-6", "route", "show", "fd00:19::/32", netns=ct.name)
    assert "mtu 1350" in text and "advmss 1290" in text and "metric 7" in text, text
