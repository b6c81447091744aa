"""The netlink request that creates a VRF, held against iproute2's.

This kernel has no VRF links, so the bytes the plugin sends are compared
with what `ip link add <name> type vrf table <n>` sends (captured once with
strace into tests/kernel/fixtures/iplink/vrf-*.hex, see
support.iplink_bytes): the same attributes, in any order.
"""

from __future__ import annotations

import pytest

from pycni.kernel.link import Link
from pycni.kernel.netlink import RTM_NEWLINK, RtNetlink
from pycni.plugins.meta.vrf import routing
from pycni.plugins.pkg.transaction import Undo

from support.iplink_bytes import canonical, load

RTM_SETLINK = 19


class RecordingNetlink(RtNetlink):
    """RtNetlink whose requests are recorded instead of sent (no socket)."""

    def __init__(self) -> None:  # no super().__init__: nothing is opened
        self.sent: list[tuple[int, bytes]] = []

    def request(self, mtype: int, payload: bytes, op: str, flags: int = 0, nodev=None) -> list:
        self.sent.append((mtype, bytes(payload)))
        return []

    def link_list(self):  # type: ignore[override]
        return []

    def link_get(self, name=None, index=None):  # type: ignore[override]
        link = Link()
        link.index, link.name, link.kind = 7, name, "vrf"
        return link

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("fixture", "name", "table"),
    [("vrf-table10", "vrX", 10), ("vrf-red-table4000000000", "vrf-red", 4000000000)],
)
def test_create_vrf_sends_what_iproute2_sends(fixture, name, table):
    nl = RecordingNetlink()
    routing.create_vrf(nl, name, table, "/run/netns/vr-x", Undo())
    (mtype, payload), (set_type, set_payload) = nl.sent
    assert mtype == RTM_NEWLINK
    assert canonical(payload) == canonical(load(fixture))
    # then `ip link set <name> up`: ifindex 7, IFF_UP in flags and change
    assert set_type == RTM_SETLINK
    assert set_payload[:16] == bytes.fromhex("00000000" + "07000000" + "01000000" + "01000000")


def test_free_table_goes_into_the_request():
    nl = RecordingNetlink()
    routing.create_vrf(nl, "vrX", 0, "/run/netns/vr-x", Undo())  # no VRF yet: table 1
    with_table_1 = canonical(nl.sent[0][1])
    expected = canonical(load("vrf-table10"))
    assert with_table_1 != expected
    assert repr(with_table_1).replace("01000000", "0a000000") == repr(expected)
