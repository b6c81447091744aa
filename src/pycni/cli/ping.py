"""ICMP echo from inside a network namespace, so the demo needs no ping binary."""

from __future__ import annotations

import os
import socket
import struct
import time

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(netns: str, address: str, count: int = 3, timeout: float = 1.0) -> list[float]:
    """Send `count` echo requests from `netns`; return the round-trip times (s)."""
    from pycni.kernel import netns as nsmod

    with nsmod.enter(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    rtts = []
    try:
        sock.settimeout(timeout)
        for seq in range(1, count + 1):
            header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
            payload = b"pycni-demo-ping"
            packet = (
                struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, _checksum(header + payload), ident, seq)
                + payload
            )
            sent = time.monotonic()
            sock.sendto(packet, (address, 0))
            rtt = _await_reply(sock, ident, seq, sent, timeout)
            if rtt is not None:
                rtts.append(rtt)
    finally:
        sock.close()
    return rtts


def _await_reply(
    sock: socket.socket, ident: int, seq: int, sent: float, timeout: float
) -> float | None:
    deadline = sent + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(2048)
        except socket.timeout:  # an OSError, not TimeoutError, before 3.10
            return None
        ihl = (data[0] & 0x0F) * 4
        kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
        if kind == ICMP_ECHO_REPLY and rid == ident and rseq == seq:
            return time.monotonic() - sent
    return None
