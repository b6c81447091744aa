"""The kernel steps of the bandwidth plugin: find the host veth, shape it.

Ingress (traffic into the container) is a TBF as root qdisc of the host
veth. Egress (traffic from the container) arrives on the host veth's
ingress, where nothing can be queued, so it is redirected by a u32 filter
with mirred actions to an IFB device whose root TBF shapes it.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel import tc
from pycni.kernel.link import Link
from pycni.kernel.netlink import LinkNotFound, RtNetlink
from pycni.plugins.meta.bandwidth.conf import Direction, expected_shape
from pycni.plugins.pkg.errors import annotate
from pycni.plugins.pkg.transaction import Undo
from pycni.spec.errors import ERR_INTERNAL, CNIError
from pycni.spec.result import Result

TBF_HANDLE = 0x10000  # "1:"
#: the largest buffer the kernel reports back: it keeps the buffer as at
#: most 2^32-1 ns, 64 ns a tick
_MAX_DUMPED_BUFFER = 0xFFFFFFFF >> 6


def _fail(msg: str, details: str = "") -> CNIError:
    return CNIError(ERR_INTERNAL, msg, details)


def host_veth(host_nl: RtNetlink, ctr_nl: RtNetlink, ifname: str, netns: str, prev: Result) -> Link:
    """The host end of the container's veth `ifname`, which prevResult must
    list as a host interface (the reference's getHostInterface)."""
    if not prev.interfaces:
        raise _fail("no interfaces provided", "prevResult lists no interfaces")
    try:
        ctr = ctr_nl.link_get(ifname)
    except LinkNotFound:
        raise _fail(
            f"container interface {ifname} has no veth peer: "
            f'could not look up "{ifname}" in netns {netns}: Link not found'
        )
    except OSError as err:
        raise _fail(f"container interface {ifname} has no veth peer: {err}")
    if ctr.kind != "veth":
        raise _fail(
            f"container interface {ifname} has no veth peer: "
            f'interface "{ifname}" was not a veth interface'
            + (f" (it is a {ctr.kind})" if ctr.kind else "")
        )
    if ctr.link <= 0:
        raise _fail(f"container interface {ifname} has no veth peer")
    try:
        host = host_nl.link_get(index=ctr.link)
    except LinkNotFound:
        host = None
    # IFLA_LINK is an index in the peer's netns: the link found here is the
    # peer only if it is a veth whose own peer index is the container end's.
    if host is None or host.kind != "veth" or host.link != ctr.index:
        raise _fail(f"veth peer with index {ctr.link} is not in host ns")
    for intf in prev.interfaces:
        if not intf.sandbox and intf.name == host.name:
            return host
    raise _fail(
        "no veth peer of container interface found in host ns",
        f"the peer of {ifname} is {host.name!r}, which prevResult does not list "
        "as a host interface",
    )


def add_ingress(host_nl: RtNetlink, veth: Link, shape: tuple[int, int, int], undo: Undo) -> None:
    """Shape traffic into the container: a TBF as the host veth's root qdisc."""
    rate, buffer, limit = shape
    step("bandwidth.add.ingress-tbf")
    with annotate("create qdisc"):
        host_nl.qdisc_add_tbf(veth, rate, buffer, limit, TBF_HANDLE)
    undo.push(
        f"delete the tbf qdisc of {veth.name}", host_nl.qdisc_del, veth, tc.TC_H_ROOT, TBF_HANDLE
    )


def add_egress(
    host_nl: RtNetlink,
    veth: Link,
    ifb_name: str,
    alias: str,
    shape: tuple[int, int, int],
    undo: Undo,
) -> Link:
    """Shape traffic from the container: create the IFB (up, the veth's MTU,
    queue length 0), redirect the veth's ingress to it, TBF on its root."""
    rate, buffer, limit = shape
    step("bandwidth.add.ifb")
    with annotate("adding link"):
        host_nl.link_add("ifb", ifb_name, mtu=veth.mtu, up=True, txqlen=0)
    with annotate("get ifb device"):
        ifb = host_nl.link_get(ifb_name)
    undo.push(f"delete IFB {ifb_name}", host_nl.link_del, ifb)
    if alias:
        step("bandwidth.add.ifb-alias")
        with annotate("set alias of ifb device %s", ifb_name):
            host_nl.link_set(ifb, alias=alias)
    step("bandwidth.add.ingress-qdisc")
    with annotate("create ingress qdisc"):
        host_nl.qdisc_add_ingress(veth)
    undo.push(
        f"delete the ingress qdisc of {veth.name}",
        host_nl.qdisc_del,
        veth,
        tc.TC_H_INGRESS,
        tc.HANDLE_INGRESS,
    )
    step("bandwidth.add.redirect-filter")
    with annotate("add filter"):
        host_nl.filter_add_u32_redirect(veth, ifb)
    step("bandwidth.add.egress-tbf")
    with annotate("create ifb qdisc: create qdisc"):
        host_nl.qdisc_add_tbf(ifb, rate, buffer, limit, TBF_HANDLE)
    return ifb


# --- CHECK ------------------------------------------------------------------------------------


def check_tbf(host_nl: RtNetlink, link: Link, d: Direction, tick: float) -> None:
    """The root qdisc of `link` is the TBF ADD made for `d`."""
    rate, buffer, limit = expected_shape(d, tick)
    qdiscs = [q for q in host_nl.qdisc_list(link) if q.kind != "pfifo_fast"]
    if not qdiscs:
        raise _fail("Failed to find qdisc", f"{link.name} has no qdisc")
    root = next((q for q in qdiscs if q.root), None)
    if root is None or root.kind != "tbf":
        kind = root.kind if root is not None else "none"
        raise _fail("Failed to find qdisc", f"the root qdisc of {link.name} is {kind}, not tbf")
    if root.rate != rate:
        raise _fail("Rate doesn't match", f"{link.name}: {root.rate} bytes/s, expected {rate}")
    if root.limit != limit:
        raise _fail("Limit doesn't match", f"{link.name}: {root.limit} bytes, expected {limit}")
    if root.buffer != min(buffer, _MAX_DUMPED_BUFFER):
        raise _fail("Buffer doesn't match", f"{link.name}: {root.buffer} ticks, expected {buffer}")


def check_redirect(host_nl: RtNetlink, veth: Link, ifb: Link) -> None:
    """The veth's ingress qdisc redirects everything to the IFB."""
    if not any(q.handle == tc.HANDLE_INGRESS for q in host_nl.qdisc_list(veth)):
        raise _fail("Failed to find qdisc", f"{veth.name} has no ingress qdisc")
    for f in host_nl.filter_list(veth, tc.HANDLE_INGRESS):
        for a in f.actions:
            if (
                a.kind == "mirred"
                and a.eaction == tc.TCA_EGRESS_REDIR
                and a.to_ifindex == ifb.index
            ):
                return
    raise _fail(
        "Failed to find filter",
        f"no filter on the ingress of {veth.name} redirects to {ifb.name}",
    )
