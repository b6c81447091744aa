"""Traffic control: the qdiscs and filters the bandwidth plugin uses.

A token bucket (`tbf`) as root qdisc, the `ingress` qdisc (handle ffff:), a
u32 "match everything" filter on it whose mirred actions redirect every
packet to another device (an IFB), and dumps of qdiscs and filters with
their parameters parsed.

The messages are the ones the reference plugin sends through
vishvananda/netlink (checked byte for byte against an strace of
/usr/lib/cni/bandwidth in tests/kernel/test_kernel_tc.py): TCA_TBF_PARMS with
the rate in its 32-bit field and TCA_TBF_RATE64 only from 2^32 bytes/s on,
no rate table and no TCA_TBF_BURST, so the kernel derives the burst from the
buffer time just as for the reference.  The TBF maths (`tbf_buffer`,
`tbf_limit`) are the reference's float64 computations, including Go's
conversions to uint32, on the kernel's tick length from /proc/net/psched.
"""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nl

# struct tcmsg attributes
TCA_KIND = 1
TCA_OPTIONS = 2
TCA_CHAIN = 11

# handles (major:minor in one u32)
TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1
HANDLE_INGRESS = 0xFFFF0000  # "ffff:", the ingress qdisc's own handle

ETH_P_ALL = 0x0003

# tbf
TCA_TBF_PARMS = 1
TCA_TBF_RTAB = 2
TCA_TBF_PTAB = 3
TCA_TBF_RATE64 = 4
TCA_TBF_PRATE64 = 5
TCA_TBF_BURST = 6
TCA_TBF_PBURST = 7

# u32
TCA_U32_CLASSID = 1
TCA_U32_HASH = 2
TCA_U32_LINK = 3
TCA_U32_DIVISOR = 4
TCA_U32_SEL = 5
TCA_U32_POLICE = 6
TCA_U32_ACT = 7
TC_U32_TERMINAL = 1

# actions
TCA_ACT_KIND = 1
TCA_ACT_OPTIONS = 2
TCA_ACT_INDEX = 3
TCA_MIRRED_PARMS = 2
TCA_EGRESS_REDIR = 1
TCA_EGRESS_MIRROR = 2
TCA_INGRESS_REDIR = 3
TCA_INGRESS_MIRROR = 4

TC_ACT_OK = 0
TC_ACT_RECLASSIFY = 1
TC_ACT_SHOT = 2
TC_ACT_PIPE = 3
TC_ACT_STOLEN = 4

#: what vishvananda/netlink sends for the reference's filter: the mirred it
#: prepends for `RedirIndex` (stolen) and the one in `Actions` (ok, "pass")
REFERENCE_REDIRECT_VERDICTS = (TC_ACT_STOLEN, TC_ACT_OK)

TIME_UNITS_PER_SEC = 1000000

_TCMSG = struct.Struct("=BxxxiIII")  # family, pad, ifindex, handle, parent, info
_RATESPEC = struct.Struct("=BBHhHI")  # cell_log, linklayer, overhead, cell_align, mpu, rate
_TBF_QOPT = struct.Struct("=12s12sIII")  # rate, peakrate, limit, buffer, mtu
# flags, offshift, nkeys, pad, offmask, off, offoff, hoff, hmask
_U32_SEL = struct.Struct("=BBBBHHhhI")
_U32_KEY = struct.Struct("=IIii")  # mask, val (both big endian on the wire), off, offmask
# tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex
_MIRRED = struct.Struct("=IIiiiiI")
_U64 = struct.Struct("=Q")


def tcmsg(ifindex: int = 0, handle: int = 0, parent: int = 0, info: int = 0) -> bytes:
    return _TCMSG.pack(nl.AF_UNSPEC, ifindex, handle, parent, info)


def make_handle(major: int, minor: int) -> int:
    return ((major & 0xFFFF) << 16) | (minor & 0xFFFF)


