"""Traffic control (pycni.kernel.tc): the messages byte for byte, the TBF
maths, and the qdiscs and filters they make as `tc` reads them back.

The golden messages are what /usr/lib/cni/bandwidth (1.1.1, through
vishvananda/netlink) sent for a veth of ifindex 2 and an IFB of ifindex 4,
ingress 8 Mbit/s burst 80000 bits and egress 16 Mbit/s burst 160000 bits,
copied from `strace -e trace=sendto -e write=all` (the nlmsghdr left out).
tests/plugins/bandwidth/test_bandwidth_vs_go.py repeats that capture live.
"""

from __future__ import annotations

import errno
import json
import math
import secrets
import subprocess

import pytest

from pycni.kernel import netlink as nl
from pycni.kernel import tc
from pycni.kernel.netlink import LinkNotFound, NetlinkError

GO_INGRESS_TBF = bytes.fromhex(
    "000000000200000000000100ffffffff0000000008000100746266002c000200"
    "28000100000000000000000040420f00000000000000000000000000b8880000"
    "5a62020000000000"
)
GO_EGRESS_TBF = bytes.fromhex(
    "000000000400000000000100ffffffff0000000008000100746266002c000200"
    "28000100000000000000000080841e0000000000000000000000000070110100"
    "5a62020000000000"
)
GO_INGRESS_QDISC = bytes.fromhex(
    "00000000020000000000fffff1ffffff000000000c000100696e67726573730004000200"
)
GO_REDIRECT_FILTER = bytes.fromhex(
    "0000000002000000000000000000ffff0003010008000100753332009c000200"
    "2400050001000100000000000000000000000000000000000000000000000000"
    "0000000008000100010001006c000700340001000b0001006d69727265640000"
    "2400020020000200000000000000000004000000000000000000000001000000"
    "04000000340002000b0001006d69727265640000240002002000020000000000"
    "000000000000000000000000000000000100000004000000"
)
PSCHED = "000003e8 00000040 000f4240 3b9aca00\n"
CREATE = nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL


@pytest.fixture
def netns_options() -> dict:
    return {"prefix": "bw"}


# --- the TBF maths ----------------------------------------------------------------------------


def test_tick_from_psched():
    assert tc.parse_psched(PSCHED) == 15.625
    # the "compatibility" case of iproute2: a 1 GHz clock_res means t2us = us2t
    assert tc.parse_psched("00000001 00000040 3b9aca00 3b9aca00") == 1000.0
    for bad in ("", "zz 1 2 3", "1 0 1"):
        with pytest.raises(OSError):
            tc.parse_psched(bad)
    with open("/proc/net/psched") as f:
        assert tc.tick_in_usec() == tc.parse_psched(f.read())


def test_go_uint32_conversion():
    assert tc.go_uint32(3.99) == 3
    assert tc.go_uint32(2.0**32 + 3.5) == 3
    for x in (math.inf, math.nan, 2.0**63, 1e300):
        assert tc.go_uint32(x) == 0


@pytest.mark.parametrize(
    ("rate", "burst", "buffer", "limit"),
    [
        (1000000, 10000, 156250, 35000),  # the golden ingress message
        (2000000, 20000, 156250, 70000),  # the golden egress message
        (1, 1, 15625000, 1),  # the reference's tests: rate 8 bits, burst 8 bits
        (2, 1, 7812500, 1),
        (1000, 10, 156250, 35),
        (5 * 10**9, 10**6, 3125, 125000000 + 10**6),
        (0, 10, 0, 10),  # Go: uint32(+Inf) is 0 on amd64
        (12_500_000_000, 10_000, 0, (312_500_000 + 10_000) & 0xFFFFFFFF),  # under 1 us: 0
    ],
)
def test_tbf_buffer_and_limit(rate, burst, buffer, limit):
    assert tc.tbf_buffer(rate, burst, 15.625) == buffer
    assert tc.tbf_limit(rate, tc.latency_in_usec(25), burst) == limit


# --- messages, byte for byte ------------------------------------------------------------------


def test_messages_are_the_references():
    assert tc.tbf_message(2, 1000000, 156250, 35000) == GO_INGRESS_TBF
    assert tc.tbf_message(4, 2000000, 156250, 70000) == GO_EGRESS_TBF
    assert tc.ingress_message(2) == GO_INGRESS_QDISC
    assert tc.u32_redirect_message(2, 4) == GO_REDIRECT_FILTER


