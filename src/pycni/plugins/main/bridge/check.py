"""CHECK for the bridge plugin (the reference's cmdCheck).

IPAM CHECK first (when an IPAM type is configured; the reference also calls
it for L2-only networks, where it can only fail), then the prevResult
interfaces: the bridge (type, MAC, promisc state), the container veth (type,
MAC), the host veth that is its peer and a port of the bridge, and finally
the container's addresses (with a route to each subnet) and routes.
"""

from __future__ import annotations

from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.bridge import spoofcheck
from pycni.plugins.main.bridge.conf import NetConf
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.check import validate_expected_ips, validate_expected_routes
from pycni.plugins.pkg.ipam import ipam_check
from pycni.plugins.pkg.netns import open_netlink
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError


def _fail(msg: str) -> CNIError:
    return CNIError(errors.ERR_INTERNAL, msg)


class _Found:
    __slots__ = ("found", "index", "master", "name", "peer")

    def __init__(self) -> None:
        self.found = False
        self.name = ""
        self.index = 0
        self.peer = 0
        self.master = 0


def check(args: CmdArgs, conf: NetConf) -> None:
    ctr_nl = open_netlink(args.netns)
    try:
        _check(args, conf, ctr_nl)
    finally:
        ctr_nl.close()


def _check(args: CmdArgs, conf: NetConf, ctr_nl: RtNetlink) -> None:
    if conf.is_layer3:
        ipam_check(conf.ipam_type, args.stdin_data)
    if args.prev_result is None:
        raise CNIError(errors.ERR_INVALID_NETWORK_CONFIG, "Required prevResult missing")
    result = args.prev_result

    br_if = cont_if = None
    for intf in result.interfaces:
        if intf.name == conf.br_name:
            br_if = intf
        elif intf.name == args.ifname and intf.sandbox == args.netns:
            cont_if = intf

    host_nl = open_netlink()
    try:
        br = _validate_bridge(host_nl, br_if, conf)
        sandbox = cont_if.sandbox if cont_if is not None else ""
        if args.netns != sandbox:
            raise _fail(
                f"Sandbox in prevResult {sandbox} doesn't match configured netns: {args.netns}"
            )
        cont = _validate_container(ctr_nl, cont_if, args.netns)
        assert br_if is not None and cont_if is not None  # else _lookup raised
        veth = _Found()
        for intf in result.interfaces:
            if intf.name in (br_if.name, cont_if.name):
                continue
            veth = _validate_host_veth(host_nl, intf, br, cont)
            if veth.found:
                break
    finally:
        host_nl.close()
    if not br.found:
        raise _fail(f"CNI created bridge {conf.br_name} in host namespace was not found")
    if not cont.found:
        raise _fail(f"CNI created interface in container {args.ifname} not found")
    if not veth.found:
        raise _fail(f"CNI veth created for bridge {conf.br_name} was not found")

    validate_expected_ips(ctr_nl, args.netns, args.ifname, result.ips)
    validate_expected_routes(ctr_nl, args.netns, result.routes)
    _check_rules(args, conf, result)


def _check_rules(args: CmdArgs, conf: NetConf, result) -> None:
    """Beyond the reference: the spoof-check and masquerade rules ADD
    installed must still be there (the spec's "untracked resources")."""
    if conf.mac_spoof_chk:
        ref = spoofcheck.ref_id(args.container_id, args.ifname)
        if not spoofcheck.present(ref):
            raise _fail(f"mac spoof check chains {spoofcheck.iface_chain(ref)} are missing")
    if conf.is_layer3 and conf.ip_masq:
        addrs = [ipc.address for ipc in result.ips]
        if not masquerade.present(addrs, conf.name, args.ifname, args.container_id):
            raise _fail(
                f"IP masquerade rules for {args.container_id}/{args.ifname} "
                f"of network {conf.name} are missing"
            )


def _lookup(nl: RtNetlink, intf, expect_sandbox: bool, where: str):
    if intf is None or not intf.name:
        raise _fail("Interface name missing ")
    link = nl.link_find(intf.name)
    if link is None:
        raise _fail(f"Interface name {intf.name} not found in {where}")
    if expect_sandbox and not intf.sandbox:
        raise _fail(f"Interface {intf.name} is expected to be in a sandbox")
    if not expect_sandbox and intf.sandbox:
        raise _fail(f"Interface {intf.name} should not be in sandbox")
    return link


def _validate_bridge(host_nl: RtNetlink, intf, conf: NetConf) -> _Found:
    link = _lookup(host_nl, intf, False, "the host namespace")
    if link.kind != "bridge":
        raise _fail(f"Interface {intf.name} does not have link type of bridge")
    if intf.mac and intf.mac != link.mac:
        raise _fail(f"Bridge interface {intf.name} Mac doesn't match: {intf.mac} (is {link.mac})")
    if link.promisc != conf.promisc_mode:
        raise _fail(
            f"Bridge interface {intf.name} configured Promisc Mode {_go_bool(conf.promisc_mode)} "
            f"doesn't match current state: {_go_bool(link.promisc)} "
        )
    out = _Found()
    out.found, out.name, out.index, out.master = True, link.name, link.index, link.master
    return out


def _validate_container(ctr_nl: RtNetlink, intf, netns: str) -> _Found:
    link = _lookup(ctr_nl, intf, True, f"netns {netns}")
    if link.kind != "veth":
        raise _fail(f"Error: Container interface {link.name} not of type veth")
    if not link.link:
        raise _fail(f"Unable to obtain veth peer index for veth {link.name}")
    if intf.mac and intf.mac != link.mac:
        raise _fail(f"Interface {intf.name} Mac {intf.mac} doesn't match container Mac: {link.mac}")
    out = _Found()
    out.found, out.name, out.index, out.peer = True, link.name, link.index, link.link
    return out


def _validate_host_veth(host_nl: RtNetlink, intf, br: _Found, cont: _Found) -> _Found:
    out = _Found()
    link = _lookup(host_nl, intf, False, "the host namespace")
    if link.kind != "veth":
        return out  # not what CNI created: skip it
    if not link.link:
        raise _fail(f"Unable to obtain veth peer index for veth {link.name}")
    out.index, out.peer, out.master = link.index, link.link, link.master
    if out.index != cont.peer or cont.index != out.peer or out.master != br.index:
        return out
    if intf.mac and intf.mac != link.mac:
        raise _fail(f"Interface {intf.name} Mac doesn't match: {intf.mac} not found")
    out.found, out.name = True, link.name
    return out


def _go_bool(value: bool) -> str:
    return "true" if value else "false"