def format_handle(handle: int) -> str:
    """As tc prints it: "1:", "ffff:", "ffff:fff1", "root"."""
    if handle == TC_H_ROOT:
        return "root"
    major, minor = handle >> 16, handle & 0xFFFF
    return f"{major:x}:" if not minor else f"{major:x}:{minor:x}"


# --- the TBF maths of the reference (and of `tc ... tbf ... latency`) -----------------


_tick_in_usec: float | None = None


def parse_psched(text: str) -> float:
    """Ticks per microsecond from /proc/net/psched's text, computed as
    iproute2 and vishvananda/netlink do (15.625 on every current kernel)."""
    parts = text.strip().split(" ")
    try:
        t2us, us2t, clock_res = (int(p, 16) for p in parts[:3])
    except ValueError:
        t2us = us2t = clock_res = 0
    if not us2t or not clock_res:
        raise OSError(f"/proc/net/psched: unexpected content {text.strip()!r}")
    if clock_res == 1000000000:
        t2us = us2t
    return t2us / us2t * (clock_res / TIME_UNITS_PER_SEC)


def tick_in_usec() -> float:
    """The kernel's ticks per microsecond (read once per process)."""
    global _tick_in_usec
    if _tick_in_usec is None:
        with open("/proc/net/psched", "rb") as f:
            _tick_in_usec = parse_psched(f.read().decode("ascii", "replace"))
    return _tick_in_usec


def go_uint32(x: float) -> int:
    """Go's uint32(x) for a float64 x on amd64: truncated to int64 (NaN, the
    infinities and values out of int64's range become 1<<63), then the low
    32 bits kept."""
    if x != x or not -9.223372036854776e18 <= x < 9.223372036854776e18:
        return 0
    return int(x) & 0xFFFFFFFF


def tbf_buffer(rate: int, burst: int, tick: float | None = None) -> int:
    """The TBF buffer in ticks for `burst` bytes at `rate` bytes/s: the time
    to send the burst, in whole microseconds, as ticks."""
    if tick is None:
        tick = tick_in_usec()
    usec = float(burst) * float(TIME_UNITS_PER_SEC) / float(rate) if rate else float("inf")
    return go_uint32(float(go_uint32(usec)) * tick)


def tbf_limit(rate: int, latency_us: float, burst: int) -> int:
    """The TBF queue limit in bytes: what `rate` sends in `latency_us`, plus
    the burst (uint32 arithmetic, as in the reference)."""
    return (go_uint32(float(rate) * latency_us / float(TIME_UNITS_PER_SEC)) + burst) & 0xFFFFFFFF


def latency_in_usec(latency_ms: float) -> float:
    return float(TIME_UNITS_PER_SEC) * (latency_ms / 1000.0)


# --- messages ----------------------------------------------------------------------------


def _ratespec(rate: int) -> bytes:
    return _RATESPEC.pack(0, 0, 0, 0, 0, rate & 0xFFFFFFFF)


def tbf_options(rate: int, buffer: int, limit: int) -> bytes:
    """The TCA_OPTIONS of a tbf qdisc (rate in bytes/s, buffer in ticks,
    limit in bytes), as vishvananda/netlink encodes it."""
    qopt = _TBF_QOPT.pack(_ratespec(rate), _ratespec(0), limit, buffer, 0)
    parts = [nl.nla(TCA_TBF_PARMS, qopt)]
    if rate >= 1 << 32:
        parts.append(nl.nla(TCA_TBF_RATE64, _U64.pack(rate)))
    return nl.nla_nest(TCA_OPTIONS, *parts)


def tbf_message(
    ifindex: int, rate: int, buffer: int, limit: int, handle: int = 0x10000, parent: int = TC_H_ROOT
) -> bytes:
    return (
        tcmsg(ifindex, handle, parent)
        + nl.nla_str(TCA_KIND, "tbf")
        + tbf_options(rate, buffer, limit)
    )


def ingress_message(ifindex: int) -> bytes:
    """The ingress qdisc, with the empty TCA_OPTIONS the reference sends."""
    return (
        tcmsg(ifindex, HANDLE_INGRESS, TC_H_INGRESS)
        + nl.nla_str(TCA_KIND, "ingress")
        + nl.nla(TCA_OPTIONS, b"")
    )


