"""pycni.kernel.spoofcheck (macspoofchk rules) on its own; what a bridge
ADD/DEL with macspoofchk leaves is in tests/plugins/bridge/test_bridge_masq.py."""

from __future__ import annotations

from pycni.kernel import spoofcheck


def test_spoofcheck_teardown_is_a_no_op_without_rules(host_ns):
    spoofcheck.teardown("nothing-here")
    assert spoofcheck.teardown_commands([], "x") == []
