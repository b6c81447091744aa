"""pycni.spec.ipnet: address classification."""

from __future__ import annotations

import pytest

from pycni.spec.ipnet import is_global_unicast


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("198.18.0.5", True),
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("fd00::5", True),
        ("fe80::1", False),
        ("::1", False),
        ("ff02::1", False),
        ("::", False),
    ],
)
def test_is_global_unicast(ip, expected):
    assert is_global_unicast(ip) is expected