def _mirred(order: int, verdict: int, eaction: int, to_ifindex: int) -> bytes:
    parms = _MIRRED.pack(0, 0, verdict, 0, 0, eaction, to_ifindex)
    return nl.nla_nest(
        order,
        nl.nla_str(TCA_ACT_KIND, "mirred"),
        nl.nla_nest(TCA_ACT_OPTIONS, nl.nla(TCA_MIRRED_PARMS, parms)),
    )


def u32_redirect_message(
    ifindex: int,
    to_ifindex: int,
    *,
    parent: int = HANDLE_INGRESS,
    prio: int = 1,
    protocol: int = ETH_P_ALL,
    classid: int = 0x10001,
    verdicts: tuple[int, ...] = REFERENCE_REDIRECT_VERDICTS,
) -> bytes:
    """A u32 filter matching every packet (one zero key, terminal) with one
    `mirred egress redirect` action to `to_ifindex` per verdict."""
    info = (prio << 16) | int.from_bytes(protocol.to_bytes(2, "big"), "little")
    sel = _U32_SEL.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0, 0) + _U32_KEY.pack(0, 0, 0, 0)
    actions = [_mirred(i + 1, v, TCA_EGRESS_REDIR, to_ifindex) for i, v in enumerate(verdicts)]
    return (
        tcmsg(ifindex, 0, parent, info)
        + nl.nla_str(TCA_KIND, "u32")
        + nl.nla_nest(
            TCA_OPTIONS,
            nl.nla(TCA_U32_SEL, sel),
            nl.nla_u32(TCA_U32_CLASSID, classid),
            nl.nla_nest(TCA_U32_ACT, *actions),
        )
    )


# --- parsed dumps -----------------------------------------------------------------------------


class Qdisc:
    """One qdisc; `rate` (bytes/s), `limit` (bytes), `buffer` (ticks),
    `peakrate` and `mtu` are set for tbf."""

    __slots__ = (
        "buffer",
        "handle",
        "ifindex",
        "kind",
        "limit",
        "mtu",
        "parent",
        "peakrate",
        "rate",
    )

    def __init__(self) -> None:
        self.ifindex = 0
        self.handle = 0
        self.parent = 0
        self.kind = ""
        self.rate = 0
        self.peakrate = 0
        self.limit = 0
        self.buffer = 0
        self.mtu = 0

    @property
    def root(self) -> bool:
        return self.parent == TC_H_ROOT

    def __repr__(self) -> str:
        extra = (
            f", rate={self.rate}, limit={self.limit}, buffer={self.buffer}"
            if self.kind == "tbf"
            else ""
        )
        return (
            f"Qdisc({self.kind} {format_handle(self.handle)} parent "
            f"{format_handle(self.parent)} ifindex={self.ifindex}{extra})"
        )

    @classmethod
    def from_payload(cls, body) -> Qdisc:
        self = cls()
        _fam, self.ifindex, self.handle, self.parent, _info = _TCMSG.unpack_from(body)
        options = None
        for t, v in nl.iter_attrs(body, _TCMSG.size):
            if t == TCA_KIND:
                self.kind = nl.get_str(v)
            elif t == TCA_OPTIONS:
                options = v
        if self.kind == "tbf" and options is not None:
            self._tbf(options)
        return self

    def _tbf(self, options) -> None:
        rate64 = prate64 = None
        for t, v in nl.iter_attrs(options):
            if t == TCA_TBF_PARMS and len(v) >= _TBF_QOPT.size:
                rate, peak, self.limit, self.buffer, self.mtu = _TBF_QOPT.unpack_from(v)
                self.rate = _RATESPEC.unpack(rate)[5]
                self.peakrate = _RATESPEC.unpack(peak)[5]
            elif t == TCA_TBF_RATE64 and len(v) >= 8:
                rate64 = _U64.unpack_from(v)[0]
            elif t == TCA_TBF_PRATE64 and len(v) >= 8:
                prate64 = _U64.unpack_from(v)[0]
        if rate64 is not None:
            self.rate = rate64
        if prate64 is not None:
            self.peakrate = prate64


