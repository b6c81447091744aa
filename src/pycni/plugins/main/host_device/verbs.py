"""host-device's verbs."""

from __future__ import annotations

import time

from pycni.faultpoint import step
from pycni.plugins.main.host_device import move, state
from pycni.plugins.main.host_device.conf import NetConf, find_device, load
from pycni.plugins.pkg.errors import Failures, warn
from pycni.plugins.pkg.ipam import (
    add_and_configure,
    ipam_del,
    ipam_gc,
    ipam_status,
    point_ips_at_link,
)
from pycni.plugins.pkg.netns import NetnsGone, open_netlink
from pycni.plugins.pkg.transaction import add_transaction
from pycni.skel import CmdArgs
from pycni.spec.errors import CNIError
from pycni.spec.result import DNS, Interface, Result

#: how long DEL waits for the kernel to hand a device of a dead netns back
RETURN_WAIT = 1.0


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf)
    host_nl = open_netlink()
    try:
        ctr_nl = open_netlink(args.netns)
        try:
            with add_transaction("host-device ADD") as undo:
                if conf.dpdk_mode:
                    result = Result(interfaces=[Interface(args.ifname, sandbox=args.netns)])
                else:
                    dev = find_device(host_nl, conf)
                    cdev = move.move_in(host_nl, ctr_nl, dev, args.netns, args.ifname)
                    undo.push(
                        f"move {args.ifname} back to the host as {dev.name}",
                        move.move_back,
                        ctr_nl,
                        host_nl,
                        args.ifname,
                        dev.name,
                        dev.alias,
                        dev.up,
                    )
                    _save_state(args, conf, dev, undo)
                    result = Result(interfaces=[Interface(cdev.name, cdev.mac, args.netns)])
                if conf.is_layer3:
                    _ipam(args, conf, ctr_nl, result, undo)
                return result
        finally:
            ctr_nl.close()
    finally:
        host_nl.close()


def _save_state(args: CmdArgs, conf: NetConf, dev, undo) -> None:
    """Remember the host side (up, alias, MAC) for DEL; a failure to write
    costs only that, so it is a warning."""
    path = state.path_of(args.container_id, args.ifname, conf.data_dir)
    try:
        state.save(path, dev.name, dev.mac, dev.up, dev.alias)
    except OSError as err:
        warn(f"host-device: cannot save the state of {dev.name} in {path}: {err}")
        return
    undo.push(f"remove {path}", state.remove, path)


def _ipam(args: CmdArgs, conf: NetConf, ctr_nl, result: Result, undo) -> None:
    """IPAM ADD; its addresses on the interface unless DPDK (the device is
    not ours to configure then); DNS from the config only."""
    from pycni.plugins.pkg.ipam import ipam_add

    if conf.dpdk_mode:
        ipam_result = ipam_add(conf.ipam_type, args.stdin_data, undo)
        result.ips = [ipc.copy() for ipc in ipam_result.ips]
        result.routes = [r.copy() for r in ipam_result.routes]
        point_ips_at_link(result)
    else:
        add_and_configure(
            args, conf.ipam_type, result, ctr_nl, undo, before_configure=point_ips_at_link
        )
    result.dns = conf.dns.copy() if conf.dns is not None else DNS()


def cmd_del(args: CmdArgs) -> None:
    """IPAM DEL, then the device back to the host. Succeeds without a netns,
    when the netns is gone (a device the kernel returned here is renamed
    back), when the interface is no longer in the container, and twice."""
    conf = load(args.conf, for_del=True)
    failures = Failures()
    if conf.is_layer3:
        failures.attempt(ipam_del, conf.ipam_type, args.stdin_data)
    if args.netns and not conf.dpdk_mode:
        failures.attempt(_move_out, args, conf.data_dir)
    failures.raise_if_any()


def _move_out(args: CmdArgs, data_dir: str) -> None:
    path = state.path_of(args.container_id, args.ifname, data_dir)
    saved = state.load(path)
    host_nl = open_netlink()
    try:
        try:
            ctr_nl = open_netlink(args.netns)
        except NetnsGone:
            name = _restore_returned(args, host_nl, saved)
        else:
            try:
                name = move.move_out(ctr_nl, host_nl, args.netns, args.ifname)
            finally:
                ctr_nl.close()
        if saved is not None and not name:
            name = _already_back(host_nl, saved)
        if name and saved is not None and saved["name"] == name:
            _apply_state(host_nl, name, saved)
    finally:
        host_nl.close()
    state.remove(path)


def _already_back(host_nl, saved: dict) -> str:
    """A DEL killed between the move and restoring the state left the
    device on the host under its name with the state file still there."""
    link = host_nl.link_find(saved["name"])
    if link is not None and link.mac == saved["mac"] and not link.alias:
        return link.name
    return ""


def _apply_state(host_nl, name: str, saved: dict) -> None:
    """The device's own alias and up state from before ADD."""
    from pycni.plugins.pkg.errors import annotate

    if not saved["alias"] and not saved["up"]:
        return
    with annotate("failed to restore the state of %s", name):
        link = host_nl.link_get(name)
        step("host-device.del.restore-state")
        host_nl.link_set(link, alias=saved["alias"] or None, up=True if saved["up"] else None)


def _restore_returned(args: CmdArgs, host_nl, saved: dict | None) -> str:
    """The netns is gone: a virtual device went with it, a physical one went
    to the initial netns. When that is this one, find it by the MAC that
    prevResult (or the saved state) recorded and give it its name back.
    Returns the name, or "" when nothing came back."""
    mac = _prev_mac(args) or (saved["mac"] if saved is not None else "")
    if not mac:
        return ""
    deadline = time.monotonic() + RETURN_WAIT
    while True:
        link = move.find_returned(host_nl, args.ifname, mac)
        if link is not None:
            return move.restore_returned(host_nl, link)
        if time.monotonic() >= deadline:
            warn(
                f"host-device: netns {args.netns} is gone and no interface with MAC {mac} "
                "came back to this namespace; nothing to restore"
            )
            return ""
        time.sleep(0.05)


def _prev_mac(args: CmdArgs) -> str:
    try:
        prev = args.prev_result
    except CNIError:
        return ""
    if prev is None:
        return ""
    for intf in prev.interfaces:
        if intf.name == args.ifname and intf.sandbox and intf.mac:
            return intf.mac.lower()
    return ""


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.pkg.check import (
        check_container_link,
        prev_interface,
        required_prev_result,
        validate_expected_result,
    )
    from pycni.plugins.pkg.ipam import ipam_check

    conf = load(args.conf)
    ctr_nl = open_netlink(args.netns)
    try:
        if conf.is_layer3:
            ipam_check(conf.ipam_type, args.stdin_data)
        prev = required_prev_result(args)
        if conf.dpdk_mode:
            return
        check_container_link(ctr_nl, prev_interface(prev, args.ifname, args.netns))
        validate_expected_result(ctr_nl, args.netns, args.ifname, prev)
    finally:
        ctr_nl.close()


def cmd_gc(args: CmdArgs) -> None:
    conf = load(args.conf, for_del=True)
    if conf.is_layer3:
        ipam_gc(conf.ipam_type, args.stdin_data)


def cmd_status(args: CmdArgs) -> None:
    conf = load(args.conf, for_del=True)
    if conf.is_layer3:
        ipam_status(conf.ipam_type, args.stdin_data)
