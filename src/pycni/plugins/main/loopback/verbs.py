"""The loopback plugin's verbs."""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.link import Link
from pycni.kernel.netlink import AF_INET, AF_INET6, RtNetlink
from pycni.plugins.pkg.errors import annotate
from pycni.plugins.pkg.netns import NetnsGone, open_netlink
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result

LO = "lo"


def _is_loopback(ip: str) -> bool:
    """Go's net.IP.IsLoopback: 127.0.0.0/8 or ::1."""
    return ip.startswith("127.") if ":" not in ip else ip == "::1"


def _lo(ctr_nl: RtNetlink, netns: str) -> Link:
    with annotate("failed to find %s in netns %s", LO, netns):
        return ctr_nl.link_get(LO)


def cmd_add(args: CmdArgs) -> Result:
    from pycni.spec.result import Interface, IPConfig, Result  # ADD's alone

    prev = args.prev_result  # validates a prevResult before touching anything
    ctr_nl = open_netlink(args.netns)
    try:
        lo = _lo(ctr_nl, args.netns)
        step("loopback.add.lo-up")
        with annotate("failed to set %s up in netns %s", LO, args.netns):
            ctr_nl.link_set(lo, up=True)
            v4 = ctr_nl.addr_list(lo.index, AF_INET)
            v6 = ctr_nl.addr_list(lo.index, AF_INET6)
    finally:
        ctr_nl.close()
    for addr in (*v4, *v6):
        if not _is_loopback(addr.address):
            raise CNIError(
                ERR_INTERNAL,
                f'loopback interface found with non-loopback address "{addr.address}"',
                f"in netns {args.netns}",
            )
    if prev is not None:
        return prev
    result = Result(
        args.cni_version or "0.1.0",
        interfaces=[Interface(LO, "00:00:00:00:00:00", args.netns)],
    )
    for addrs in (v4, v6):
        if addrs:
            result.ips.append(IPConfig(f"{addrs[0].address}/{addrs[0].prefixlen}", interface=0))
    return result


def cmd_del(args: CmdArgs) -> None:
    if not args.netns:
        return
    try:
        ctr_nl = open_netlink(args.netns)
    except NetnsGone:
        return
    try:
        lo = _lo(ctr_nl, args.netns)
        step("loopback.del.lo-down")
        with annotate("failed to set %s down in netns %s", LO, args.netns):
            ctr_nl.link_set(lo, up=False)
    finally:
        ctr_nl.close()


def cmd_check(args: CmdArgs) -> None:
    ctr_nl = open_netlink(args.netns)
    try:
        lo = _lo(ctr_nl, args.netns)
    finally:
        ctr_nl.close()
    if not lo.up:
        raise CNIError(ERR_INTERNAL, "loopback interface is down", f"in netns {args.netns}")