class Action:
    """One action of a filter; `eaction` and `to_ifindex` are mirred's."""

    __slots__ = ("eaction", "index", "kind", "order", "to_ifindex", "verdict")

    def __init__(self, order: int) -> None:
        self.order = order
        self.kind = ""
        self.index = 0
        self.verdict = 0
        self.eaction = 0
        self.to_ifindex = 0

    def __repr__(self) -> str:
        return (
            f"Action({self.order}: {self.kind} eaction={self.eaction} to={self.to_ifindex} "
            f"verdict={self.verdict})"
        )


class Filter:
    """One filter dump entry (u32 reports its hash table and its node as
    entries of their own); `keys` are (mask, value, off, offmask) with mask
    and value as big-endian numbers."""

    __slots__ = (
        "actions",
        "chain",
        "classid",
        "divisor",
        "handle",
        "ifindex",
        "keys",
        "kind",
        "parent",
        "prio",
        "protocol",
        "terminal",
    )

    def __init__(self) -> None:
        self.ifindex = 0
        self.handle = 0
        self.parent = 0
        self.prio = 0
        self.protocol = 0
        self.kind = ""
        self.chain = 0
        self.classid = 0
        self.divisor = 0
        self.terminal = False
        self.keys: list[tuple[int, int, int, int]] = []
        self.actions: list[Action] = []

    def __repr__(self) -> str:
        return (
            f"Filter({self.kind} parent {format_handle(self.parent)} prio {self.prio} "
            f"protocol {self.protocol:#x} handle {self.handle:#x} classid "
            f"{format_handle(self.classid)} keys={self.keys} actions={self.actions})"
        )

    @classmethod
    def from_payload(cls, body) -> Filter:
        self = cls()
        _fam, self.ifindex, self.handle, self.parent, info = _TCMSG.unpack_from(body)
        self.prio = info >> 16
        self.protocol = int.from_bytes((info & 0xFFFF).to_bytes(2, "little"), "big")
        options = None
        for t, v in nl.iter_attrs(body, _TCMSG.size):
            if t == TCA_KIND:
                self.kind = nl.get_str(v)
            elif t == TCA_CHAIN:
                self.chain = nl.get_u32(v)
            elif t == TCA_OPTIONS:
                options = v
        if self.kind == "u32" and options is not None:
            self._u32(options)
        return self

    def _u32(self, options) -> None:
        for t, v in nl.iter_attrs(options):
            if t == TCA_U32_CLASSID:
                self.classid = nl.get_u32(v)
            elif t == TCA_U32_DIVISOR:
                self.divisor = nl.get_u32(v)
            elif t == TCA_U32_SEL and len(v) >= _U32_SEL.size:
                flags, _shift, nkeys = _U32_SEL.unpack_from(v)[:3]
                self.terminal = bool(flags & TC_U32_TERMINAL)
                for i in range(nkeys):
                    off = _U32_SEL.size + i * _U32_KEY.size
                    if off + _U32_KEY.size > len(v):
                        break
                    mask, val, koff, koffmask = _U32_KEY.unpack_from(v, off)
                    self.keys.append((_be32(mask), _be32(val), koff, koffmask))
            elif t == TCA_U32_ACT:
                self.actions = [_action(order, a) for order, a in nl.iter_attrs(v)]


def _be32(native: int) -> int:
    return int.from_bytes(native.to_bytes(4, "little"), "big")


def _action(order: int, body) -> Action:
    act = Action(order)
    for t, v in nl.iter_attrs(body):
        if t == TCA_ACT_KIND:
            act.kind = nl.get_str(v)
        elif t == TCA_ACT_OPTIONS and act.kind == "mirred":
            for t2, v2 in nl.iter_attrs(v):
                if t2 == TCA_MIRRED_PARMS and len(v2) >= _MIRRED.size:
                    index, _capab, verdict, _ref, _bind, eaction, ifindex = _MIRRED.unpack_from(v2)
                    act.index, act.verdict, act.eaction, act.to_ifindex = (
                        index,
                        verdict,
                        eaction,
                        ifindex,
                    )
    return act


