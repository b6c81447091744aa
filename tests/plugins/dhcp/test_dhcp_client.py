"""The packet-socket client (client.py) against a scripted server: a veth
pair in a sandbox netns, our client on one end, a raw socket answering on
the other. Covers what dnsmasq will not do on demand: answers for other
transactions, NAK, silence, and a stop in the middle of a wait."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pycni.plugins.ipam.dhcp import packet as pk
from pycni.plugins.ipam.dhcp.client import ETH_P_IP, Client, Nak, NoResponse, Stopped, Waker

from support.sandbox import entered, ip

SERVER = bytes([198, 18, 78, 1])
OFFERED = bytes([198, 18, 78, 20])
CID = pk.client_id_option("ctr/net/dh0")


class Server:
    """Answers each DHCP message it reads on `ifname` with `script(p)`:
    a list of packets sent back from SERVER:67 to broadcast:68."""

    def __init__(self, ifname: str, script: Callable[[pk.Packet], list[pk.Packet]]) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.sock.bind((ifname, ETH_P_IP))
        self.sock.settimeout(0.2)
        self.ifname = ifname
        self.script = script
        # packet, IP source, IP destination, packet type (0 ours, 1 broadcast)
        self.seen: list[tuple[pk.Packet, bytes, bytes, int]] = []
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done:
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if addr[2] == 4:  # our own answers
                continue
            frame = pk.parse_udp_frame(data)
            if frame is None or frame[3] != pk.SERVER_PORT:
                continue
            p = pk.Packet.decode(frame[4])
            self.seen.append((p, frame[0], frame[1], addr[2]))
            for answer in self.script(p):
                out = pk.udp_frame(answer.encode(), SERVER, pk.BROADCAST, 67, 68)
                self.sock.sendto(out, (self.ifname, ETH_P_IP, 0, 0, b"\xff" * 6))

    def close(self) -> None:
        self.done = True
        self.thread.join()
        self.sock.close()


def reply(to: pk.Packet, kind: int, xid: int | None = None, **options: bytes) -> pk.Packet:
    p = pk.Packet(pk.BOOTREPLY, to.xid if xid is None else xid, to.chaddr, yiaddr=OFFERED)
    p.options[pk.OPT_MESSAGE_TYPE] = bytes([kind])
    p.options[pk.OPT_SERVER_ID] = SERVER
    p.options[pk.OPT_SUBNET_MASK] = bytes([255, 255, 255, 0])
    for code, value in options.items():
        p.options[int(code[1:])] = value
    return p


@pytest.fixture
def wire(netns_factory) -> Iterator[tuple]:
    """(namespace, client MAC, server MAC): veth dh0 (client) <-> dh1
    (server), both up."""
    ns = netns_factory("cl")
    ip("link", "add", "dh0", "type", "veth", "peer", "name", "dh1", netns=ns.name)
    ip("link", "set", "dh0", "up", netns=ns.name)
    ip("link", "set", "dh1", "up", netns=ns.name)
    macs = [ip("-br", "link", "show", n, netns=ns.name).split()[2] for n in ("dh0", "dh1")]
    yield (ns, *(bytes.fromhex(m.replace(":", "")) for m in macs))


def client_and_server(wire, script, timeout: float = 0.5) -> tuple[Client, Server, Waker]:
    ns, mac, _ = wire
    waker = Waker()
    with entered(ns):
        server = Server("dh1", script)
        client = Client("dh0", mac, timeout, waker)
    return client, server, waker


def test_request_ignores_other_transactions_and_gets_the_ack(wire):
    def script(p: pk.Packet) -> list[pk.Packet]:
        if p.message_type == pk.DISCOVER:
            return [reply(p, pk.OFFER, xid=p.xid ^ 1), reply(p, pk.OFFER)]
        return [reply(p, pk.ACK, _51=(120).to_bytes(4, "big"))]

    client, server, waker = client_and_server(wire, script)
    try:
        offer, ack = client.request(CID, [(55, b"\x03\x01")], time.monotonic() + 5)
    finally:
        client.close()
        server.close()
        waker.close()
    assert offer.message_type == pk.OFFER and ack.message_type == pk.ACK
    assert ack.yiaddr == OFFERED and client.reply_mac  # the server's MAC
    (discover, src, dst, kind), (request, *_) = server.seen
    assert (src, dst, kind) == (pk.ZERO, pk.BROADCAST, 1)
    assert discover.options[pk.OPT_CLIENT_ID] == CID and discover.options[55] == b"\x03\x01"
    assert request.xid == discover.xid and request.options[pk.OPT_REQUESTED_IP] == OFFERED
    assert request.options[pk.OPT_SERVER_ID] == SERVER


def test_nak_is_an_error_with_the_server_message(wire):
    def script(p: pk.Packet) -> list[pk.Packet]:
        if p.message_type == pk.DISCOVER:
            return [reply(p, pk.OFFER)]
        return [reply(p, pk.NAK, _56=b"wrong network")]

    client, server, waker = client_and_server(wire, script)
    try:
        with pytest.raises(Nak, match=r"rejected request with Nak \(msg: wrong network\)"):
            client.request(CID, [], time.monotonic() + 5)
    finally:
        client.close()
        server.close()
        waker.close()


def test_silence_resends_with_a_doubling_wait(wire):
    client, server, waker = client_and_server(wire, lambda p: [], timeout=0.1)
    started = time.monotonic()
    try:
        with pytest.raises(NoResponse, match="no answer to DHCPDISCOVER on dh0"):
            client.request(CID, [], time.monotonic() + 10)
    finally:
        client.close()
        server.close()
        waker.close()
    took = time.monotonic() - started
    assert 0.65 < took < 2, took  # 0.1 + 0.2 + 0.4
    assert [p.message_type for p, *_ in server.seen] == [pk.DISCOVER] * 3


def test_deadline_cuts_the_wait(wire):
    client, server, waker = client_and_server(wire, lambda p: [], timeout=5)
    started = time.monotonic()
    try:
        with pytest.raises(NoResponse):
            client.request(CID, [], time.monotonic() + 0.3)
    finally:
        client.close()
        server.close()
        waker.close()
    assert time.monotonic() - started < 1


def test_stop_ends_a_wait_at_once_and_a_poke_does_not(wire):
    client, server, waker = client_and_server(wire, lambda p: [], timeout=10)
    threading.Timer(0.1, waker.poke).start()
    threading.Timer(0.3, waker.stop).start()
    started = time.monotonic()
    try:
        with pytest.raises(Stopped):
            client.request(CID, [], time.monotonic() + 10)
    finally:
        client.close()
        server.close()
        waker.close()
    assert 0.25 < time.monotonic() - started < 1.5
    assert len(server.seen) == 1  # the poke did not restart the exchange


def test_renew_and_release(wire):
    def script(p: pk.Packet) -> list[pk.Packet]:
        return [reply(p, pk.ACK)] if p.message_type == pk.REQUEST else []

    client, server, waker = client_and_server(wire, script)
    ack = reply(pk.Packet(chaddr=wire[1]), pk.ACK)
    try:
        new = client.renew(ack, CID, [], time.monotonic() + 5)
        client.release(new, CID, wire[2])
        time.sleep(0.3)
    finally:
        client.close()
        server.close()
        waker.close()
    (renew, src, dst, _), (release, rsrc, rdst, kind) = server.seen
    assert renew.message_type == pk.REQUEST and renew.ciaddr == OFFERED
    assert (src, dst) == (pk.ZERO, pk.BROADCAST)  # as the reference sends it
    assert release.message_type == pk.RELEASE and release.ciaddr == OFFERED
    assert (rsrc, rdst) == (OFFERED, SERVER)  # unicast, from the leased address
    assert kind == 0  # to the server's MAC


# --- a lease's loop against the scripted server -------------------------------------------


def seconds(n: float) -> bytes:
    return int(n).to_bytes(4, "big")


def run_lease(wire, script, **settings):
    from pycni.plugins.ipam.dhcp.lease import Lease, Settings

    ns = wire[0]
    with entered(ns):
        server = Server("dh1", script)
    lease = Lease(
        "ctr/net/dh0",
        ns.path,
        "dh0",
        [(55, b"\x03\x01")],
        Settings(**{"timeout": 0.2, "resend_max": 1.0, "resend_timeout": 5.0, **settings}),
    )
    lease.start()
    return lease, server


def kinds(server: Server) -> list[str]:
    return [
        pk.TYPE_NAMES[p.message_type]
        + ("(renew)" if p.ciaddr != pk.ZERO and p.message_type == pk.REQUEST else "")
        for p, *_ in server.seen
    ]


def test_nak_to_a_renewal_rebinds_at_once(wire):
    def script(p: pk.Packet) -> list[pk.Packet]:
        if p.message_type == pk.DISCOVER:
            return [reply(p, pk.OFFER)]
        if p.message_type == pk.REQUEST and p.ciaddr != pk.ZERO:
            return [reply(p, pk.NAK)]
        if p.message_type == pk.REQUEST:
            return [reply(p, pk.ACK, _51=seconds(120), _58=seconds(1), _59=seconds(100))]
        return []

    lease, server = run_lease(wire, script)
    try:
        lease.wait_acquired()
        want = ["DISCOVER", "REQUEST", "REQUEST(renew)", "DISCOVER", "REQUEST"]
        deadline = time.monotonic() + 5
        while kinds(server)[:5] != want and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kinds(server)[:5] == want
    finally:
        lease.stop()
        time.sleep(0.2)
        server.close()
    assert kinds(server)[-1] == "RELEASE" and lease.finished


def test_expiry_sets_the_link_down_and_ends_the_loop(wire):
    acked = []

    def script(p: pk.Packet) -> list[pk.Packet]:
        if acked:  # the server is gone after the first lease
            return []
        if p.message_type == pk.DISCOVER:
            return [reply(p, pk.OFFER)]
        acked.append(p)
        return [reply(p, pk.ACK, _51=seconds(3), _58=seconds(1), _59=seconds(2))]

    lease, server = run_lease(wire, script)
    try:
        lease.wait_acquired()
        deadline = time.monotonic() + 8
        while not lease.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lease.finished
    finally:
        lease.stop()
        server.close()
    assert "UP" not in ip("link", "show", "dh0", netns=wire[0].name).split(">")[0]
    assert "RELEASE" not in kinds(server)
    assert "REQUEST(renew)" in kinds(server) and kinds(server).count("DISCOVER") >= 2
