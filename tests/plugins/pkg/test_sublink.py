"""pkg.sublink, the story macvlan, ipvlan and vlan share, against a fake
netlink: the default-route master, parent checks, the kernel's refusals
worded for the user, DEL's tolerance; and the three configs under hostile
input (a CNIError, never a crash)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.kernel.link import IFF_LOOPBACK
from pycni.kernel.netlink import NetlinkError
from pycni.plugins.main.ipvlan import conf as ipvlan_conf
from pycni.plugins.main.macvlan import conf as macvlan_conf
from pycni.plugins.main.vlan import conf as vlan_conf
from pycni.plugins.pkg import sublink
from pycni.plugins.pkg.netns import NetnsGone
from pycni.spec.errors import ERR_INTERNAL, ERR_INVALID_NETWORK_CONFIG, CNIError

from support.fuzz import json_values
from support.sublink import FakeNl, make_link, make_route


def test_default_route_interface_is_the_first_default_route():
    nl = FakeNl(
        [make_link("a", index=2), make_link("b", index=3)],
        routes=[make_route("198.18.0.0/24", 2), make_route(None, 0), make_route(None, 3)],
    )
    assert sublink.default_route_interface(nl, "the host netns") == "b"


def test_no_default_route_is_code_7():
    nl = FakeNl([make_link("a", index=2)], routes=[make_route("198.18.0.0/24", 2)])
    with pytest.raises(CNIError) as e:
        sublink.default_route_interface(nl, "the host netns")
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert "no default route interface found in the host netns" in e.value.msg


def _conf(**keys):
    return sublink.SubLinkConf({"cniVersion": "1.0.0", "name": "n", **keys})


def test_resolve_master_sets_the_default():
    nl = FakeNl([make_link("up", index=4, mtu=9000)], routes=[make_route(None, 4)])
    conf = _conf(mtu=9000)
    assert sublink.resolve_master(conf, "/x", nl, "macvlan").index == 4
    assert conf.master == "up"


@pytest.mark.parametrize(
    "link, needle",
    [
        (make_link("lo", index=1, flags=IFF_LOOPBACK, type_=772), "loopback"),
        (make_link("tun0", index=5, type_=65534), "not an Ethernet device (link type 65534)"),
    ],
)
def test_unusable_parents(link, needle):
    with pytest.raises(CNIError) as e:
        sublink.resolve_master(_conf(master=link.name), "/x", FakeNl([link]), "vlan")
    assert e.value.code == ERR_INVALID_NETWORK_CONFIG
    assert needle in e.value.msg


def test_master_in_container_is_named_as_such():
    conf = _conf(master="mvx", linkInContainer=True)
    with pytest.raises(CNIError) as e:
        sublink.resolve_master(conf, "/run/netns/c1", FakeNl(), "macvlan")
    assert "no such interface in the container netns /run/netns/c1" in e.value.msg


@pytest.mark.parametrize(
    "err, code, needle",
    [
        (errno.EOPNOTSUPP, ERR_INTERNAL, "this kernel has no vlan support (CONFIG_VLAN_8021Q)"),
        (errno.EADDRNOTAVAIL, ERR_INVALID_NETWORK_CONFIG, "refused the MAC address"),
        (errno.EINVAL, ERR_INTERNAL, "is 'up' a usable parent for vlan?"),
        (errno.ENOMEM, ERR_INTERNAL, "failed to create vlan: add link: Cannot allocate memory"),
    ],
)
def test_creation_errors(err, code, needle):
    e = sublink.creation_error("vlan", "up", NetlinkError(err, "add link"))
    assert e.code == code
    assert needle in e.msg


def test_delete_tolerates_everything_gone(monkeypatch):
    sublink.delete("vlan", "", "eth0")  # no netns: nothing to do

    def gone(netns=None):
        raise NetnsGone(netns)

    monkeypatch.setattr(sublink, "open_netlink", gone)
    sublink.delete("vlan", "/run/netns/mv-gone", "eth0")
    ctr = FakeNl()
    monkeypatch.setattr(sublink, "open_netlink", lambda netns=None: ctr)
    sublink.delete("vlan", "/run/netns/mv-x", "eth0")  # link already gone
    assert ctr.closed


def test_delete_reports_other_kernel_errors(monkeypatch):
    ctr = FakeNl([make_link("eth0", index=3)], fail={"link_del": NetlinkError(errno.EBUSY, "x")})
    monkeypatch.setattr(sublink, "open_netlink", lambda netns=None: ctr)
    with pytest.raises(CNIError, match="failed to delete 'eth0' in netns /n"):
        sublink.delete("vlan", "/n", "eth0")


# --- hostile configs ------------------------------------------------------------------

KEYS = [
    "master",
    "mode",
    "mtu",
    "mac",
    "bcqueuelen",
    "linkInContainer",
    "flag",
    "vlanId",
    "ipam",
    "dns",
    "runtimeConfig",
    "Master",
    "MODE",
]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(KEYS),
        json_values(st.text(max_size=8), list_size=3, dict_size=3, max_leaves=8),
        max_size=6,
    )
)
def test_hostile_configs_are_cni_errors(conf):
    for decode in (
        lambda c: macvlan_conf.load(c, "", strict=True),
        lambda c: macvlan_conf.load(c, strict=False),
        lambda c: ipvlan_conf.load(c),
        lambda c: vlan_conf.load(c),
        lambda c: vlan_conf.load(c, for_add=False),
    ):
        try:
            decode(conf)
        except CNIError as err:
            assert err.code in (ERR_INVALID_NETWORK_CONFIG, 4), err


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_hostile_cni_args_mac(text):
    try:
        mac = macvlan_conf.requested_mac({}, f"MAC={text}")
    except CNIError as err:
        assert err.code in (ERR_INVALID_NETWORK_CONFIG, 4)
    else:
        assert mac == "" or len(mac) == 17
