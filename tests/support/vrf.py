"""A stand-in for RtNetlink with just enough kernel behaviour for the vrf
plugin's logic (this kernel has no VRF links): links with masters, IPv6
addresses, routes per table; enslaving a link to a VRF flushes its
main-table routes and (keep_addr_on_down off) its global IPv6 addresses,
as the kernel does; adding an IPv6 address to a VRF member adds its host
route to the VRF's table."""

from __future__ import annotations

import errno

from pycni.kernel.addr import Addr
from pycni.kernel.link import Link
from pycni.kernel.netlink import AF_INET, AF_INET6, LinkNotFound, NetlinkError
from pycni.kernel.route import Route
from pycni.spec.ipnet import IPNet

MAIN = 254


def route(dst, oif, table=MAIN, gateway=None, scope=0, family=None, prefsrc=None) -> Route:
    r = Route()
    r.dst, r.oif, r.table, r.gateway, r.scope, r.prefsrc = dst, oif, table, gateway, scope, prefsrc
    r.family = family or (AF_INET6 if ":" in (dst or gateway or "") else AF_INET)
    r.type = 1
    r.protocol = 3
    return r


class FakeNetlink:
    def __init__(self, vrf_supported: bool = True, keep_addr_on_down: bool = False) -> None:
        self.links: dict[int, Link] = {}
        self.addrs: list[Addr] = []
        self.routes: list[Route] = []
        self.vrf_supported = vrf_supported
        self.keep_addr_on_down = keep_addr_on_down
        self.calls: list[str] = []
        self.fail_on: str | None = None
        self._next = 1
        self.add_link("lo", "")

    # -- setup helpers --
    def add_link(self, name: str, kind: str = "veth", table: int | None = None) -> Link:
        link = Link()
        link.index, link.name, link.kind = self._next, name, kind
        if table is not None:
            link.data = {"table": table}
        self.links[link.index] = link
        self._next += 1
        return link

    def add_addr(self, index: int, cidr: str, scope: int = 0) -> None:
        n = IPNet.parse(cidr)
        a = Addr()
        a.index, a.address, a.prefixlen, a.scope = index, n.ip_str, n.prefixlen, scope
        a.family = AF_INET6 if n.family == 6 else AF_INET
        self.addrs.append(a)

    def by_name(self, name: str) -> Link | None:
        return next((link for link in self.links.values() if link.name == name), None)

    def _step(self, what: str) -> None:
        self.calls.append(what)
        if self.fail_on and what.startswith(self.fail_on):
            raise NetlinkError(errno.EINVAL, what)

    # -- the RtNetlink surface the plugin uses --
    def link_find(self, name: str) -> Link | None:
        return self.by_name(name)

    def link_get(self, name: str | None = None, index: int | None = None) -> Link:
        link = self.by_name(name) if name is not None else self.links.get(index or -1)
        if link is None:
            raise LinkNotFound(errno.ENODEV, f"get link {name or index}")
        return link

    def link_list(self) -> list[Link]:
        return list(self.links.values())

    def link_add(self, kind: str, name: str, data=None, **_kw) -> None:
        self._step(f"link_add {kind} {name}")
        if kind == "vrf" and not self.vrf_supported:
            raise NetlinkError(errno.EOPNOTSUPP, f"add link {name}", ext_msg="Unknown device type")
        if self.by_name(name):
            raise NetlinkError(errno.EEXIST, f"add link {name}")
        self.add_link(name, kind, (data or {}).get("table"))

    def link_set(self, link, up=None, master=None, **_kw) -> None:
        index = getattr(link, "index", link)
        obj = self.links[index]
        self._step(f"link_set {obj.name} up={up} master={master}")
        if up is not None:
            obj.flags = 1 if up else 0
        if master is not None:
            obj.master = master
            # the kernel cycles the link: routes flushed, v6 addresses dropped
            self.routes = [r for r in self.routes if not (r.oif == index and r.table == MAIN)]
            if master and not self.keep_addr_on_down:
                self.addrs = [
                    a
                    for a in self.addrs
                    if not (a.index == index and a.family == AF_INET6 and a.scope == 0)
                ]

    def link_del(self, link) -> None:
        found = self.by_name(link) if isinstance(link, str) else self.links.get(link.index)
        if found is None:
            raise LinkNotFound(errno.ENODEV, f"delete link {link}")
        index = found.index
        self._step(f"link_del {self.links[index].name}")
        del self.links[index]
        for other in self.links.values():
            if other.master == index:
                other.master = 0

    def addr_list(self, index=None, family: int = 0) -> list[Addr]:
        return [
            a
            for a in self.addrs
            if (index is None or a.index == index) and (not family or a.family == family)
        ]

    def addr_add(self, link, cidr: str, **_kw) -> None:
        index = getattr(link, "index", link)
        self._step(f"addr_add {cidr}")
        self.add_addr(index, cidr)
        master = self.links.get(self.links[index].master)
        if master is not None and master.kind == "vrf":
            ip = cidr.split("/")[0]
            self.routes.append(route(f"{ip}/128", index, master.data["table"], scope=254))

    def route_list(self, family: int = 0, table: int | None = None) -> list[Route]:
        want = MAIN if table is None else table
        return [
            r
            for r in self.routes
            if (not family or r.family == family) and (not want or r.table == want)
        ]

    def route_add(self, dst, *, table=None, replace=False, **kw) -> None:
        self._step(f"route_add {dst} table {table} replace={replace}")
        r = route(dst, kw.get("oif"), table or MAIN, kw.get("gateway"), kw.get("scope") or 0)
        r.family = kw.get("family") or r.family
        self.routes = [
            x
            for x in self.routes
            if not (replace and (x.dst, x.table, x.family) == (r.dst, r.table, r.family))
        ]
        self.routes.append(r)

    def close(self) -> None:
        pass
