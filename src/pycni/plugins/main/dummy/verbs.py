"""The dummy plugin's verbs."""

from __future__ import annotations

import errno

from pycni.faultpoint import step
from pycni.kernel.netlink import NetlinkError, RtNetlink
from pycni.plugins.pkg.ctrlink import delete_if_present, delete_verb
from pycni.plugins.pkg.errors import kernel_error
from pycni.plugins.pkg.ipam import (
    add_and_configure,
    ipam_gc,
    ipam_status,
    point_ips_at_link,
)
from pycni.plugins.pkg.netconf import NetConf, invalid
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.transaction import add_transaction
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.result import Interface, Result

KIND = "dummy"
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTSUP)


def _load(args: CmdArgs) -> NetConf:
    conf = NetConf(args.conf)
    if not conf.ipam_type:
        raise invalid("dummy interface requires an IPAM configuration")
    return conf


def create_dummy(ctr_nl: RtNetlink, netns: str, ifname: str) -> Interface:
    """`ip link add <ifname> type dummy` inside the container netns."""
    step("dummy.add.create")
    try:
        ctr_nl.link_add(KIND, ifname)
    except NetlinkError as err:
        raise creation_error(ifname, netns, err) from err
    link = ctr_nl.link_get(ifname)
    return Interface(ifname, link.mac, netns)


def creation_error(ifname: str, netns: str, err: NetlinkError) -> CNIError:
    """The kernel's refusal, a missing link kind named as the kernel option."""
    if err.errno in _UNSUPPORTED:
        return CNIError(
            errors.ERR_INTERNAL,
            "failed to create dummy: this kernel has no dummy link support (CONFIG_DUMMY)",
            f"{err} ({err.ext_msg})" if err.ext_msg else str(err),
        )
    if err.errno == errno.EEXIST:
        return CNIError(errors.ERR_INTERNAL, f"interface {ifname} already exists in netns {netns}")
    return kernel_error(f"failed to create dummy {ifname!r} in netns {netns}", err)


def cmd_add(args: CmdArgs) -> Result:
    conf = _load(args)
    ctr_nl = open_netlink(args.netns)
    try:
        with add_transaction("dummy ADD") as undo:
            intf = create_dummy(ctr_nl, args.netns, args.ifname)
            undo.push(f"delete {args.ifname}", delete_if_present, ctr_nl, args.ifname)
            result = Result(interfaces=[intf])
            # the result keeps the IPAM plugin's DNS (add_and_configure copies it)
            add_and_configure(
                args, conf.ipam_type, result, ctr_nl, undo, before_configure=point_ips_at_link
            )
            return result
    finally:
        ctr_nl.close()


def cmd_del(args: CmdArgs) -> None:
    conf = NetConf(args.conf)
    delete_verb(args, conf.ipam_type, "dummy.del.delete")


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.pkg.check import prev_interface, required_prev_result, validate_expected_ips
    from pycni.plugins.pkg.ipam import ipam_check

    conf = _load(args)
    ctr_nl = open_netlink(args.netns)
    try:
        ipam_check(conf.ipam_type, args.stdin_data)
        prev = required_prev_result(args, "dummy")
        check_link(ctr_nl, prev_interface(prev, args.ifname, args.netns))
        validate_expected_ips(ctr_nl, args.netns, args.ifname, prev.ips)
    finally:
        ctr_nl.close()


def check_link(ctr_nl: RtNetlink, intf: Interface) -> None:
    """The prevResult interface exists, is a dummy, has its MAC, and is up."""
    from pycni.plugins.pkg.check import check_container_link

    link = check_container_link(ctr_nl, intf, KIND)
    if not link.up:
        raise CNIError(errors.ERR_INTERNAL, f"Interface {intf.name} is down")


def cmd_gc(args: CmdArgs) -> None:
    conf = NetConf(args.conf)
    if conf.ipam_type:
        ipam_gc(conf.ipam_type, args.stdin_data)


def cmd_status(args: CmdArgs) -> None:
    conf = NetConf(args.conf)
    if conf.ipam_type:
        ipam_status(conf.ipam_type, args.stdin_data)
