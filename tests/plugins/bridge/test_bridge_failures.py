"""A failed bridge ADD leaves nothing behind; config errors are code 7."""

from __future__ import annotations

import json

import pytest

from pycni.netfilter.names import format_chain_name
from pycni.plugins.main.bridge import spoofcheck

from support.bridge import links, veths_on
from support.outcomes import ok
from support.sandbox import ip, iptables_save, nft_ruleset


def assert_nothing_left(net, ct, reservations=()):
    assert "eth0" not in links(ct.name)
    assert veths_on(net.brname) == []
    assert [v for v in links() if v.startswith("veth")] == []
    assert net.reservations() == sorted(reservations)
    ruleset = nft_ruleset()
    assert "masquerade comment" not in ruleset
    assert "macspoofchk" not in ruleset
    assert "CNI-" not in iptables_save() and "CNI-" not in iptables_save(v6=True)


# --- failures halfway through ADD -------------------------------------------------------


def test_ipam_exhausted(net, netns_factory):
    conf = net.conf(subnets=("198.18.10.0/30",), isGateway=True, ipMasq=True, macspoofchk=True)
    first = netns_factory()
    ok(net.runner(first, container_id="ctr-first").add(conf))
    second = netns_factory()
    r = net.runner(second, container_id="ctr-second")
    out = r.add(conf)
    assert not out.ok
    assert "no IP addresses available" in out.error["msg"]
    assert "eth0" not in links(second.name)
    assert len(veths_on(net.brname)) == 1
    assert net.reservations() == ["198.18.10.2"]
    assert spoofcheck.comment(spoofcheck.ref_id("ctr-second", "eth0")) not in nft_ruleset()
    assert spoofcheck.comment(spoofcheck.ref_id("ctr-first", "eth0")) in nft_ruleset()
    ok(net.runner(first, container_id="ctr-first").delete(conf))
    assert_nothing_left(net, first)


def test_interface_name_taken_in_container(net, netns_factory):
    ct = netns_factory()
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0", netns=ct.name)
    out = net.runner(ct).add(net.conf(macspoofchk=True))
    assert not out.ok
    assert out.error["code"] == 999
    assert out.error["msg"] == f"interface eth0 already exists in netns {ct.path}"
    assert veths_on(net.brname) == []
    assert net.reservations() == []
    assert "macspoofchk" not in nft_ruleset()
    assert links(ct.name)["eth0"]["linkinfo"]["info_kind"] == "veth"  # untouched


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_bridge_address_conflict_after_veth_and_ipam(net, netns_factory, backend):
    ip("link", "add", net.brname, "type", "bridge")
    ip("addr", "add", "198.18.99.1/24", "dev", net.brname)
    ct = netns_factory()
    conf = net.conf(isGateway=True, macspoofchk=True, ipMasq=True, ipMasqBackend=backend)
    out = net.runner(ct).add(conf)
    assert not out.ok
    assert out.error["code"] == 999
    assert (
        f'"{net.brname}" already has an IP address different from 198.18.5.1/24' in out.error["msg"]
    )
    assert_nothing_left(net, ct)
    assert ip("-4", "-o", "addr", "show", "dev", net.brname).count("198.18.99.1/24") == 1


def test_missing_netns(net):
    out = net.run("ADD", net.conf(), netns="/run/netns/pyc-not-there")
    assert not out.ok
    assert out.error["code"] == 8
    assert "/run/netns/pyc-not-there" in out.error["msg"]
    assert net.reservations() == []


def test_failure_after_masquerade_rolls_everything_back(net, netns_factory, monkeypatch):
    """In-process ADD with the last step (the bridge-port wait) failing: the
    veth pair, the IPAM reservation, the masquerade rules of both families
    and the spoof-check rules are all removed again."""
    from pycni.plugins.main.bridge import add as bridge_add
    from pycni.plugins.main.bridge import verbs as bridge
    from pycni.spec.errors import CNIError

    ct = netns_factory()
    conf = net.conf(
        subnets=("198.18.11.0/24", "fd00:18:11::/64"),
        isGateway=True,
        ipMasq=True,
        ipMasqBackend="nftables",
        macspoofchk=True,
    )

    def broken(host, name):
        assert "masquerade comment" in nft_ruleset()
        assert "macspoofchk-ctr-roll-eth0" in nft_ruleset()
        raise CNIError(999, "injected failure after everything was set up")

    monkeypatch.setattr(bridge_add, "wait_port_up", broken)
    with pytest.raises(CNIError, match="injected failure"):
        net.add_in_process(bridge, ct, conf, "ctr-roll", monkeypatch)
    assert_nothing_left(net, ct)

    # and the same with the iptables backend
    conf["ipMasqBackend"] = "iptables"

    def broken_ipt(host, name):
        assert format_chain_name(net.name, "ctr-roll") in iptables_save()
        assert format_chain_name(net.name, "ctr-roll") in iptables_save(v6=True)
        raise CNIError(999, "injected failure after everything was set up")

    monkeypatch.setattr(bridge_add, "wait_port_up", broken_ipt)
    with pytest.raises(CNIError, match="injected failure"):
        net.add_in_process(bridge, ct, conf, "ctr-roll", monkeypatch)
    assert_nothing_left(net, ct)