# --- operations -------------------------------------------------------------------------------

_CREATE = nl.NLM_F_CREATE | nl.NLM_F_EXCL


def _label(link_or_index) -> str:
    return getattr(link_or_index, "name", "") or f"index {nl.index_of(link_or_index)}"


def qdisc_add_tbf(
    sock,
    link_or_index,
    rate: int,
    buffer: int,
    limit: int,
    handle: int = 0x10000,
    parent: int = TC_H_ROOT,
) -> None:
    """`tc qdisc add dev <link> <parent> handle <handle> tbf` with `rate`
    bytes/s, `buffer` ticks and `limit` bytes (see tbf_buffer, tbf_limit)."""
    index = nl.index_of(link_or_index)
    sock.request(
        nl.RTM_NEWQDISC,
        tbf_message(index, rate, buffer, limit, handle, parent),
        f"add tbf qdisc on {_label(link_or_index)}",
        _CREATE,
        nodev=nl.LinkNotFound,
    )


def qdisc_add_ingress(sock, link_or_index) -> None:
    """`tc qdisc add dev <link> handle ffff: ingress`."""
    sock.request(
        nl.RTM_NEWQDISC,
        ingress_message(nl.index_of(link_or_index)),
        f"add ingress qdisc on {_label(link_or_index)}",
        _CREATE,
        nodev=nl.LinkNotFound,
    )


def qdisc_del(sock, link_or_index, parent: int = TC_H_ROOT, handle: int = 0) -> None:
    """Delete the qdisc at `parent` (TC_H_ROOT, or TC_H_INGRESS with handle
    HANDLE_INGRESS); its filters and classes go with it."""
    sock.request(
        nl.RTM_DELQDISC,
        tcmsg(nl.index_of(link_or_index), handle, parent),
        f"delete {format_handle(parent)} qdisc of {_label(link_or_index)}",
        nodev=nl.LinkNotFound,
    )


def qdisc_list(sock, link_or_index=None) -> list[Qdisc]:
    """The qdiscs of one link (or all), in the kernel's order (root first)."""
    index = 0 if link_or_index is None else nl.index_of(link_or_index)
    msgs = sock.dump(nl.RTM_GETQDISC, tcmsg(index), "list qdiscs")
    out = [Qdisc.from_payload(m.payload) for m in msgs if m.type == nl.RTM_NEWQDISC]
    return [q for q in out if not index or q.ifindex == index]


def filter_add_u32_redirect(
    sock,
    link_or_index,
    to_link_or_index,
    *,
    parent: int = HANDLE_INGRESS,
    prio: int = 1,
    protocol: int = ETH_P_ALL,
    classid: int = 0x10001,
    verdicts: tuple[int, ...] = REFERENCE_REDIRECT_VERDICTS,
) -> None:
    """`tc filter add dev <link> parent ffff: protocol all prio 1 u32 match
    u32 0 0 classid 1:1 action mirred egress redirect dev <to>` (twice, by
    default, as the reference installs it)."""
    sock.request(
        nl.RTM_NEWTFILTER,
        u32_redirect_message(
            nl.index_of(link_or_index),
            nl.index_of(to_link_or_index),
            parent=parent,
            prio=prio,
            protocol=protocol,
            classid=classid,
            verdicts=verdicts,
        ),
        f"add u32 redirect filter on {_label(link_or_index)}",
        _CREATE,
        nodev=nl.LinkNotFound,
    )


def filter_list(sock, link_or_index, parent: int = HANDLE_INGRESS) -> list[Filter]:
    """The filters of a link attached at `parent` (the ingress qdisc by default)."""
    index = nl.index_of(link_or_index)
    msgs = sock.dump(nl.RTM_GETTFILTER, tcmsg(index, 0, parent), "list filters")
    return [Filter.from_payload(m.payload) for m in msgs if m.type == nl.RTM_NEWTFILTER]
