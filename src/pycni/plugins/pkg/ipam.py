"""Delegating to the IPAM plugin, and putting its result on the interface.

Every interface plugin of the reference runs the same sequence; here it is
one call, `add_and_configure`. Delegates are run by pycni's launcher
executor: a pycni IPAM plugin of the same installation runs in-process.
"""

from __future__ import annotations

from pycni.invoke import delegate
from pycni.plugins.launcher import EXECUTOR
from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from pycni.kernel.netlink import RtNetlink
    from pycni.plugins.pkg.transaction import Undo
    from pycni.skel import CmdArgs
    from pycni.spec.result import Result


def ipam_add(ipam_type: str, stdin_data: bytes, undo: Undo) -> Result:
    """ADD through the IPAM plugin; its DEL is pushed on `undo` once the ADD
    succeeded (never before: that DEL would release an earlier attachment's
    address). An empty result is an error."""
    ipam_result = delegate.delegate_add(ipam_type, stdin_data, executor=EXECUTOR)
    undo.push(f"release the IPAM ({ipam_type}) allocation", ipam_del, ipam_type, stdin_data)
    if not ipam_result.ips:
        raise CNIError(
            errors.ERR_INTERNAL,
            "IPAM plugin returned missing IP config",
            f"the {ipam_type} result has no IPs",
        )
    return ipam_result


def add_and_configure(
    args: CmdArgs,
    ipam_type: str,
    result: Result,
    ctr_nl: RtNetlink,
    undo: Undo,
    before_configure: Callable[[Result], None] | None = None,
) -> None:
    """IPAM ADD (with `args.stdin_data`), its addresses, routes and DNS
    copied into `result`, then ConfigureIface on `args.ifname` in
    `args.netns`. `before_configure(result)` may adjust the result first
    (gateways, interface indexes)."""
    from pycni.plugins.pkg.iface import configure_iface  # ADD's alone, not DEL's

    ipam_result = ipam_add(ipam_type, args.stdin_data, undo)
    result.ips = [ipc.copy() for ipc in ipam_result.ips]
    result.routes = [r.copy() for r in ipam_result.routes]
    result.dns = ipam_result.dns.copy()
    if before_configure is not None:
        before_configure(result)
    configure_iface(ctr_nl, args.netns, args.ifname, result)


def point_ips_at_link(result: Result) -> None:
    """All addresses belong to the one interface of the result (index 0)."""
    for ipc in result.ips:
        ipc.interface = 0


def ipam_del(ipam_type: str, stdin_data: bytes) -> None:
    delegate.delegate_del(ipam_type, stdin_data, executor=EXECUTOR)


def ipam_check(ipam_type: str, stdin_data: bytes) -> None:
    delegate.delegate_check(ipam_type, stdin_data, executor=EXECUTOR)


def ipam_gc(ipam_type: str, stdin_data: bytes) -> None:
    delegate.delegate_gc(ipam_type, stdin_data, executor=EXECUTOR)


def ipam_status(ipam_type: str, stdin_data: bytes) -> None:
    delegate.delegate_status(ipam_type, stdin_data, executor=EXECUTOR)