# --- config errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"hairpinMode": True, "promiscMode": True},
            "cannot set hairpin mode and promiscuous mode at the same time",
        ),
        (
            {"disableContainerInterface": True},
            "cannot use IPAM when DisableContainerInterface flag is set",
        ),
        ({"vlan": 4095}, "invalid VLAN ID 4095 (must be between 0 and 4094)"),
        ({"vlan": -1}, "invalid VLAN ID -1 (must be between 0 and 4094)"),
        ({"isGateway": "true"}, '"isGateway": cannot unmarshal string into Go value of type bool'),
        ({"mtu": "1500"}, '"mtu": cannot unmarshal string into Go value of type int'),
        ({"mtu": 1500.5}, '"mtu": cannot unmarshal number 1500.5 into Go value of type int'),
        ({"mtu": -5}, 'invalid "mtu" -5'),
        ({"bridge": "name-that-is-too-long"}, "invalid \"bridge\" 'name-that-is-too-long'"),
        ({"bridge": ""}, "invalid \"bridge\" ''"),
        ({"ipMasqBackend": "ebtables"}, "invalid \"ipMasqBackend\" 'ebtables'"),
        (
            {"runtimeConfig": {"mac": "not-a-mac"}},
            "invalid MAC address 'not-a-mac' (from runtimeConfig.mac)",
        ),
        (
            {"args": {"cni": {"mac": "c2:11:22:33:44"}}},
            "invalid MAC address 'c2:11:22:33:44' (from args.cni.mac)",
        ),
        (
            {"vlanTrunk": [{"minID": 5}]},
            "minID and maxID should be configured simultaneously, maxID is missing",
        ),
        (
            {"vlanTrunk": "1-5"},
            '"vlanTrunk": cannot unmarshal string into Go value of type []interface {}',
        ),
    ],
)
def test_config_errors_are_code_7_and_touch_nothing(net, netns_factory, keys, message):
    ct = netns_factory()
    out = net.runner(ct).add(net.conf(**keys))
    assert not out.ok
    assert out.error["code"] == 7, out.error
    assert message in out.error["msg"], out.error
    assert net.brname not in links()
    assert net.reservations() == []


def test_unknown_cni_args_are_code_4(net, netns_factory):
    out = net.runner(netns_factory()).add(net.conf(), args="FOO=bar")
    assert not out.ok
    assert out.error["code"] == 4
    assert "unknown args" in out.error["msg"]


def test_ignore_unknown_cni_args(net, netns_factory):
    out = net.runner(netns_factory()).add(net.conf(l2=True), args="IgnoreUnknown=1;K8S_POD=x")
    assert out.ok, out


def test_del_succeeds_with_add_only_config_errors(net, netns_factory):
    """As in the reference, DEL does not re-check what only ADD uses."""
    out = net.runner(netns_factory()).delete(net.conf(hairpinMode=True, promiscMode=True))
    assert out.ok, out


def test_del_config_errors_are_reported(net, netns_factory):
    out = net.runner(netns_factory()).delete(net.conf(hairpinMode="yes"))
    assert not out.ok and out.error["code"] == 7


def test_existing_non_bridge_is_not_made_promiscuous(net, netns_factory):
    """`bridge` naming an existing non-bridge device fails before promisc is
    turned on, so the failed ADD leaves that device as it was."""
    ip("link", "add", net.brname, "type", "veth", "peer", "name", net.brname + "p")
    ct = netns_factory()
    out = net.runner(ct).add(net.conf(promiscMode=True))
    assert not out.ok
    assert out.error["msg"] == f'"{net.brname}" already exists but is not a bridge'
    assert "PROMISC" not in ip("link", "show", "dev", net.brname)
    assert "eth0" not in links(ct.name)
    assert net.reservations() == []
    ip("link", "del", net.brname)


