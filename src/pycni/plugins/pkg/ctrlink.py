"""Deleting the interface a plugin made in the container netns.

Every interface plugin's DEL ends the same way, and so does its ADD's
undo of a link it created: the container's link goes, and a link (or
netns) that is already gone is success. Written once here so that DEL
tolerates the same things in every plugin.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel.netlink import LinkNotFound, RtNetlink
from pycni.plugins.pkg.errors import Failures, kernel_error
from pycni.plugins.pkg.netns import NetnsGone, open_netlink

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from pycni.skel import CmdArgs


def delete_if_present(nl: RtNetlink, name: str) -> None:
    """Delete link `name` in `nl`'s netns; one that is not there is fine
    (undo steps run in order, and an earlier one may have removed it)."""
    try:
        nl.link_del(name)
    except LinkNotFound:
        pass


def delete_container_link(
    netns: str, ifname: str, fault: str, opener: Callable[[str], RtNetlink] = open_netlink
) -> None:
    """DEL's removal of `ifname` in `netns`: nothing to do without a netns,
    with the netns gone or with the interface gone, so it is repeatable.
    `fault` is the plugin's fault point name ("<plugin>.del.<what>"). A
    netns that cannot be opened for another reason, or a kernel refusal,
    is a CNIError naming the interface and the netns. `opener` opens the
    netns (pkg.netns.open_netlink; a module that routes its sockets through
    its own name passes that)."""
    if not netns:
        return
    try:
        ctr_nl = opener(netns)
    except NetnsGone:
        return
    try:
        step(fault)
        try:
            delete_if_present(ctr_nl, ifname)
        except OSError as err:
            raise kernel_error(f"failed to delete {ifname!r} in netns {netns}", err)
    finally:
        ctr_nl.close()


def delete_verb(args: CmdArgs, ipam_type: str, fault: str) -> None:
    """DEL of a plugin whose attachment is one link in the container: IPAM
    DEL (when `ipam_type`), then the link (delete_container_link, `fault`
    its fault point). Both run whatever the other did; the failures are
    reported together, and a missing netns, link or prevResult is success."""
    from pycni.plugins.pkg.ipam import ipam_del

    failures = Failures()
    if ipam_type:
        failures.attempt(ipam_del, ipam_type, args.stdin_data)
    failures.attempt(delete_container_link, args.netns, args.ifname, fault)
    failures.raise_if_any()
