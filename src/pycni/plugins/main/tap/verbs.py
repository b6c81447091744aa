"""The tap plugin's config and verbs."""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.tap import tuntap
from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.ctrlink import delete_if_present, delete_verb
from pycni.plugins.pkg.errors import annotate, kernel_error, warn
from pycni.plugins.pkg.ipam import (
    add_and_configure,
    ipam_gc,
    ipam_status,
    point_ips_at_link,
)
from pycni.plugins.pkg.netconf import invalid
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import ci_get, get_bool, get_int, get_str
from pycni.spec.result import DNS, Interface, Result
from pycni.spec.validate import config_interface_name_problem

_MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "no owner"


class NetConf(netconf.NetConf):
    __slots__ = ("bridge", "group", "mac", "mtu", "multi_queue", "owner", "selinux_context")

    multi_queue: bool
    mtu: int
    mac: str
    owner: int | None
    group: int | None
    selinux_context: str
    bridge: str


def load(conf: dict, cni_args: str, for_add: bool = False) -> NetConf:
    """Decode; MAC precedence: `mac` < CNI_ARGS MAC < runtimeConfig.mac."""
    n = NetConf(conf)
    n.multi_queue = get_bool(conf, "multiQueue")
    n.mtu = get_int(conf, "mtu")
    n.owner = _id(conf, "owner")
    n.group = _id(conf, "group")
    n.selinux_context = get_str(conf, "selinuxContext")
    n.bridge = get_str(conf, "bridge")
    n.mac = netconf.requested_mac(conf, cni_args, for_add, own_key=True)
    if for_add:
        if n.mtu < 0 or n.mtu > 65535:
            raise invalid(f'invalid "mtu" {n.mtu}: must be between 0 and 65535')
        if n.bridge:
            problem = config_interface_name_problem(n.bridge)
            if problem:
                raise invalid(f'invalid "bridge" {n.bridge!r}: {problem}')
    return n


def _id(conf: dict, key: str) -> int | None:
    if ci_get(conf, key) is None:
        return None
    value = get_int(conf, key)
    if not 0 <= value <= _MAX_ID:
        raise invalid(f'invalid "{key}" {value}: must be a uid/gid from 0 to {_MAX_ID}')
    return value


# --- ADD ---


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf, args.args, for_add=True)
    ctr_nl = open_netlink(args.netns)
    try:
        with add_transaction("tap ADD") as undo:
            intf = _create(conf, ctr_nl, args.netns, args.ifname, undo)
            result = Result(interfaces=[intf])
            if conf.is_layer3:
                _ipam(args, conf, ctr_nl, result, undo)
            result.dns = conf.dns.copy() if conf.dns is not None else DNS()
            return result
    finally:
        ctr_nl.close()


def _create(conf: NetConf, ctr_nl: RtNetlink, netns: str, ifname: str, undo: Undo) -> Interface:
    """The tap in the container: created, MTU and MAC set, on the bridge, up."""
    if ctr_nl.link_find(ifname) is not None:
        raise CNIError(errors.ERR_INTERNAL, f"interface {ifname} already exists in netns {netns}")
    bridge = _bridge(conf, ctr_nl, netns) if conf.bridge else None
    vnet_hdr = conf.owner is not None and conf.group is not None and not conf.selinux_context
    flags = tuntap.tap_flags(conf.multi_queue, vnet_hdr)
    step("tap.add.create")
    try:
        if conf.selinux_context and tuntap.selinux_enabled():
            tuntap.create_tap_labelled(
                netns, ifname, flags, conf.owner, conf.group, conf.selinux_context
            )
        else:
            if conf.selinux_context:
                warn(
                    f"tap: SELinux is not enabled; ignoring selinuxContext {conf.selinux_context!r}"
                )
            tuntap.create_tap(netns, ifname, flags, conf.owner, conf.group)
    except OSError as err:
        raise kernel_error(f"failed to create tap {ifname!r} in netns {netns}", err) from err
    undo.push(f"delete tap {ifname}", delete_if_present, ctr_nl, ifname)
    link = ctr_nl.link_get(ifname)
    if conf.mtu or conf.mac:
        step("tap.add.mtu-mac")
        with annotate("failed to set MTU/MAC of tap %r in netns %s", ifname, netns):
            ctr_nl.link_set(link, mtu=conf.mtu or None, mac=conf.mac or None)
    if bridge is not None:
        step("tap.add.bridge")
        with annotate(
            "failed to set tap %s as a port of bridge %s in netns %s", ifname, conf.bridge, netns
        ):
            ctr_nl.link_set(link, master=bridge.index)
    step("tap.add.up")
    with annotate("failed to set tap interface %r up in netns %s", ifname, netns):
        ctr_nl.link_set(link, up=True)
    link = ctr_nl.link_get(ifname)
    return Interface(ifname, link.mac, netns)


def _bridge(conf: NetConf, ctr_nl: RtNetlink, netns: str):
    br = ctr_nl.link_find(conf.bridge)
    if br is None:
        raise invalid(
            f'invalid "bridge" {conf.bridge!r}: failed to get bridge {conf.bridge}: '
            f"no such interface in netns {netns}"
        )
    if br.kind != "bridge":
        raise invalid(
            f'invalid "bridge" {conf.bridge!r}: {conf.bridge} in netns {netns} is a '
            f"{br.kind or 'device'}, not a bridge"
        )
    return br


def _ipam(args: CmdArgs, conf: NetConf, ctr_nl: RtNetlink, result: Result, undo: Undo) -> None:
    from pycni.plugins.pkg.sysctl import container_sysctls

    def prepare(result: Result) -> None:
        point_ips_at_link(result)
        step("tap.add.arp-notify")
        try:
            container_sysctls(args.netns, [(f"net/ipv4/conf/{args.ifname}/arp_notify", "1")])
        except (OSError, CNIError):
            pass  # the reference ignores this failure

    add_and_configure(args, conf.ipam_type, result, ctr_nl, undo, before_configure=prepare)


# --- DEL, CHECK, GC, STATUS ---


def cmd_del(args: CmdArgs) -> None:
    conf = load(args.conf, args.args)
    delete_verb(args, conf.ipam_type, "tap.del.delete")


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins.pkg.check import (
        prev_interface,
        required_prev_result,
        validate_expected_result,
    )
    from pycni.plugins.pkg.ipam import ipam_check

    conf = load(args.conf, args.args)
    ctr_nl = open_netlink(args.netns)
    try:
        if conf.is_layer3:
            ipam_check(conf.ipam_type, args.stdin_data)
        prev = required_prev_result(args)
        prev_interface(prev, args.ifname, args.netns)
        validate_expected_result(ctr_nl, args.netns, args.ifname, prev)
    finally:
        ctr_nl.close()


def cmd_gc(args: CmdArgs) -> None:
    conf = load(args.conf, args.args)
    if conf.is_layer3:
        ipam_gc(conf.ipam_type, args.stdin_data)


def cmd_status(args: CmdArgs) -> None:
    conf = load(args.conf, args.args)
    if conf.is_layer3:
        ipam_status(conf.ipam_type, args.stdin_data)