def test_rate64_from_4gb_per_second_as_vishvananda_netlink():
    rate = (1 << 32) + 5
    msg = tc.tbf_message(2, rate, 10, 20)
    opts = nl.parse_attrs(msg, 20 + 8)[tc.TCA_OPTIONS]
    attrs = nl.parse_attrs(opts)
    assert sorted(attrs) == [tc.TCA_TBF_PARMS, tc.TCA_TBF_RATE64]
    assert nl.get_u32(attrs[tc.TCA_TBF_PARMS][8:12]) == 5  # uint32(rate): truncated
    assert int.from_bytes(attrs[tc.TCA_TBF_RATE64], "little") == rate
    assert tc.TCA_TBF_RATE64 not in nl.parse_attrs(
        nl.parse_attrs(tc.tbf_message(2, (1 << 32) - 1, 10, 20), 28)[tc.TCA_OPTIONS]
    )


def test_requests_and_flags(fake):
    rt, sock = fake
    rt.qdisc_add_tbf(2, 1000000, 156250, 35000)
    rt.qdisc_add_ingress(2)
    rt.filter_add_u32_redirect(2, 4)
    rt.qdisc_del(2, tc.TC_H_INGRESS, tc.HANDLE_INGRESS)
    sent = [(t, f, p) for t, f, _seq, p in sock.sent]
    assert sent == [
        (nl.RTM_NEWQDISC, CREATE, GO_INGRESS_TBF),
        (nl.RTM_NEWQDISC, CREATE, GO_INGRESS_QDISC),
        (nl.RTM_NEWTFILTER, CREATE, GO_REDIRECT_FILTER),
        (nl.RTM_DELQDISC, nl.NLM_F_REQUEST | nl.NLM_F_ACK, tc.tcmsg(2, 0xFFFF0000, 0xFFFFFFF1)),
    ]


def test_handles():
    assert tc.make_handle(0xFFFF, 0) == tc.HANDLE_INGRESS
    assert [tc.format_handle(h) for h in (0x10000, 0xFFFF0000, 0xFFFFFFF1, tc.TC_H_ROOT)] == [
        "1:",
        "ffff:",
        "ffff:fff1",
        "root",
    ]


# --- against the kernel, `tc` as the witness ------------------------------------------------


