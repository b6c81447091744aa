"""The dummy plugin's verbs."""

from __future__ import annotations

import errno

from pycni.faultpoint import step
from pycni.kernel.netlink import LinkNotFound, NetlinkError, RtNetlink
from pycni.plugins.pkg.errors import Failures, kernel_error
from pycni.plugins.pkg.ipam import add_and_configure, ipam_del, ipam_gc, ipam_status
from pycni.plugins.pkg.netconf import NetConf, invalid
from pycni.plugins.pkg.netns import NetnsGone, open_netlink
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


def delete_quietly(ctr_nl: RtNetlink, ifname: str) -> None:
    try:
        ctr_nl.link_del(ifname)
    except LinkNotFound:
        pass


def cmd_add(args: CmdArgs) -> Result:
    conf = _load(args)
    ctr_nl = open_netlink(args.netns)
    try:
        with add_transaction("dummy ADD") as undo:
            intf = create_dummy(ctr_nl, args.netns, args.ifname)
            undo.push(f"delete {args.ifname}", delete_quietly, ctr_nl, args.ifname)
            result = Result(interfaces=[intf])

            def index_zero(result: Result) -> None:
                for ipc in result.ips:
                    ipc.interface = 0

            # the result keeps the IPAM plugin's DNS (add_and_configure copies it)
            add_and_configure(
                conf.ipam_type,
                args.stdin_data,
                result,
                ctr_nl,
                args.netns,
                args.ifname,
                undo,
                before_configure=index_zero,
            )
            return result
    finally:
        ctr_nl.close()


def cmd_del(args: CmdArgs) -> None:
    conf = NetConf(args.conf)
    failures = Failures()
    if conf.ipam_type:
        failures.attempt(ipam_del, conf.ipam_type, args.stdin_data)
    if args.netns:
        failures.attempt(_delete_link, args)
    failures.raise_if_any()


def _delete_link(args: CmdArgs) -> None:
    try:
        ctr_nl = open_netlink(args.netns)
    except NetnsGone:
        return
    try:
        step("dummy.del.delete")
        delete_quietly(ctr_nl, args.ifname)
    finally:
        ctr_nl.close()


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.pkg.check import validate_expected_ips
    from pycni.plugins.pkg.ipam import ipam_check

    conf = _load(args)
    ctr_nl = open_netlink(args.netns)
    try:
        ipam_check(conf.ipam_type, args.stdin_data)
        prev = args.prev_result
        if prev is None:
            raise CNIError(errors.ERR_INTERNAL, "dummy: Required prevResult missing")
        mine = None
        for intf in prev.interfaces:
            if intf.name == args.ifname and intf.sandbox == args.netns:
                mine = intf
        if mine is None:
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Sandbox in prevResult  doesn't match configured netns: {args.netns}",
            )
        check_link(ctr_nl, mine)
        validate_expected_ips(ctr_nl, args.netns, args.ifname, prev.ips)
    finally:
        ctr_nl.close()


def check_link(ctr_nl: RtNetlink, intf: Interface) -> None:
    """The prevResult interface exists, is a dummy, has its MAC, and is up."""
    link = ctr_nl.link_find(intf.name)
    if link is None:
        raise CNIError(
            errors.ERR_INTERNAL, f"Container Interface name in prevResult: {intf.name} not found"
        )
    if link.kind != KIND:
        raise CNIError(
            errors.ERR_INTERNAL, f"Error: Container interface {intf.name} not of type dummy"
        )
    if intf.mac and intf.mac.lower() != link.mac:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"Interface {intf.name} Mac {intf.mac} doesn't match container Mac: {link.mac}",
        )
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
