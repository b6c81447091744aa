"""The rtnetlink messages `ip link add ... type <kind>` sends, as fixtures.

This kernel lacks some link kinds (ipvlan, vlan, vrf, dummy), so the plugins
that create them cannot be tested against it; what they send can still be
held against what iproute2 sends for the same link. `capture` records
iproute2's RTM_NEWLINK with strace (a developer tool, run once to write a
fixture; the kernel may refuse the link, the request is sent all the same),
`load` reads a fixture back and `sent_by` records what our code sends
through a stand-in socket. `canonical` makes the two comparable: attributes
sorted by type (iproute2 orders them differently), nests expanded.

A fixture, tests/kernel/fixtures/iplink/<name>.hex, is one comment line with
the command, then `type flags hexpayload` (payload = ifinfomsg + attributes).
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "kernel" / "fixtures" / "iplink"
RTM_NEWLINK = 16
IFLA_LINKINFO = 18
IFLA_INFO_DATA = 2
IFINFOMSG_LEN = 16

_SENDMSG = re.compile(
    r"nlmsg_type=(0x[0-9a-f]+|RTM_\w+)[^,]*, nlmsg_flags=([^,]+),.*?\}, \"((?:\\x[0-9a-f]{2})*)\""
)


def capture(argv: list[str]) -> list[tuple[int, str, bytes]]:
    """Every RTM_NEWLINK `argv` (an `ip ...` command) sends: (type, flags text, payload)."""
    proc = subprocess.run(
        ["strace", "-f", "-e", "trace=sendmsg,sendto", "-xx", "-s", "65535", *argv],
        capture_output=True,
        text=True,
    )
    out = []
    for m in _SENDMSG.finditer(proc.stderr):
        mtype = m.group(1)
        mtype_n = RTM_NEWLINK if mtype == "RTM_NEWLINK" else int(mtype, 16)
        payload = bytes(int(h, 16) for h in m.group(3).split("\\x")[1:])
        if mtype_n != RTM_NEWLINK or len(payload) <= IFINFOMSG_LEN:
            continue  # iproute2's empty probe of the kernel's strict checking
        out.append((mtype_n, m.group(2), payload))
    return out


def write_fixture(name: str, argv: list[str]) -> Path:
    """Capture `argv` and keep its (one) RTM_NEWLINK as fixture `name`."""
    msgs = capture(argv)
    if len(msgs) != 1:
        raise RuntimeError(f"{' '.join(argv)}: expected one RTM_NEWLINK, got {len(msgs)}")
    mtype, flags, payload = msgs[0]
    path = FIXTURES / f"{name}.hex"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {' '.join(argv)}\n{mtype} {flags} {payload.hex()}\n")
    return path


def load(name: str) -> bytes:
    """The payload of fixture `name`."""
    text = (FIXTURES / f"{name}.hex").read_text()
    lines = [ln for ln in text.splitlines() if ln and ln[0] != "#"]
    return bytes.fromhex(lines[0].split()[-1])


class _Recorder:
    """Stands in for an RtNetlink socket: records requests, answers nothing."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    def request(self, mtype: int, payload: bytes, op: str, flags: int = 0, nodev=None) -> list:
        self.sent.append((mtype, bytes(payload)))
        return []


def sent_by(fn: Callable[[object], object]) -> list[tuple[int, bytes]]:
    """(type, payload) of every request `fn(sock)` makes on a recording socket."""
    rec = _Recorder()
    fn(rec)
    return rec.sent


def _attrs(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(data) >= 4:
        length, atype = struct.unpack_from("=HH", data)
        if length < 4:
            break
        out.append((atype & 0x3FFF, data[4:length]))
        data = data[(length + 3) & ~3 :]
    return out


def _canon_attrs(data: bytes, nested: dict) -> tuple:
    items = []
    for atype, value in _attrs(data):
        if atype in nested:
            items.append((atype, _canon_attrs(value, nested[atype])))
        else:
            items.append((atype, value.hex()))
    return tuple(sorted(items))


def canonical(payload: bytes) -> tuple:
    """An ifinfomsg payload as (header hex, sorted attributes), LINKINFO expanded."""
    linkinfo = {IFLA_LINKINFO: {IFLA_INFO_DATA: {}}}
    return (payload[:IFINFOMSG_LEN].hex(), _canon_attrs(payload[IFINFOMSG_LEN:], linkinfo))


def attrs(payload: bytes) -> dict[int, bytes]:
    """Top-level attributes of an ifinfomsg payload (e.g. IFLA_LINK, to reuse its index)."""
    return dict(_attrs(payload[IFINFOMSG_LEN:]))