# --- a failed ADD undoes only its own work (issue 6, item 1) -----------------------------


@pytest.mark.parametrize(
    ("spoofchk", "refusal"),
    [(False, "duplicate allocation"), (True, "chain cni-br-iface-ctr-c1-eth0 already exists")],
)
def test_failed_duplicate_add_keeps_the_live_attachment(net, netns_factory, spoofchk, refusal):
    conf = net.conf(subnets=("198.18.11.0/24",), macspoofchk=spoofchk)
    live, dup, nxt = netns_factory(), netns_factory(), netns_factory()
    first = ok(net.runner(live, container_id="ctr-c1").add(conf))
    assert first["ips"][0]["address"] == "198.18.11.2/24"
    out = net.runner(dup, container_id="ctr-c1").add(conf)
    assert not out.ok and refusal in out.error["msg"], out
    assert net.reservations() == ["198.18.11.2"]
    assert "eth0" not in links(dup.name)
    live_rules = spoofcheck.comment(spoofcheck.ref_id("ctr-c1", "eth0"))
    assert nft_ruleset().count(live_rules) == (4 if spoofchk else 0)  # the live one's stays
    assert ok(net.runner(nxt, container_id="ctr-c2").add(conf))["ips"][0]["address"] == (
        "198.18.11.3/24"
    )


def test_failed_add_of_a_held_ip_keeps_the_holders_address(net, netns_factory):
    conf = net.conf(subnets=("198.18.12.0/24",))
    holder, other = netns_factory(), netns_factory()
    ok(net.runner(holder, container_id="ctr-holder").add(conf))
    out = net.runner(other, container_id="ctr-holder").add(conf, args="IP=198.18.12.2")
    assert not out.ok, out
    out = net.runner(other, container_id="ctr-other").add(conf, args="IP=198.18.12.2")
    assert not out.ok and "198.18.12.2" in out.error["msg"], out
    assert net.reservations() == ["198.18.12.2"]
    assert veths_on(net.brname) and len(veths_on(net.brname)) == 1


@pytest.mark.parametrize(
    ("raw_name", "problem"),
    [
        (b'"br\\u0000x"', "NUL character"),
        (b'"br\\ud800"', "lone surrogate"),
        (b'"br\\u0000"', "NUL character"),
    ],
)
def test_interface_names_that_the_kernel_would_mangle_are_refused(
    net, netns_factory, raw_name, problem
):
    ct = netns_factory()
    conf = json.dumps(net.conf()).encode().replace(json.dumps(net.brname).encode(), raw_name)
    out = net.runner(ct).add(conf)
    assert not out.ok and out.error["code"] == 7, out
    assert problem in out.error["msg"] and '"bridge"' in out.error["msg"]
    assert set(links()) == {"lo"}
    assert "eth0" not in links(ct.name)
    assert net.reservations() == []


@pytest.mark.parametrize(("key", "value"), [("priority", 2**32), ("table", -1), ("scope", 300)])
def test_out_of_range_route_from_any_ipam_is_a_config_error(
    net, netns_factory, tmp_path, key, value
):
    """Issue 6, item 8: an IPAM result the kernel cannot take (here from a
    foreign IPAM plugin) fails naming the key, not with a struct error."""
    result = {
        "cniVersion": "1.0.0",
        "ips": [{"address": "198.18.15.2/24", "gateway": "198.18.15.1"}],
        "routes": [{"dst": "198.19.0.0/16", key: value}],
    }
    ipam_bin = tmp_path / "fakeipam-bin"
    ipam_bin.mkdir()
    fake = ipam_bin / "fakeipam"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$CNI_COMMAND" = ADD ] && cat <<"EOF"\n' + json.dumps(result) + "\nEOF\nexit 0\n"
    )
    fake.chmod(0o755)
    ct = netns_factory()
    runner = net.runner(ct)
    out = runner.add(net.conf(ipam={"type": "fakeipam"}), path=[str(ipam_bin)])
    assert not out.ok and out.error["code"] == 7, out
    assert f'"{key}" {value} is out of range' in out.error["msg"]
    assert "eth0" not in links(ct.name) and veths_on(net.brname) == []
