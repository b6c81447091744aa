"""Conntrack entries over ctnetlink: delete the flows a new port mapping
would otherwise never see (utils.DeleteConntrackEntriesForDstPort).

A UDP "connection" to a host port that had no mapping yet stays in the
conntrack table, un-NATed, for as long as packets keep coming; portmap
deletes such entries after installing its rules.
"""

from __future__ import annotations

import _socket as socket
import struct

from pycni.kernel.netlink import (
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    iter_attrs,
    nla,
)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
CTA_TUPLE_ORIG = 1
CTA_ZONE = 18
CTA_TUPLE_PROTO = 2
CTA_PROTO_NUM = 1
CTA_PROTO_DST_PORT = 3
PROTO_UDP = 17

_HDR = struct.Struct("=IHHII")
_GEN = struct.Struct("=BBH")
_I32 = struct.Struct("=i")
_AF = {4: 2, 6: 10}


def _frame(msg: int, flags: int, family: int, payload: bytes, seq: int) -> bytes:
    body = _GEN.pack(_AF[family], 0, 0) + payload
    mtype = (NFNL_SUBSYS_CTNETLINK << 8) | msg
    return _HDR.pack(16 + len(body), mtype, flags | NLM_F_REQUEST, seq, 0) + body


def _messages(sock, seq: int):
    """Yield (type, body) of the answers to `seq` until DONE or an ack/error."""
    while True:
        data = sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            ln, t, _f, mseq, _pid = _HDR.unpack_from(data, off)
            if ln < 16:
                return
            body = memoryview(data)[off + 16 : off + ln]
            off += (ln + 3) & ~3
            if mseq != seq:
                continue
            if t == NLMSG_DONE:
                return
            if t == NLMSG_ERROR:
                err = -_I32.unpack_from(body)[0]
                if err:
                    raise OSError(err, f"conntrack: {__import__('os').strerror(err)}")
                return
            yield t, body


def delete_for_dst_port(family: int, port: int, proto: int = PROTO_UDP) -> int:
    """Delete the entries of `proto` whose original destination port is
    `port`; returns how many were deleted (entries gone meanwhile are fine)."""
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER
    )
    try:
        sock.bind((0, 0))
        sock.send(_frame(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, b"", 1))
        doomed = []
        for _t, body in _messages(sock, 1):
            attrs = dict(iter_attrs(body, 4))
            orig = attrs.get(CTA_TUPLE_ORIG)
            if orig is None:
                continue
            tproto = dict(iter_attrs(dict(iter_attrs(orig)).get(CTA_TUPLE_PROTO, b"")))
            num = tproto.get(CTA_PROTO_NUM)
            dport = tproto.get(CTA_PROTO_DST_PORT)
            if num is None or dport is None or num[0] != proto:
                continue
            if struct.unpack(">H", bytes(dport))[0] != port:
                continue
            payload = nla(CTA_TUPLE_ORIG | NLA_F_NESTED, bytes(orig))
            if CTA_ZONE in attrs:
                payload += nla(CTA_ZONE, bytes(attrs[CTA_ZONE]))
            doomed.append(payload)
        deleted = 0
        for seq, payload in enumerate(doomed, start=2):
            sock.send(_frame(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, family, payload, seq))
            try:
                for _ in _messages(sock, seq):
                    pass
                deleted += 1
            except OSError as err:
                if err.errno != 2:  # ENOENT: it expired meanwhile
                    raise
        return deleted
    finally:
        sock.close()
