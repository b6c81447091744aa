"""A failed ptp ADD leaves nothing behind; bad input is a CNI error code 7
naming the key, found before anything is touched."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pycni.netfilter.names import format_chain_name

from support.bridge import links
from support.outcomes import err, ok
from support.ptp import host_veths, no_rules_left, routes_of
from support.sandbox import ip, iptables_save, nft_ruleset

FAKE_IPAM = """#!{python}
import json, os, sys
conf = json.load(sys.stdin)
with open({log!r}, "a") as f:
    f.write(os.environ["CNI_COMMAND"] + "\\n")
if os.environ["CNI_COMMAND"] == "ADD":
    print(json.dumps({{"cniVersion": conf["cniVersion"], "ips": {ips}}}))
"""


def fake_ipam(tmp_path: Path, ips: list[dict]) -> tuple[list[str], Path]:
    """A CNI_PATH whose `fake-ipam` answers ADD with `ips` and logs each verb."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    log = tmp_path / "fake-ipam.log"
    script = bindir / "fake-ipam"
    script.write_text(FAKE_IPAM.format(python=sys.executable, log=str(log), ips=repr(ips)))
    script.chmod(0o755)
    return [str(bindir)], log


def assert_nothing_left(net, ct, reservations=()):
    assert "eth0" not in links(ct.name)
    assert host_veths() == []
    assert routes_of(None) == [] and routes_of(None, "-6") == []
    assert net.reservations() == sorted(reservations)
    assert no_rules_left()


# --- failures halfway through ADD -------------------------------------------------------


def test_ipam_exhausted_leaves_the_first_container_alone(net, netns_factory):
    conf = net.conf(subnets=("198.18.8.0/30",), ipMasq=True)
    first, second = netns_factory(), netns_factory()
    ok(net.runner(first, container_id="ctr-first").add(conf))
    _code, msg = err(net.runner(second, container_id="ctr-second").add(conf))
    assert "no IP addresses available" in msg
    assert "eth0" not in links(second.name)
    assert len(host_veths()) == 1
    assert net.reservations() == ["198.18.8.2"]
    assert "ip saddr 198.18.8.2 " in nft_ruleset()
    ok(net.runner(first, container_id="ctr-first").delete(conf))
    assert_nothing_left(net, first)


def test_interface_name_taken_releases_the_address(net, netns_factory):
    ct = netns_factory()
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0", netns=ct.name)
    code, msg = err(net.runner(ct).add(net.conf()))
    assert (code, msg) == (999, f"interface eth0 already exists in netns {ct.path}")
    assert host_veths() == []
    assert net.reservations() == []
    assert links(ct.name)["eth0"]["linkinfo"]["info_kind"] == "veth"  # untouched


def test_missing_netns_reserves_nothing(net):
    code, msg = err(net.run("ADD", net.conf(), netns="/run/netns/pt-not-there"))
    assert code == 8 and "/run/netns/pt-not-there" in msg
    assert net.reservations() == []


def test_ipam_result_without_gateway(net, netns_factory, tmp_path):
    path, log = fake_ipam(tmp_path, [{"address": "198.18.9.5/24"}])
    ct = netns_factory()
    conf = net.conf(ipam={"type": "fake-ipam"})
    code, msg = err(net.runner(ct).add(conf, path=path))
    assert code == 7
    assert "no gateway for 198.18.9.5/24" in msg
    assert log.read_text().split() == ["ADD", "DEL"]  # the address was given back
    assert_nothing_left(net, ct)


def test_failing_step_after_masquerade_rolls_everything_back(
    net, netns_factory, monkeypatch, tmp_path
):
    """In-process ADD whose last step fails after it did its work: the veth
    pair (host address and route with it), the IPAM reservation and the
    masquerade rules of both families, in either backend, are removed."""
    from pycni.plugins.main.ptp import verbs as ptp
    from pycni.plugins.pkg import masquerade
    from pycni.spec.errors import CNIError

    ct = netns_factory()
    real_setup = masquerade.setup

    def setup_then_fail(addrs, network, ifname, cid, backend):
        real_setup(addrs, network, ifname, cid, backend)
        assert " dev veth" in " ".join(routes_of(None))  # the host route exists
        if backend == "iptables":
            assert format_chain_name(net.name, cid) in iptables_save()
            assert format_chain_name(net.name, cid) in iptables_save(v6=True)
        else:
            assert "masquerade comment" in nft_ruleset()
        raise masquerade.MasqError("injected failure after the rules were added")

    monkeypatch.setattr(ptp.masquerade, "setup", setup_then_fail)
    for backend in ("nftables", "iptables"):
        conf = net.conf(
            subnets=("198.18.10.0/24", "fd00:18:10::/64"), ipMasq=True, ipMasqBackend=backend
        )
        with pytest.raises(CNIError, match="injected failure"):
            net.add_in_process(ptp, ct, conf, "ctr-roll", monkeypatch)
        assert_nothing_left(net, ct)


def test_failing_host_route_rolls_back(net, netns_factory, monkeypatch):
    """A kernel step failing in the middle (the host route) undoes the veth and IPAM."""
    from pycni.kernel.netlink import NetlinkError
    from pycni.plugins.main.ptp import add as ptp_add
    from pycni.plugins.main.ptp import links as ptp_links
    from pycni.plugins.main.ptp import verbs as ptp
    from pycni.spec.errors import CNIError

    def broken(host_nl, name, result):
        raise ptp_links.kernel_error("failed to add route on host", NetlinkError(22, "add route"))

    monkeypatch.setattr(ptp_add, "setup_host_veth", broken)
    ct = netns_factory()
    with pytest.raises(CNIError, match="failed to add route on host"):
        net.add_in_process(ptp, ct, net.conf(), "ctr-hostroute", monkeypatch)
    assert_nothing_left(net, ct)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"ipMasq": "true"}, '"ipMasq": cannot unmarshal string into Go value of type bool'),
        ({"mtu": "1500"}, '"mtu": cannot unmarshal string into Go value of type int'),
        ({"mtu": 1500.5}, '"mtu": cannot unmarshal number 1500.5 into Go value of type int'),
        ({"mtu": -5}, 'invalid "mtu" -5'),
        ({"mtu": 70000}, 'invalid "mtu" 70000'),
        ({"ipMasqBackend": "ebtables"}, "invalid \"ipMasqBackend\" 'ebtables'"),
        ({"ipMasqBackend": 1}, '"ipMasqBackend": cannot unmarshal number into Go value'),
        ({"ipam": None}, '"ipam.type" is missing'),
        ({"ipam": {}}, '"ipam.type" is missing'),
        ({"ipam": {"type": 5}}, '"ipam.type": cannot unmarshal'),
        ({"ipam": "host-local"}, '"ipam": cannot unmarshal string'),
        ({"dns": {"nameservers": "198.18.0.53"}}, '"nameservers": cannot unmarshal string'),
    ],
)
def test_config_errors_are_code_7_and_touch_nothing(net, netns_factory, keys, message):
    ct = netns_factory()
    conf = net.conf()
    conf.update(keys)
    code, msg = err(net.runner(ct).add(conf))
    assert code == 7, msg
    assert message in msg
    assert_nothing_left(net, ct)