def tc_json(*args: str) -> list:
    out = subprocess.run(["tc", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def tc_run(*args: str) -> None:
    subprocess.run(["tc", *args], capture_output=True, text=True, check=True)


def device(nl_sock, tag: str) -> object:
    """A link to put qdiscs on: an IFB (this kernel may have no dummy)."""
    name = f"bw{tag}{secrets.token_hex(3)}"
    nl_sock.link_add("ifb", name, up=True)
    return nl_sock.link_get(name)


@pytest.mark.parametrize(
    ("rate", "burst"), [(1000000, 10000), (125000, 1500), (12_500_000, 100_000), (1, 1)]
)
def test_tbf_is_what_tc_makes(nl, rate, burst):
    """Ours on one link, `tc ... tbf rate R burst B latency 25ms` on another:
    tc reports the same rate, burst and latency, and the kernel keeps the
    same rate, limit and buffer."""
    ours, theirs = device(nl, "o"), device(nl, "t")
    buffer = tc.tbf_buffer(rate, burst)
    limit = tc.tbf_limit(rate, tc.latency_in_usec(25), burst)
    nl.qdisc_add_tbf(ours, rate, buffer, limit)
    tc_tbf(theirs.name, rate, burst)
    (a,) = tc_json("qdisc", "show", "dev", ours.name)
    (b,) = tc_json("qdisc", "show", "dev", theirs.name)
    assert (a["kind"], a["handle"], a["root"]) == ("tbf", "1:", True)
    for key in ("rate", "burst", "lat"):
        assert a["options"][key] == b["options"][key], key
    (qa,) = nl.qdisc_list(ours)
    (qb,) = nl.qdisc_list(theirs)
    assert (qa.kind, qa.handle, qa.parent, qa.ifindex) == ("tbf", 0x10000, tc.TC_H_ROOT, ours.index)
    assert (qa.rate, qa.limit, qa.buffer) == (rate, limit, buffer)
    assert (qb.rate, qb.limit, qb.buffer) == (qa.rate, qa.limit, qa.buffer)


def test_tbf_beyond_4gb_per_second(nl):
    """40 Gbit/s: the rate goes in TCA_TBF_RATE64 and comes back whole. tc
    also sends the burst (TCA_TBF_BURST), from which the kernel recomputes
    the buffer with its approximated rate: here a tick less than the buffer
    the reference (and pycni) computes and sends."""
    rate, burst = 5 * 10**9, 10**6
    ours, theirs = device(nl, "o"), device(nl, "t")
    nl.qdisc_add_tbf(ours, rate, 3125, 126_000_000)
    tc_tbf(theirs.name, rate, burst)
    (qa,) = nl.qdisc_list(ours)
    (qb,) = nl.qdisc_list(theirs)
    assert (qa.rate, qa.limit, qa.buffer) == (rate, 126_000_000, 3125)
    assert (qb.rate, qb.limit) == (rate, 126_000_000) and 3124 <= qb.buffer <= 3125
    (a,) = tc_json("qdisc", "show", "dev", ours.name)
    assert (a["options"]["rate"], a["options"]["burst"], a["options"]["lat"]) == (
        rate,
        burst,
        25000,
    )


def tc_tbf(dev: str, rate: int, burst: int) -> None:
    tc_run("qdisc", "add", "dev", dev, "root", "handle", "1:", "tbf",
           "rate", f"{rate * 8}bit", "burst", str(burst), "latency", "25ms")  # fmt: skip


def test_ingress_redirect_to_ifb(nl):
    dev = device(nl, "d")
    ifb_name = "bwi" + secrets.token_hex(3)
    nl.link_add("ifb", ifb_name, mtu=1400, up=True, txqlen=0)
    ifb = nl.link_get(ifb_name)
    assert (ifb.kind, ifb.mtu, ifb.txqlen, ifb.up) == ("ifb", 1400, 0, True)

    nl.qdisc_add_ingress(dev)
    nl.filter_add_u32_redirect(dev, ifb)
    (q,) = tc_json("qdisc", "show", "dev", dev.name, "ingress")
    assert (q["kind"], q["handle"], q["parent"]) == ("ingress", "ffff:", "ffff:fff1")
    node = [
        f
        for f in tc_json("filter", "show", "dev", dev.name, "ingress")
        if "actions" in f.get("options", {})
    ]
    (f,) = node
    assert (f["protocol"], f["pref"], f["kind"]) == ("all", 1, "u32")
    assert f["options"]["flowid"] == "1:1"
    assert f["options"]["match"] == {"value": "0", "mask": "0", "offmask": "", "off": 0}
    assert [
        (a["kind"], a["mirred_action"], a["direction"], a["to_dev"], a["control_action"]["type"])
        for a in f["options"]["actions"]
    ] == [
        ("mirred", "redirect", "egress", ifb_name, "stolen"),
        ("mirred", "redirect", "egress", ifb_name, "pass"),
    ]

    ingress = [q for q in nl.qdisc_list(dev) if q.kind == "ingress"]
    assert [(q.handle, q.parent) for q in ingress] == [(tc.HANDLE_INGRESS, tc.TC_H_INGRESS)]
    (parsed,) = [f for f in nl.filter_list(dev) if f.actions]
    assert (parsed.kind, parsed.prio, parsed.protocol, parsed.classid) == (
        "u32",
        1,
        0x0003,
        0x10001,
    )
    assert parsed.terminal and parsed.keys == [(0, 0, 0, 0)]
    assert [(a.kind, a.eaction, a.to_ifindex, a.verdict) for a in parsed.actions] == [
        ("mirred", tc.TCA_EGRESS_REDIR, ifb.index, tc.TC_ACT_STOLEN),
        ("mirred", tc.TCA_EGRESS_REDIR, ifb.index, tc.TC_ACT_OK),
    ]

    nl.qdisc_del(dev, tc.TC_H_INGRESS, tc.HANDLE_INGRESS)
    assert tc_json("filter", "show", "dev", dev.name, "ingress") == []
    assert [q for q in nl.qdisc_list(dev) if q.kind == "ingress"] == []


def test_qdisc_list_of_all_links_and_of_one(nl):
    a, b = device(nl, "a"), device(nl, "b")
    nl.qdisc_add_tbf(a, 1000, 156250, 35)
    nl.qdisc_add_tbf(b, 2000, 156250, 60)
    everything = [(q.ifindex, q.rate) for q in nl.qdisc_list() if q.kind == "tbf"]
    assert sorted(everything) == sorted([(a.index, 1000), (b.index, 2000)])
    assert [q.rate for q in nl.qdisc_list(b) if q.kind == "tbf"] == [2000]


def test_errors(nl):
    dev = device(nl, "e")
    with pytest.raises(NetlinkError) as info:
        nl.qdisc_del(dev, tc.TC_H_ROOT, 0x10000)
    assert info.value.errno in (errno.ENOENT, errno.EINVAL)
    nl.qdisc_add_tbf(dev, 1000, 156250, 35)
    with pytest.raises(NetlinkError) as info:
        nl.qdisc_add_tbf(dev, 1000, 156250, 35)
    assert info.value.errno == errno.EEXIST
    assert dev.name in str(info.value)
    with pytest.raises(NetlinkError) as info:
        nl.qdisc_add_tbf(device(nl, "z"), 1000, 0, 35)  # a zero buffer: no burst at all
    assert info.value.errno == errno.EINVAL
    with pytest.raises(LinkNotFound):
        nl.qdisc_add_ingress(999999)
    nl.qdisc_del(dev, tc.TC_H_ROOT, 0x10000)
    assert [q.kind for q in nl.qdisc_list(dev)] != ["tbf"]
