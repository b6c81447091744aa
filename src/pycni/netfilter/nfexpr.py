"""nf_tables rule expressions, built the way `nft` builds them.

Each helper returns the list of encoded expressions for one match or
statement, and a rule is their concatenation. The encodings follow what
`nft -d netlink` shows for the same text (the implicit `meta nfproto`
dependency in inet tables, byte-aligned prefixes loaded short, other
prefixes masked by a bitwise), so `nft list ruleset` prints our rules
exactly as it prints the reference's.
"""

from __future__ import annotations

import struct

from pycni.kernel.netlink import NLA_F_NESTED, nla, nla_str
from pycni.spec.ipnet import IPNet, parse_mac

_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE32S = struct.Struct(">i")
_BE64 = struct.Struct(">Q")
_U32 = struct.Struct("=I")

REG_VERDICT = 0
REG_1 = 1
REG_2 = 2

# expression attributes (linux/netfilter/nf_tables.h)
_LIST_ELEM = 1
_EXPR_NAME = 1
_EXPR_DATA = 2
_DATA_VALUE = 1
_DATA_VERDICT = 2
_VERDICT_CODE = 1
_VERDICT_CHAIN = 2

META_IIFNAME = 6
META_OIFNAME = 7
META_NFPROTO = 15
META_L4PROTO = 16
META_MARK = 3

BASE_LL = 0
BASE_NETWORK = 1
BASE_TRANSPORT = 2

CMP_EQ = 0
CMP_NEQ = 1

NF_DROP = 0
NF_ACCEPT = 1
NFT_CONTINUE = -1
NFT_RETURN = -5
NFT_JUMP = -3
NFT_GOTO = -4
VERDICTS = {
    "drop": NF_DROP,
    "accept": NF_ACCEPT,
    "continue": NFT_CONTINUE,
    "return": NFT_RETURN,
    "jump": NFT_JUMP,
    "goto": NFT_GOTO,
}

NFPROTO = {4: 2, 6: 10}
L4PROTO = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}
CT_STATES = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
RTN_LOCAL = 2
IFNAMSIZ = 16

_ADDR = {4: {"saddr": (12, 4), "daddr": (16, 4)}, 6: {"saddr": (8, 16), "daddr": (24, 16)}}


def expr(name: str, *attrs: bytes) -> bytes:
    """One NFTA_LIST_ELEM: the expression's name and its data attributes."""
    return nla(
        _LIST_ELEM | NLA_F_NESTED,
        nla_str(_EXPR_NAME, name) + nla(_EXPR_DATA | NLA_F_NESTED, b"".join(attrs)),
    )


def _u32(atype: int, v: int) -> bytes:
    return nla(atype, _BE32.pack(v))


def _value(atype: int, data: bytes) -> bytes:
    return nla(atype | NLA_F_NESTED, nla(_DATA_VALUE, data))


# --- primitives ----------------------------------------------------------------------------


def meta(key: int, dreg: int = REG_1) -> bytes:
    return expr("meta", _u32(2, key), _u32(1, dreg))


def payload(base: int, offset: int, length: int, dreg: int = REG_1) -> bytes:
    return expr("payload", _u32(1, dreg), _u32(2, base), _u32(3, offset), _u32(4, length))


def cmp(data: bytes, op: int = CMP_EQ, sreg: int = REG_1) -> bytes:
    return expr("cmp", _u32(1, sreg), _u32(2, op), _value(3, data))


def bitwise(mask: bytes, xor: bytes, sreg: int = REG_1, dreg: int = REG_1) -> bytes:
    return expr(
        "bitwise", _u32(1, sreg), _u32(2, dreg), _u32(3, len(mask)), _value(4, mask), _value(5, xor)
    )


def immediate(data: bytes, dreg: int = REG_1) -> bytes:
    return expr("immediate", _u32(1, dreg), _value(2, data))


def lookup(set_name: str, sreg: int = REG_1, dreg: int | None = None) -> bytes:
    attrs = [nla_str(1, set_name), _u32(2, sreg)]
    if dreg is not None:
        attrs.append(_u32(3, dreg))
    return expr("lookup", *attrs)


def counter() -> list[bytes]:
    return [expr("counter", nla(1, _BE64.pack(0)), nla(2, _BE64.pack(0)))]


# --- matches -------------------------------------------------------------------------------


def nfproto(family: int) -> list[bytes]:
    """The `meta nfproto` dependency nft adds before an ip/ip6 match in inet tables."""
    return [meta(META_NFPROTO), cmp(bytes((NFPROTO[family],)))]


