"""Veth pairs across namespaces, and deleting links."""

from __future__ import annotations

import errno
import os

from pycni.faultpoint import step
from pycni.kernel.netlink import LinkNotFound, NetlinkError, RtNetlink
from pycni.plugins.pkg.errors import kernel_error
from pycni.plugins.pkg.netns import open_netlink
from pycni.plugins.pkg.sysctl import set_quietly
from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.pkg.transaction import Undo


def random_veth_name() -> str:
    """ "veth" + 8 lowercase hex chars (NetworkManager ignores veth*)."""
    return "veth" + os.urandom(4).hex()


def setup_veth(
    ctr_nl: RtNetlink,
    host_nl: RtNetlink,
    netns: str,
    ifname: str,
    mtu: int = 0,
    mac: str | None = None,
    host_name: str | None = None,
    undo: Undo | None = None,
):
    """ip.SetupVeth: from inside the container netns, one RTM_NEWLINK creates
    `ifname` there and its peer directly in the host netns (the calling
    thread's). The host end is set up with accept_ra=0; the container end is
    left down. Returns (host Link, container Link). With `undo` (an ADD's),
    the pair's deletion is pushed on it once the pair is set up.
    """
    host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for _ in range(10):
            peer = host_name or random_veth_name()
            step("veth.create")
            try:
                ctr_nl.link_add_veth(ifname, peer, peer_netns=host_fd, mtu=mtu, mac=mac)
            except NetlinkError as err:
                if err.errno != errno.EEXIST:
                    raise kernel_error(
                        f"failed to create veth pair {ifname} (in netns {netns}) / {peer}", err
                    )
                if ctr_nl.link_find(ifname) is not None:
                    raise CNIError(
                        errors.ERR_INTERNAL, f"interface {ifname} already exists in netns {netns}"
                    )
                if host_name is None and host_nl.link_find(peer) is not None:
                    continue
                raise CNIError(
                    errors.ERR_INTERNAL,
                    f"container veth name ({ifname!r}) peer provided ({peer!r}) already exists",
                )
            break
        else:
            raise CNIError(errors.ERR_INTERNAL, "failed to find a unique veth name")
    finally:
        os.close(host_fd)
    try:
        cont = ctr_nl.link_get(ifname)
        hveth = host_nl.link_get(peer)
    except NetlinkError as err:
        delete_quietly(ctr_nl, ifname)
        raise kernel_error(f"failed to look up veth pair {ifname}/{peer}", err)
    step("veth.host-up")
    try:
        host_nl.link_set(hveth, up=True)
    except NetlinkError as err:
        delete_quietly(ctr_nl, ifname)
        raise kernel_error(f"failed to set {peer} up", err)
    step("veth.host-accept-ra")
    set_quietly(f"net/ipv6/conf/{peer}/accept_ra", "0")
    if undo is not None:
        undo.push(
            f"delete veth {ifname} in netns {netns}", delete_veth, netns, host_nl, ifname, peer
        )
    return hveth, cont


def delete_veth(netns: str, host_nl: RtNetlink, ifname: str, host_name: str) -> None:
    """Undo setup_veth: delete the container end (the pair goes with it), or
    the host end when the container netns is already gone."""
    try:
        ctr_nl = open_netlink(netns)
    except CNIError:
        ctr_nl = None
    if ctr_nl is not None:
        try:
            ctr_nl.link_del(ifname)
            return
        except LinkNotFound:
            pass
        finally:
            ctr_nl.close()
    try:
        host_nl.link_del(host_name)
    except LinkNotFound:
        pass


def delete_quietly(nl: RtNetlink, name: str) -> None:
    try:
        nl.link_del(name)
    except OSError:
        pass
