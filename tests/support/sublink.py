"""Helpers of the macvlan, ipvlan and vlan plugin tests: a sandbox uplink to
stack links on, configs, and the kernel state the differential tests compare."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from pycni.skel.testing import run_plugin

from support.sandbox import in_netns, ip, ip_json

PLUGINS = {
    "macvlan": "pycni.plugins.main.macvlan",
    "ipvlan": "pycni.plugins.main.ipvlan",
    "vlan": "pycni.plugins.main.vlan",
}
UPLINK = "mvup0"  # in the sandbox host netns; its peer mvup1 stays there too
UPLINK_PEER = "mvup1"
UPLINK_ADDR = "198.18.40.1/24"
UPLINK_GW = "198.18.40.254"


def make_uplink(netns: str | None = None, mtu: int = 1500, default_route: bool = True) -> None:
    """A veth pair in `netns` (None: the calling thread's), up, with an
    address and (optionally) the default route through it."""
    ip(
        "link",
        "add",
        UPLINK,
        "mtu",
        str(mtu),
        "type",
        "veth",
        "peer",
        "name",
        UPLINK_PEER,
        netns=netns,
    )
    ip("link", "set", UPLINK, "up", netns=netns)
    ip("link", "set", UPLINK_PEER, "up", netns=netns)
    ip("addr", "add", UPLINK_ADDR, "dev", UPLINK, netns=netns)
    if default_route:
        ip("route", "add", "default", "via", UPLINK_GW, "dev", UPLINK, netns=netns)


def conf(
    kind: str,
    data_dir: Path | None,
    cni_version: str = "1.0.0",
    subnets=("198.18.41.0/24",),
    l2: bool = False,
    name: str | None = None,
    ipam_extra: dict | None = None,
    **keys,
) -> dict:
    c: dict = {
        "cniVersion": cni_version,
        "name": name or "mvnet-" + secrets.token_hex(3),
        "type": kind,
    }
    if l2:
        c["ipam"] = {}
    else:
        c["ipam"] = {
            "type": "host-local",
            "dataDir": str(data_dir),
            "ranges": [[{"subnet": s}] for s in subnets],
            **(ipam_extra or {}),
        }
    c.update(keys)
    return c


def run(kind: str, command: str, c, ct=None, **kw):
    if ct is not None:
        kw.setdefault("netns", ct.path)
    return run_plugin(PLUGINS[kind], command, c, **kw)


def links(netns: str | None = None) -> dict[str, dict]:
    return {link["ifname"]: link for link in ip_json("-d", "link", "show", netns=netns)}


def sysctl_in(netns: str, name: str) -> str:
    proc = in_netns(netns, "cat", "/proc/sys/" + name, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "<missing>"


# --- state snapshots for the differential tests --------------------------------------

CONTAINER_SYSCTLS = (
    "net/ipv4/conf/{}/arp_notify",
    "net/ipv6/conf/{}/disable_ipv6",
    "net/ipv6/conf/lo/disable_ipv6",
)


def _link_state(link: dict, macs: dict) -> dict:
    info = link.get("linkinfo", {})
    data = info.get("info_data") or {}
    entry = {
        "kind": info.get("info_kind"),
        "flags": sorted(link.get("flags", [])),
        "mtu": link.get("mtu"),
        "operstate": link.get("operstate"),
        "promiscuity": link.get("promiscuity"),
        "link": link.get("link"),
        "mac": link.get("address") if link.get("address") in macs else "<random>",
        "addrs": [],
    }
    for key in ("mode", "flags", "id", "protocol", "bcqueuelen"):
        if key in data:
            entry["data_" + key] = data[key]
    return entry


def _links_state(netns: str | None, macs: dict) -> dict:
    out = {}
    for link in ip_json("-d", "link", "show", netns=netns):
        name = link["ifname"]
        if name.startswith("veth") and len(name) == 12:
            name = "veth*"
        out[name] = _link_state(link, macs)
    for entry in ip_json("addr", "show", netns=netns):
        name = entry["ifname"]
        for a in entry.get("addr_info", []):
            if a.get("scope") == "link":
                rec = f"{a['family']} link-local/{a['prefixlen']}"
            else:
                rec = f"{a['local']}/{a['prefixlen']} scope {a.get('scope')}"
            out[name]["addrs"].append(rec)
    for e in out.values():
        e["addrs"].sort()
    return out


def _routes_state(netns: str | None) -> list[str]:
    """support.bridge's route lines (no link here is a bridge)."""
    from support.bridge import _routes_state as routes_state

    return routes_state(netns, "-no-bridge-")


def snapshot(ct_name: str, ifname: str = "eth0", fixed_macs=()) -> dict:
    """Links (kind, mode, flags, MTU, parent, MAC if it was asked for,
    addresses) and routes in the sandbox host netns the thread is in and in
    the container netns, and the container sysctls the plugins touch."""
    macs = {m: m for m in fixed_macs}
    state = {
        "host": _links_state(None, macs),
        "host_routes": _routes_state(None),
        "ct": _links_state(ct_name, macs),
        "ct_routes": _routes_state(ct_name),
    }
    state["sysctls"] = {
        t.format(ifname): sysctl_in(ct_name, t.format(ifname)) for t in CONTAINER_SYSCTLS
    }
    return state


def normalize_result(res: dict | None, ct_path: str, fixed_macs=()) -> dict | None:
    """A result with the container's random MAC and netns path replaced, and
    an empty "dns" dropped (Go prints "dns": {} for 1.x results)."""
    if res is None:
        return None
    res = json.loads(json.dumps(res).replace(ct_path, "<netns>"))
    for intf in res.get("interfaces", []):
        if intf.get("mac") and intf["mac"] not in fixed_macs:
            intf["mac"] = "<mac>"
    if res.get("dns") == {}:
        del res["dns"]
    return res


# --- a stand-in for RtNetlink: the plugins' logic without the kernel -----------------


class FakeNl:
    """Enough of RtNetlink for pkg.sublink: links by name and index, routes,
    and every RTM_NEWLINK link_add would send (`sent`, via iplink_bytes).
    `fail` maps an operation ("link_add", "link_set", ...) to the
    NetlinkError it raises; `target` is where created links appear (the
    container's FakeNl when links are created "in" another netns)."""

    def __init__(self, links_=(), routes=(), fail=None, target=None) -> None:
        self.links = {link.name: link for link in links_}
        self.routes = list(routes)
        self.fail = dict(fail or {})
        self.target = target if target is not None else self
        self.sent: list[bytes] = []
        self.calls: list[tuple] = []
        self.closed = False

    def _maybe_fail(self, op: str) -> None:
        err = self.fail.get(op)
        if err is not None:
            raise err

    def link_get(self, name=None, index=None):
        from pycni.kernel.netlink import LinkNotFound

        self.calls.append(("link_get", name or index))
        for link in self.links.values():
            if (name and link.name == name) or (index and link.index == index):
                return link
        raise LinkNotFound(op=f"get link {name or index}")

    def link_find(self, name):
        from pycni.kernel.netlink import LinkNotFound

        try:
            return self.link_get(name)
        except LinkNotFound:
            return None

    def link_add(self, kind, name, **kw):
        from pycni.kernel import link as kl

        from support.iplink_bytes import sent_by

        self.calls.append(("link_add", kind, name))
        ((_, payload),) = sent_by(lambda s: kl.link_add(s, kind, name, **kw))
        self.sent.append(payload)
        self._maybe_fail("link_add")
        made = make_link(
            name,
            kind=kind,
            index=100 + len(self.target.links),
            mtu=kw.get("mtu") or 1500,
            mac=kw.get("mac") or "02:00:00:00:00:01",
        )
        self.target.links[name] = made

    def link_set(self, link, name=None, up=None, **kw):
        self.calls.append(("link_set", link.name, name, up))
        self._maybe_fail("link_set")
        if name is not None:
            if name in self.links:
                import errno

                from pycni.kernel.netlink import NetlinkError

                raise NetlinkError(errno.EEXIST, f"set link {link.name}")
            del self.links[link.name]
            link.name = name
            self.links[name] = link
        if up:
            link.flags |= 1

    def link_del(self, name):
        from pycni.kernel.netlink import LinkNotFound

        self.calls.append(("link_del", name))
        self._maybe_fail("link_del")
        name = getattr(name, "name", name)
        if name not in self.links:
            raise LinkNotFound(op=f"delete link {name}")
        del self.links[name]

    def route_list(self, family=0):
        return list(self.routes)

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_link(name, kind="", index=2, mtu=1500, mac="02:00:00:00:00:02", type_=1, flags=0):
    from pycni.kernel.link import Link

    link = Link()
    link.name, link.kind, link.index, link.mtu, link.mac = name, kind, index, mtu, mac
    link.type, link.flags = type_, flags
    return link


def make_route(dst, oif):
    from pycni.kernel.route import Route

    r = Route()
    r.dst, r.oif = dst, oif
    return r


def fixture_request(name: str) -> tuple[bytes, int]:
    """A captured iproute2 RTM_NEWLINK and the parent ifindex in it."""
    import struct

    from support.iplink_bytes import attrs, load

    payload = load(name)
    return payload, struct.unpack("=I", attrs(payload)[5])[0]


def canon(payload: bytes) -> tuple:
    """iplink_bytes.canonical with IFLA_NET_NS_FD's value (an fd number of
    whichever process sent it) blanked."""
    from support.iplink_bytes import canonical

    head, items = canonical(payload)
    return head, tuple((t, "<fd>" if t == 28 else v) for t, v in items)


def sent_by_create(kind: str, conf, fixture: str, monkeypatch, mac: str = "") -> tuple:
    """(ours, iproute2's) canonical RTM_NEWLINK for `conf`, created by
    pkg.sublink.create on a master with the fixture's parent ifindex, under
    the fixture's name (mvtmp0)."""
    from pycni.plugins.pkg import sublink
    from pycni.plugins.pkg.transaction import Undo

    payload, parent = fixture_request(fixture)
    monkeypatch.setattr(sublink, "random_tmp_name", lambda: "mvtmp0")
    ctr = FakeNl()
    host = FakeNl(target=ctr)
    master = make_link("mvp0", index=parent)
    conf.master = "mvp0"
    sublink.create(
        kind, conf.info_data(), conf, master, "/proc/self/ns/net", "eth0", host, ctr, Undo(), mac
    )
    (ours,) = host.sent
    return canon(ours), canon(payload)


def fake_env(monkeypatch, host: FakeNl, ctr: FakeNl) -> list:
    """Route pkg.sublink's sockets to the fakes; ConfigureIface, the
    container sysctls and IPAM are recorded (returned list) instead of run."""
    from pycni.plugins.pkg import sublink
    from pycni.spec.result import IPConfig, Result

    calls: list = []

    def open_netlink(netns=None):
        return host if netns is None else ctr

    def add_and_configure(args, ipam_type, result, ctr_nl, undo, before_configure):
        calls.append(("ipam_add", ipam_type))
        undo.push("release", lambda: calls.append(("ipam_del", ipam_type)))
        if ipam_type == "failing":
            from pycni.spec.errors import CNIError

            raise CNIError(11, "IPAM says no")
        ipam = Result(ips=[IPConfig("198.18.41.2/24", "198.18.41.1")])
        result.ips = ipam.ips
        before_configure(result)
        calls.append(("configure", args.ifname, [(i.address, i.interface) for i in result.ips]))

    monkeypatch.setattr(sublink, "open_netlink", open_netlink)
    monkeypatch.setattr(sublink, "add_and_configure", add_and_configure)
    monkeypatch.setattr(
        sublink,
        "configure_iface",
        lambda nl, netns, ifname, result: calls.append(
            ("configure", ifname, [(i.address, i.interface) for i in result.ips])
        ),
    )
    monkeypatch.setattr(
        sublink, "container_sysctls", lambda netns, writes: calls.append(("sysctls", writes))
    )
    monkeypatch.setattr(sublink, "ipam_del", lambda t, stdin: calls.append(("ipam_del", t)))
    return calls


def cmd(
    module,
    verb: str,
    conf: dict,
    netns: str = "/proc/self/ns/net",
    ifname: str = "eth0",
    args: str = "",
):
    """Run `module.cmd_<verb>` in-process (with fake_env in place)."""
    import json

    from pycni.skel import CmdArgs

    a = CmdArgs(
        verb.upper(), "mv-ctr", netns, ifname, args, ["/nonexistent"], json.dumps(conf).encode()
    )
    return getattr(module, "cmd_" + verb)(a)


def lifecycle_or_skip(kind: str, c: dict, ct, data_dir: Path, cni_path: list[str], config: str):
    """ADD, CHECK, DEL twice of `kind` in `ct` (its eth0 after ADD is
    returned, for the caller's own look). A kernel without `kind` links
    (lacking `config`, as CONFIG_IPVLAN) must fail the ADD with an error
    naming it and keep nothing (links, reservations); DEL still succeeds;
    the test then skips with that reason."""
    import pytest

    from support.cni import reservations
    from support.outcomes import err, ok

    out = run(kind, "ADD", c, ct, path=cni_path)
    if not out.ok:
        _, msg = err(out)
        assert f"this kernel has no {kind} support ({config})" in msg, msg
        assert sorted(links(ct.name)) == ["lo"]
        assert not [n for n in links() if n.startswith("veth")]
        assert reservations(data_dir, c["name"]) == []
        ok(run(kind, "DEL", c, ct, path=cni_path))
        pytest.skip(f"kernel refuses {kind}: {msg}")
    eth0 = links(ct.name)["eth0"]
    assert eth0["linkinfo"]["info_kind"] == kind
    ok(run(kind, "CHECK", {**c, "prevResult": out.json}, ct, path=cni_path))
    ok(run(kind, "DEL", c, ct, path=cni_path))
    ok(run(kind, "DEL", c, ct, path=cni_path))
    assert sorted(links(ct.name)) == ["lo"]
    assert reservations(data_dir, c["name"]) == []
    return eth0
