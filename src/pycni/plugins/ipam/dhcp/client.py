"""The DHCPv4 client of one lease: a packet socket on the container interface.

The interface has no address yet, so the client cannot use a UDP socket: it
sends IPv4/UDP frames it builds itself (0.0.0.0:68 -> broadcast :67, to the
Ethernet broadcast address) on an AF_PACKET datagram socket bound to the
interface, and picks the server's answers out of everything IPv4 that
arrives by UDP port 68, BOOTREPLY, transaction ID and hardware address.

Exchanges follow the reference's nclient4: each message is sent up to
`TRIES` times, the wait doubling from the daemon's `-timeout`; every wait
also ends at the caller's deadline and when the lease is stopped (the
`Waker` pipe), so a DEL never waits for a server that does not answer.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time

from pycni.plugins.ipam.dhcp import packet as pk

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
ETH_BROADCAST = b"\xff" * 6
#: sends of one message before an exchange fails (nclient4's DefaultRetries)
TRIES = 3

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable


class Stopped(Exception):
    """The lease was stopped while the client waited."""


class NoResponse(OSError):
    """No matching answer within the tries (or before the deadline)."""


class Nak(Exception):
    """The server answered a REQUEST with DHCPNAK."""

    def __init__(self, nak: pk.Packet) -> None:
        msg = nak.options.get(pk.OPT_MESSAGE, b"").decode("utf-8", "replace")
        text = "server rejected request with Nak"
        super().__init__(f"{text} (msg: {msg})" if msg else text)


class Waker:
    """A pipe a lease's thread waits on besides its socket: `stop()` makes it
    readable for good, `poke()` once (the reference's "check" signal)."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.stopping = False
        self._closed = False
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self._r

    def poke(self) -> None:
        with self._lock:  # never write to a closed (and maybe reused) fd number
            if self._closed:
                return
            try:
                os.write(self._w, b"c")
            except OSError:  # full: a wake-up is pending anyway
                pass

    def stop(self) -> None:
        self.stopping = True
        self.poke()

    def drain(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except OSError:
            pass

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`; a poke or stop ends it early. Raises Stopped."""
        if self.stopping:
            raise Stopped()
        if seconds > 0:
            select.select([self._r], [], [], min(seconds, 3600.0))
        self.drain()
        if self.stopping:
            raise Stopped()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._r, self._w):
                try:
                    os.close(fd)
                except OSError:
                    pass


class Client:
    """A packet socket on `ifname` of the calling thread's netns (create it
    inside the container's netns); use as a context manager."""

    def __init__(
        self,
        ifname: str,
        mac: bytes,
        timeout: float,
        waker: Waker,
        *,
        broadcast: bool = False,
    ) -> None:
        self.ifname = ifname
        self.mac = mac
        self.timeout = timeout
        self.waker = waker
        self.broadcast = broadcast
        #: the link-layer source of the last answer (the server, or its relay)
        self.reply_mac = b""
        self.sock = socket.socket(
            socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.htons(ETH_P_IP)
        )
        try:
            self.sock.bind((ifname, ETH_P_IP))
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- sending and receiving ------------------------------------------------------------

    def send(
        self,
        p: pk.Packet,
        dst: bytes = pk.BROADCAST,
        src: bytes = pk.ZERO,
        mac: bytes = ETH_BROADCAST,
    ) -> None:
        frame = pk.udp_frame(p.encode(), src, dst, pk.CLIENT_PORT, pk.SERVER_PORT)
        self.sock.sendto(frame, (self.ifname, ETH_P_IP, 0, 0, mac))

    def _replies(self, xid: int) -> list[tuple[pk.Packet, bytes]]:
        """Every queued answer to `xid`, with the MAC it came from (other
        traffic is dropped)."""
        out: list[tuple[pk.Packet, bytes]] = []
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return out
            if len(addr) > 2 and addr[2] == PACKET_OUTGOING:
                continue
            frame = pk.parse_udp_frame(data)
            if frame is None or frame[3] != pk.CLIENT_PORT:
                continue
            try:
                p = pk.Packet.decode(frame[4])
            except pk.MalformedPacket:
                continue
            if p.op == pk.BOOTREPLY and p.xid == xid and p.chaddr[:6] == self.mac[:6]:
                out.append((p, bytes(addr[4]) if len(addr) > 4 else b""))

    def exchange(
        self, p: pk.Packet, match: Callable[[pk.Packet], bool], deadline: float
    ) -> pk.Packet:
        """Send `p` and return the first answer `match` accepts; resend after
        each wait, the wait doubling (nclient4's SendAndRead)."""
        wait = self.timeout
        for _ in range(TRIES):
            if time.monotonic() >= deadline:
                break
            self.send(p)
            until = min(time.monotonic() + wait, deadline)
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    break
                sock_fd, wake_fd = self.sock.fileno(), self.waker.fileno()
                ready, _, _ = select.select([sock_fd, wake_fd], [], [], left)
                if wake_fd in ready:
                    self.waker.drain()
                    if self.waker.stopping:
                        raise Stopped()
                if sock_fd in ready:
                    for reply, mac in self._replies(p.xid):
                        if match(reply):
                            self.reply_mac = mac
                            return reply
            wait *= 2
        name = pk.TYPE_NAMES.get(p.message_type, "message")
        raise NoResponse(f"no answer to DHCP{name} on {self.ifname}")

    # --- the protocol ---------------------------------------------------------------------

    def request(
        self, client_id: bytes, options: list[tuple[int, bytes]], deadline: float
    ) -> tuple[pk.Packet, pk.Packet]:
        """DISCOVER, OFFER, REQUEST, ACK: (offer, ack). Nak if refused."""
        discover = pk.discover(self.mac, client_id, options, self.broadcast)
        offer = self.exchange(discover, _is(pk.OFFER), deadline)
        request = pk.request_from_offer(offer, self.mac, client_id, options, discover.flags)
        server = offer.server_id
        ack = self.exchange(request, _answer_from(server), deadline)
        if ack.message_type == pk.NAK:
            raise Nak(ack)
        return offer, ack

    def renew(
        self, ack: pk.Packet, client_id: bytes, options: list[tuple[int, bytes]], deadline: float
    ) -> pk.Packet:
        """A RENEWING REQUEST (ciaddr set), broadcast as the reference's client
        sends it; the new ACK. Nak if refused."""
        request = pk.renew_from_ack(ack, self.mac, client_id, options)
        reply = self.exchange(request, _answer_from(ack.server_id), deadline)
        if reply.message_type == pk.NAK:
            raise Nak(reply)
        return reply

    def release(self, ack: pk.Packet, client_id: bytes, server_mac: bytes = b"") -> None:
        """DHCPRELEASE to the server identifier, port 67 (no answer comes),
        from the leased address: a unicast IP packet from 0.0.0.0 is a
        martian to the server's kernel, which drops it. Sent to the MAC the
        ACK came from when known, else to the Ethernet broadcast address."""
        p = pk.release_from_ack(ack, self.mac, client_id)
        mac = server_mac if len(server_mac) == 6 else ETH_BROADCAST
        if ack.server_id is None:
            self.send(p, pk.BROADCAST, pk.ZERO, ETH_BROADCAST)
        else:
            self.send(p, ack.server_id, ack.yiaddr, mac)


def _is(kind: int) -> Callable[[pk.Packet], bool]:
    return lambda p: p.message_type == kind


def _answer_from(server: bytes | None) -> Callable[[pk.Packet], bool]:
    """ACK or NAK, from the server that made the offer when it named itself."""

    def match(p: pk.Packet) -> bool:
        if p.message_type not in (pk.ACK, pk.NAK):
            return False
        return server is None or p.server_id is None or p.server_id == server

    return match
