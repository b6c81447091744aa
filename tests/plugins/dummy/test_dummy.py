"""The dummy plugin. This kernel has no dummy links: the message we send is
held against what `ip link add NAME type dummy` sends (a fixture captured
with support.iplink_bytes), the logic runs against a fake netlink, and the
kernel tests that need a dummy link skip saying why."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from pycni.kernel import link as kl
from pycni.kernel.netlink import NetlinkError
from pycni.plugins.main.dummy import verbs
from pycni.skel.testing import run_plugin
from pycni.spec.errors import CNIError

from support.iplink_bytes import canonical, load, sent_by
from support.outcomes import err, ok
from support.sandbox import ip_json

# plugins run from a sandbox host netns: a mistake cannot touch the real one
pytestmark = pytest.mark.usefixtures("host_ns")

PLUGIN = "pycni.plugins.main.dummy"


def test_create_message_is_iproute2s():
    sent = sent_by(lambda s: kl.link_add(s, "dummy", "hddum0"))
    assert len(sent) == 1
    assert canonical(sent[0][1]) == canonical(load("dummy"))


class FakeNetlink:
    """Just enough of RtNetlink for create_dummy/check_link."""

    def __init__(self, fail: int = 0, link=None) -> None:
        self.fail = fail
        self.links: dict = {}
        self.made: list[str] = []
        if link is not None:
            self.links[link.name] = link

    def link_add(self, kind, name, **kw):
        if self.fail:
            raise NetlinkError(self.fail, f"add link {name}", None, "Unknown device type")
        self.made.append(kind)
        link = kl.Link()
        link.name, link.kind, link.mac = name, kind, "02:00:00:00:00:01"
        self.links[name] = link

    def link_get(self, name):
        return self.links[name]

    def link_find(self, name):
        return self.links.get(name)


def test_create_returns_the_container_interface():
    nl = FakeNetlink()
    intf = verbs.create_dummy(nl, "/run/netns/x", "eth1")
    assert nl.made == ["dummy"]
    assert (intf.name, intf.mac, intf.sandbox) == ("eth1", "02:00:00:00:00:01", "/run/netns/x")


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.ENOTSUP])
def test_missing_kernel_support_is_named(code):
    with pytest.raises(CNIError) as e:
        verbs.create_dummy(FakeNetlink(fail=code), "/run/netns/x", "eth1")
    assert "CONFIG_DUMMY" in e.value.msg and "Unknown device type" in e.value.details


def test_a_taken_name_is_said_so():
    with pytest.raises(CNIError) as e:
        verbs.create_dummy(FakeNetlink(fail=errno.EEXIST), "/run/netns/x", "eth1")
    assert "already exists" in e.value.msg


@pytest.mark.parametrize(
    "kind,mac,up,words",
    [
        ("veth", "02:00:00:00:00:01", True, "not of type dummy"),
        ("dummy", "02:00:00:00:00:02", True, "doesn't match"),
        ("dummy", "02:00:00:00:00:01", False, "is down"),
    ],
)
def test_check_link(kind, mac, up, words):
    from pycni.spec.result import Interface

    link = kl.Link()
    link.name, link.kind, link.mac, link.flags = "eth1", kind, mac, kl.IFF_UP if up else 0
    with pytest.raises(CNIError) as e:
        verbs.check_link(FakeNetlink(link=link), Interface("eth1", "02:00:00:00:00:01", "/x"))
    assert words in e.value.msg


def conf(tmp_path: Path, ipam: bool = True) -> dict:
    c: dict = {"cniVersion": "1.0.0", "name": "hddum", "type": "dummy"}
    if ipam:
        c["ipam"] = {"type": "host-local", "subnet": "198.18.41.0/24", "dataDir": str(tmp_path)}
    return c


def run(command: str, c: dict, netns: str):
    return run_plugin(PLUGIN, command, c, netns=netns, ifname="eth1", path=["/usr/lib/cni"])


def reservations(tmp_path: Path) -> list[str]:
    folder = tmp_path / "hddum"
    return (
        sorted(p.name for p in folder.iterdir() if p.name[0].isdigit()) if folder.is_dir() else []
    )


def kernel_has_dummy(ns) -> bool:
    from support.sandbox import ip

    try:
        ip("link", "add", "hdprobe0", "type", "dummy", netns=ns.name)
    except RuntimeError:
        return False
    ip("link", "del", "hdprobe0", netns=ns.name)
    return True


def test_ipam_is_required(container_ns, tmp_path):
    code, msg = err(run("ADD", conf(tmp_path, ipam=False), container_ns.path))
    assert code == 7 and msg == "dummy interface requires an IPAM configuration"


def test_without_kernel_support_add_fails_naming_it_and_leaves_nothing(container_ns, tmp_path):
    if kernel_has_dummy(container_ns):
        pytest.skip("this kernel has dummy links")
    _code, msg = err(run("ADD", conf(tmp_path), container_ns.path))
    assert "CONFIG_DUMMY" in msg
    assert reservations(tmp_path) == []
    assert [link["ifname"] for link in ip_json("link", netns=container_ns.name)] == ["lo"]


def test_del_succeeds_without_link_netns_or_twice(container_ns, netns_factory, tmp_path):
    ok(run("DEL", conf(tmp_path), container_ns.path))
    ok(run("DEL", conf(tmp_path), container_ns.path))
    gone = netns_factory("gone")
    gone.close()
    ok(run("DEL", conf(tmp_path), gone.path))
    ok(run("DEL", conf(tmp_path), ""))


def test_lifecycle_on_a_kernel_with_dummy_links(container_ns, tmp_path):
    if not kernel_has_dummy(container_ns):
        pytest.skip("this kernel lacks dummy links (CONFIG_DUMMY): `ip link add type dummy` fails")
    c = conf(tmp_path)
    add = ok(run("ADD", c, container_ns.path))
    assert add["interfaces"][0]["name"] == "eth1" and add["ips"][0]["interface"] == 0
    link = ip_json("-d", "link", "show", "eth1", netns=container_ns.name)[0]
    assert link["linkinfo"]["info_kind"] == "dummy" and "UP" in link["flags"]
    ok(run("CHECK", {**c, "prevResult": add}, container_ns.path))
    ok(run("DEL", c, container_ns.path))
    assert reservations(tmp_path) == []
    assert json.dumps(ip_json("link", netns=container_ns.name)).count("eth1") == 0
