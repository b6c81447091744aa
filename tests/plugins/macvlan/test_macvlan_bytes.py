"""macvlan's RTM_NEWLINK held against what `ip link add ... type macvlan` sends
(fixtures in tests/kernel/fixtures/iplink, captured with iproute2)."""

from __future__ import annotations

import pytest

from pycni.plugins.main.macvlan.conf import load

from support.sublink import sent_by_create


@pytest.mark.parametrize("mode", ["bridge", "private", "vepa", "passthru"])
def test_modes(mode, monkeypatch):
    conf = load({"master": "mvp0", "mode": mode})
    ours, iproute2 = sent_by_create("macvlan", conf, f"macvlan-{mode}", monkeypatch)
    assert ours == iproute2


def test_default_mode_is_bridge(monkeypatch):
    ours, iproute2 = sent_by_create("macvlan", load({}), "macvlan-bridge", monkeypatch)
    assert ours == iproute2


def test_mtu_and_mac(monkeypatch):
    conf = load({"master": "mvp0", "mtu": 1400, "mac": "02:00:C6:12:00:01"})
    ours, iproute2 = sent_by_create("macvlan", conf, "macvlan-mtu-mac", monkeypatch, mac=conf.mac)
    assert ours == iproute2


def test_bcqueuelen(monkeypatch):
    conf = load({"master": "mvp0", "bcqueuelen": 100})
    ours, iproute2 = sent_by_create("macvlan", conf, "macvlan-bcqueuelen", monkeypatch)
    assert ours == iproute2


def test_a_different_mode_differs(monkeypatch):
    """The comparison sees the mode (a test that can fail)."""
    conf = load({"master": "mvp0", "mode": "vepa"})
    ours, iproute2 = sent_by_create("macvlan", conf, "macvlan-bridge", monkeypatch)
    assert ours != iproute2
