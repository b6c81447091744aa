"""The loopback plugin: bring `lo` up in the container (plugins.md 3.7).

CNI_IFNAME is ignored, the interface is always `lo`. ADD sets it up and
returns its first IPv4 and IPv6 address (or passes a prevResult through
unchanged); DEL sets it down and succeeds without a netns or when the netns
is gone; CHECK verifies it is up.
"""

from __future__ import annotations

from pycni.faultpoint import step

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.skel import CmdArgs
    from pycni.spec.result import Result

LO = "lo"


def _is_loopback(ip: str) -> bool:
    """Go's net.IP.IsLoopback: 127.0.0.0/8 or ::1."""
    return ip.startswith("127.") if ":" not in ip else ip == "::1"


def _lo(rt, netns: str):
    from pycni.plugins.common import kernel_error

    try:
        return rt.link_get(LO)
    except OSError as err:
        raise kernel_error(f"failed to find {LO} in netns {netns}", err)


def cmd_add(args: CmdArgs) -> Result:
    from pycni.kernel.netlink import AF_INET, AF_INET6
    from pycni.plugins import common
    from pycni.spec.errors import ERR_INTERNAL, CNIError

    prev = args.prev_result  # validates a prevResult before touching anything
    rt = common.open_netlink(args.netns)
    try:
        lo = _lo(rt, args.netns)
        step("loopback.add.lo-up")
        try:
            rt.link_set(lo, up=True)
            v4 = rt.addr_list(lo.index, AF_INET)
            v6 = rt.addr_list(lo.index, AF_INET6)
        except OSError as err:
            raise common.kernel_error(f"failed to set {LO} up in netns {args.netns}", err)
    finally:
        rt.close()
    for addr in (*v4, *v6):
        if not _is_loopback(addr.address):
            raise CNIError(
                ERR_INTERNAL,
                f'loopback interface found with non-loopback address "{addr.address}"',
                f"in netns {args.netns}",
            )
    if prev is not None:
        return prev
    from pycni.spec.result import Interface, IPConfig, Result

    result = Result(
        args.cni_version or "0.1.0",
        interfaces=[Interface(LO, "00:00:00:00:00:00", args.netns)],
    )
    for addrs in (v4, v6):
        if addrs:
            result.ips.append(IPConfig(f"{addrs[0].address}/{addrs[0].prefixlen}", interface=0))
    return result


def cmd_del(args: CmdArgs) -> None:
    from pycni.plugins import common

    if not args.netns:
        return
    try:
        rt = common.open_netlink(args.netns)
    except common.NetnsGone:
        return
    try:
        lo = _lo(rt, args.netns)
        step("loopback.del.lo-down")
        try:
            rt.link_set(lo, up=False)
        except OSError as err:
            raise common.kernel_error(f"failed to set {LO} down in netns {args.netns}", err)
    finally:
        rt.close()


def cmd_check(args: CmdArgs) -> None:
    from pycni.plugins import common
    from pycni.spec.errors import ERR_INTERNAL, CNIError

    rt = common.open_netlink(args.netns)
    try:
        lo = _lo(rt, args.netns)
    finally:
        rt.close()
    if not lo.up:
        raise CNIError(ERR_INTERNAL, "loopback interface is down", f"in netns {args.netns}")


# What skel needs to run this plugin (all spec versions: skel's default).
HANDLERS = {
    "add": cmd_add,
    "delete": cmd_del,
    "check": cmd_check,
    "about": "CNI loopback plugin (pycni)",
}


def main() -> None:
    from pycni.skel import plugin_main

    plugin_main(**HANDLERS)


if __name__ == "__main__":
    main()