def addr(table_family: str, field: str, text: str, neq: bool = False) -> list[bytes]:
    """`ip|ip6 saddr|daddr [!=] <address or CIDR>`."""
    net = IPNet.parse(text if "/" in text else text + ("/128" if ":" in text else "/32"))
    offset, size = _ADDR[net.family][field]
    raw = net.network.to_bytes(size, "big")
    op = CMP_NEQ if neq else CMP_EQ
    out = nfproto(net.family) if table_family == "inet" else []
    bits = net.prefixlen
    if bits == size * 8:
        out += [payload(BASE_NETWORK, offset, size), cmp(raw, op)]
    elif bits and bits % 8 == 0:
        out += [payload(BASE_NETWORK, offset, bits // 8), cmp(raw[: bits // 8], op)]
    else:
        mask = (((1 << bits) - 1) << (size * 8 - bits)).to_bytes(size, "big")
        out += [
            payload(BASE_NETWORK, offset, size),
            bitwise(mask, bytes(size)),
            cmp(raw, op),
        ]
    return out


def l4_dport(proto: str, port: int) -> list[bytes]:
    """`tcp|udp|sctp dport <port>`."""
    return [
        meta(META_L4PROTO),
        cmp(bytes((L4PROTO[proto],))),
        payload(BASE_TRANSPORT, 2, 2),
        cmp(_BE16.pack(port)),
    ]


def _ifname(key: int, name: str, neq: bool) -> list[bytes]:
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) >= IFNAMSIZ:
        raise ValueError(f"invalid interface name {name!r}")
    return [meta(key), cmp(raw.ljust(IFNAMSIZ, b"\0"), CMP_NEQ if neq else CMP_EQ)]


def iifname(name: str, neq: bool = False) -> list[bytes]:
    return _ifname(META_IIFNAME, name, neq)


def oifname(name: str, neq: bool = False) -> list[bytes]:
    return _ifname(META_OIFNAME, name, neq)


def fib_daddr_local() -> list[bytes]:
    """`fib daddr type local`."""
    fib = expr("fib", _u32(1, REG_1), _u32(2, 3), _u32(3, 2))  # result addrtype, flag daddr
    return [fib, cmp(_U32.pack(RTN_LOCAL))]


def ether_saddr(mac: str) -> list[bytes]:
    raw = bytes(int(b, 16) for b in parse_mac(mac).split(":"))
    if len(raw) != 6:
        raise ValueError(f"not an Ethernet MAC: {mac!r}")
    return [payload(BASE_LL, 6, 6), cmp(raw)]


def ct_state(*states: str) -> list[bytes]:
    """`ct state <s1>,<s2>`: any of the states."""
    bits = 0
    for s in states:
        bits |= CT_STATES[s]
    ct = expr("ct", _u32(1, REG_1), _u32(2, 0))  # dreg, key state
    return [ct, bitwise(_U32.pack(bits), bytes(4)), cmp(bytes(4), CMP_NEQ)]


# --- statements ----------------------------------------------------------------------------


def verdict(kind: str, chain: str | None = None) -> list[bytes]:
    """accept, drop, return, continue, or jump/goto <chain>."""
    attrs = nla(_VERDICT_CODE, _BE32S.pack(VERDICTS[kind]))
    if kind in ("jump", "goto"):
        if not chain:
            raise ValueError(f"{kind} needs a chain")
        attrs += nla_str(_VERDICT_CHAIN, chain)
    # no NLA_F_NESTED inside: the kernel dumps these nests without it, and
    # `nftables.same_exprs` compares what we would write with what it dumps
    data = nla(2 | NLA_F_NESTED, nla(_DATA_VERDICT, attrs))
    return [expr("immediate", _u32(1, REG_VERDICT), data)]


def masquerade() -> list[bytes]:
    return [expr("masq")]


def dnat(ip: str, port: int) -> list[bytes]:
    """`dnat to <ip>:<port>` (`[ip6]:port`)."""
    net = IPNet.parse(ip + ("/128" if ":" in ip else "/32"))
    size = 4 if net.family == 4 else 16
    return [
        immediate(net.network.to_bytes(size, "big"), REG_1),
        immediate(_BE16.pack(port), REG_2),
        expr(
            "nat",
            _u32(1, 1),  # NFT_NAT_DNAT
            _u32(2, NFPROTO[net.family]),
            _u32(3, REG_1),
            _u32(5, REG_2),
            _u32(7, 2),  # NF_NAT_RANGE_PROTO_SPECIFIED
        ),
    ]
