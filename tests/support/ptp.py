"""Helpers of the ptp plugin tests and the routed-ptp scenario: config
building, running, kernel state snapshots (ptp has no bridge: the
snapshots of support.bridge are taken with a name no link has)."""

from __future__ import annotations

import json
from pathlib import Path

from support.bridge import _sysctl, links, snapshot
from support.cni import HostLocalNet
from support.sandbox import ip_json, iptables_save, nft_ruleset

PLUGIN = "pycni.plugins.main.ptp"
NO_BRIDGE = "-none-"  # the snapshot helpers' bridge name: no link is called that


class Net(HostLocalNet):
    """Builds ptp configs for one test and runs the plugin against them."""

    PLUGIN = PLUGIN

    def __init__(self, data_dir: Path, cni_path: list[str]) -> None:
        super().__init__(data_dir, cni_path, "ptpnet")

    def conf(
        self,
        cni_version: str = "1.0.0",
        subnets=("198.18.6.0/24",),
        ipam: dict | None = None,
        ipam_extra: dict | None = None,
        **keys,
    ) -> dict:
        c: dict = {"cniVersion": cni_version, "name": self.name, "type": "ptp"}
        c["ipam"] = ipam if ipam is not None else self.host_local(subnets, **(ipam_extra or {}))
        c.update(keys)
        return c


def host_veths() -> list[str]:
    """The veth links of the netns the test thread is in."""
    return [n for n, link in links().items() if link.get("linkinfo", {}).get("info_kind") == "veth"]


def settle(netns_names: list[str | None], timeout: float = 5.0, dad: bool = True) -> None:
    """Wait until every veth in these namespaces is operationally up, has
    its IPv6 link-local address (unless IPv6 is off on it) and no address
    in duplicate address detection (the host end's gateway /128 answers
    neighbour solicitations only after it; dad=False leaves that out, for
    a snapshot: it shows no tentative flag, and nothing it shows changes
    when DAD ends).

    The kernel's linkwatch sets a new veth's operstate up to a second after
    both ends are up, and addrconf adds the link-local address only then: a
    snapshot right after ADD would depend on timing, not on the plugin."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for ns in netns_names:
            for entry in ip_json("-d", "addr", "show", netns=ns):
                if entry.get("linkinfo", {}).get("info_kind") != "veth":
                    continue
                if "UP" not in entry.get("flags", []):
                    continue
                has_ll = any(
                    a.get("family") == "inet6" and a.get("scope") == "link"
                    for a in entry.get("addr_info", [])
                )
                v6_off = _sysctl(ns, f"net/ipv6/conf/{entry['ifname']}/disable_ipv6") == "1"
                tentative = dad and any(a.get("tentative") for a in entry.get("addr_info", []))
                if entry.get("operstate") != "UP" or not (has_ll or v6_off) or tentative:
                    pending.append(entry["ifname"])
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def ptp_snapshot(ct_name: str, ifname: str = "eth0") -> dict:
    """Links, addresses, routes (container and sandbox host), sysctls, nat,
    once the links are up with their link-local addresses (not waiting the
    second of DAD on them: no part of the snapshot depends on it)."""
    settle([None, ct_name], dad=False)
    return snapshot(
        NO_BRIDGE,
        ct_name,
        ifname,
        skip_sysctls=(f"ct:net/ipv6/conf/{ifname}/keep_addr_on_down",),
    )


def routes_of(netns: str | None, family: str = "-4") -> list[str]:
    """`ip route` lines in a stable, comparable form (dst dev scope src via)."""
    out = []
    for r in ip_json(family, "route", "show", netns=netns):
        line = r["dst"]
        if r.get("gateway"):
            line += " via " + r["gateway"]
        line += " dev " + r.get("dev", "?")
        if r.get("scope"):
            line += " scope " + r["scope"]
        if r.get("prefsrc"):
            line += " src " + r["prefsrc"]
        out.append(line)
    return sorted(out)


def no_rules_left() -> bool:
    """No masquerade rule of any backend in the netns the test thread is in."""
    return (
        "masquerade comment" not in nft_ruleset()
        and "CNI-" not in iptables_save()
        and "CNI-" not in iptables_save(v6=True)
    )


def dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
