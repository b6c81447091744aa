"""Failed and interrupted ADDs of the iptables backend, and backend detection.

A failed ADD leaves none of its per-IP rules (the IPv4 rules it appended
are deleted when the IPv6 restore fails) and keeps rules it did not add; an
ADD killed between the two families leaves IPv4 rules that a DEL without
prevResult still finds, by the addresses of the container interface.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pycni.plugins.meta.firewall import detect

from support.firewall import PLUGIN, filter_table, iptables, make_conf, prev_result, run
from support.outcomes import err, ok
from support.sandbox import ip

DUAL = ("198.18.0.5/24", "fd00:18::5/64")


def conf(ips=DUAL, **keys) -> dict:
    keys.setdefault("backend", "iptables")
    return make_conf("1.0.0", prev_result(ips), **keys)


def per_ip_rules() -> list[str]:
    return [
        r
        for v6 in (False, True)
        for r in filter_table(v6)
        if r.startswith("-A CNI-FORWARD") and ("-s " in r or "-d " in r)
    ]


@pytest.fixture
def broken_ip6tables_restore(tmp_path: Path) -> dict[str, str]:
    """A PATH whose ip6tables-restore fails (the other tools are the real ones)."""
    import os

    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "ip6tables-restore"
    tool.write_text("#!/bin/sh\necho 'injected failure' >&2\nexit 1\n")
    tool.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}


def test_failed_add_deletes_the_rules_it_appended(ct, broken_ip6tables_restore):
    code, msg = err(run(PLUGIN, "ADD", conf(), ct, env=broken_ip6tables_restore))
    assert code == 999 and "injected failure" in msg and "IPv6" in msg
    assert per_ip_rules() == []
    # the chains and jumps stay, as the reference's do
    assert (
        '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD'
        in filter_table()
    )


def test_failed_add_keeps_rules_it_did_not_add(ct, broken_ip6tables_restore):
    ok(run(PLUGIN, "ADD", conf(("198.18.0.5/24",)), ct, "other"))
    before = per_ip_rules()
    assert len(before) == 2
    err(run(PLUGIN, "ADD", conf(), ct, env=broken_ip6tables_restore))
    assert per_ip_rules() == before


def test_killed_add_is_cleaned_by_a_del_without_prev_result(ct):
    out = run(PLUGIN, "ADD", conf(), ct, env={"PYCNI_FAULT_STEP": "firewall.add.iptables-v6"})
    assert out.exit_code == -9
    assert len(per_ip_rules()) == 2  # IPv4 committed, IPv6 not
    # the runtime's DEL: no cached result, the container interface still there
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "fwpeer", netns=ct.name)
    ip("addr", "add", DUAL[0], "dev", "eth0", netns=ct.name)
    ip("addr", "add", DUAL[1], "dev", "eth0", "nodad", netns=ct.name)
    bare = {k: v for k, v in conf().items() if k != "prevResult"}
    ok(run(PLUGIN, "DEL", bare, ct))
    assert per_ip_rules() == []


def test_del_without_prev_result_and_without_netns(ct, netns_factory):
    ok(run(PLUGIN, "ADD", conf(), ct))
    gone = netns_factory("gone")
    gone.close()
    bare = {k: v for k, v in conf().items() if k != "prevResult"}
    ok(run(PLUGIN, "DEL", bare, gone))  # succeeds; knows no addresses (as the reference)
    assert len(per_ip_rules()) == 4
    ok(run(PLUGIN, "DEL", conf(), gone))
    assert per_ip_rules() == []


def test_default_backend_detection(host_ns, monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
    assert not detect.filter_table_in_use()
    assert detect.default_backend() == "nftables"  # a fresh namespace: no filter table
    iptables("-P", "FORWARD", "DROP", v6=True)  # iptables-nft: creates `ip6 filter`
    assert detect.filter_table_in_use()
    assert detect.default_backend() == "iptables"
    monkeypatch.setenv("PATH", "/nonexistent")
    assert detect.default_backend() == "nftables"  # no iptables binary


def test_default_backend_sees_legacy_tables(host_ns, monkeypatch):
    import shutil

    if shutil.which("iptables-legacy") is None:
        pytest.skip("no iptables-legacy")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
    import subprocess

    proc = subprocess.run(["iptables-legacy", "-t", "filter", "-L", "-n"], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("legacy iptables unusable here")
    assert "filter" in Path("/proc/thread-self/net/ip_tables_names").read_text().split()
    assert detect.default_backend() == "iptables"
