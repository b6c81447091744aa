"""CHECK for the ptp plugin (the reference's cmdCheck, and a little more).

IPAM CHECK, then prevResult: the container interface (name == CNI_IFNAME,
sandbox == CNI_NETNS) must be a veth with the recorded MAC, carry every
address with a route to its subnet, and every route must exist. Beyond the
reference: the host end recorded in prevResult must be that veth's peer and
carry the gateway addresses, and the masquerade rules must be there.
"""

from __future__ import annotations

from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.ptp.conf import NetConf
from pycni.plugins.pkg import masquerade
from pycni.plugins.pkg.check import (
    prev_interface,
    required_prev_result,
    validate_expected_result,
)
from pycni.plugins.pkg.ipam import ipam_check
from pycni.plugins.pkg.netns import open_netlink
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.ipnet import IPNet, bits


def _fail(msg: str) -> CNIError:
    return CNIError(errors.ERR_INTERNAL, msg)


def check(args: CmdArgs, conf: NetConf) -> None:
    ctr_nl = open_netlink(args.netns)
    try:
        if conf.ipam_type:
            ipam_check(conf.ipam_type, args.stdin_data)
        result = required_prev_result(args, "ptp", errors.ERR_INVALID_NETWORK_CONFIG)
        cont = _validate_container(ctr_nl, prev_interface(result, args.ifname, args.netns))
        validate_expected_result(ctr_nl, args.netns, args.ifname, result)
    finally:
        ctr_nl.close()
    _validate_host(result, cont)
    if conf.ip_masq:
        addrs = [ipc.address for ipc in result.ips]
        if not masquerade.present(addrs, conf.name, args.ifname, args.container_id):
            raise _fail(
                f"IP masquerade rules for {args.container_id}/{args.ifname} "
                f"of network {conf.name} are missing"
            )


def _validate_container(ctr_nl: RtNetlink, intf):
    if not intf.name:
        raise _fail(f"Container interface name missing in prevResult: {intf.name}")
    link = ctr_nl.link_find(intf.name)
    if link is None:
        raise _fail(f"ptp: Container Interface name in prevResult: {intf.name} not found")
    if link.kind != "veth":
        raise _fail(f"Error: Container interface {link.name} not of type veth/p2p")
    if intf.mac and intf.mac != link.mac:
        raise _fail(
            f"ptp: Interface {intf.name} Mac {intf.mac} doesn't match container Mac: {link.mac}"
        )
    return link


def _validate_host(result, cont) -> None:
    """The host end in prevResult (the interface without a sandbox) is the
    container veth's peer and carries each gateway address."""
    hosts = [i for i in result.interfaces if not i.sandbox]
    if not hosts:
        return  # a result of another plugin's making: nothing recorded to check
    host_nl = open_netlink()
    try:
        for intf in hosts:
            link = host_nl.link_find(intf.name)
            if link is None or link.kind != "veth" or link.index != cont.link:
                continue
            have = {
                (IPNet.parse(f"{a.address}/{a.prefixlen}")) for a in host_nl.addr_list(link.index)
            }
            for ipc in result.ips:
                if not ipc.gateway:
                    continue
                want = IPNet.parse(f"{ipc.gateway}/{bits(ipc.family)}")
                if want not in have:
                    raise _fail(f"ptp: gateway address {want} missing on host veth {link.name}")
            return
    finally:
        host_nl.close()
    raise _fail(
        f"ptp: host veth {', '.join(i.name for i in hosts)} of container interface "
        f"{cont.name} not found"
    )
