"""A fake netlink socket for encoder and protocol unit tests."""

from __future__ import annotations

import struct

from pycni.kernel import netlink as nlmod

_HDR = struct.Struct("=IHHII")


def nlmsg(mtype: int, flags: int, seq: int, payload: bytes) -> bytes:
    n = 16 + len(payload)
    return _HDR.pack(n, mtype, flags, seq, 0) + payload + b"\0" * (-n & 3)


def ack(seq: int, err: int = 0, ext_msg: str | None = None) -> bytes:
    body = struct.pack("=i", -err) + _HDR.pack(16, 0, 0, seq, 0)
    flags = nlmod.NLM_F_CAPPED
    if ext_msg is not None:
        flags |= nlmod.NLM_F_ACK_TLVS
        body += nlmod.nla_str(nlmod.NLMSGERR_ATTR_MSG, ext_msg)
    return nlmsg(nlmod.NLMSG_ERROR, flags, seq, body)


class FakeSocket:
    """Records every request; answers with an ack unless `script` says otherwise.

    script: a list of callables f(seq, mtype, flags, payload) -> list[bytes]
    (the datagrams to deliver), consumed one per request.
    """

    def __init__(self, script=None) -> None:
        self.sent: list[tuple[int, int, int, bytes]] = []
        self.script = list(script or [])
        self.queue: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> int:
        n, mtype, flags, seq, _pid = _HDR.unpack_from(data)
        assert n == len(data)
        payload = data[16:]
        self.sent.append((mtype, flags, seq, payload))
        if self.script:
            self.queue.extend(self.script.pop(0)(seq, mtype, flags, payload))
        else:
            self.queue.append(ack(seq))
        return len(data)

    def recv_into(self, buf, nbytes=0, flags=0) -> int:
        data = self.queue.pop(0)
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.closed = True

    def fileno(self) -> int:
        return -1

    @property
    def last(self) -> tuple[int, int, int, bytes]:
        return self.sent[-1]
