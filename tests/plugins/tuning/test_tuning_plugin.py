"""The tuning plugin against the kernel: ADD, DEL, CHECK, GC, STATUS, the
rollback of a failed ADD, and bad input that must change nothing."""

from __future__ import annotations

import json
import os

import pytest

from pycni.plugins.meta.tuning import conf as tconf

from support.outcomes import err, ok
from support.sandbox import ip
from support.tuning import (
    IFNAME,
    NETWORK,
    START_MAC,
    backup_file,
    conf,
    files_under,
    link_state,
    make_container,
    marker_file,
    prev_result,
    run_in_process,
    run_tuning,
    set_sysctl,
    sysctl,
)

NEW_MAC = "c2:11:22:33:44:55"
ARP_FILTER = f"net/ipv4/conf/{IFNAME}/arp_filter"
ACCEPT_RA = f"net/ipv6/conf/{IFNAME}/accept_ra"
FULL = {
    "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1", "net.ipv6.conf.eth0.accept_ra": "0"},
    "mac": NEW_MAC,
    "promisc": True,
    "mtu": 1400,
    "allmulti": True,
    "txQLen": 123,
}


@pytest.fixture
def start(ct) -> dict:
    """The container's state before any plugin ran."""
    return {"link": link_state(ct), "arp_filter": sysctl(ct, ARP_FILTER)}


def state(ct) -> dict:
    return {"link": link_state(ct), "arp_filter": sysctl(ct, ARP_FILTER)}


# --- ADD ---------------------------------------------------------------------------------


def test_add_sets_everything_and_del_restores_it(ct, data_dir, start):
    c = conf(ct, data_dir, **FULL)
    result = ok(run_tuning("ADD", c, ct))
    link = link_state(ct)
    assert link["mac"] == NEW_MAC
    assert (link["mtu"], link["promisc"], link["allmulti"], link["txqlen"]) == (
        1400,
        True,
        True,
        123,
    )
    assert sysctl(ct, ARP_FILTER) == "1"
    assert sysctl(ct, ACCEPT_RA) == "0"
    # the result is prevResult with the container interface's new MAC
    expected = prev_result(ct)
    expected["interfaces"][1]["mac"] = NEW_MAC
    assert result == expected

    path = backup_file(data_dir)
    assert path.read_bytes() == (
        b'{\n "mac": "02:00:5e:10:00:01",\n "promisc": false,\n "mtu": 1500,\n'
        b' "allmulti": false,\n "txQLen": 1000\n}'
    )
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(data_dir).st_mode & 0o777 == 0o600
    assert marker_file(data_dir).exists()

    ok(run_tuning("CHECK", {**c, "prevResult": result}, ct))

    ok(run_tuning("DEL", c, ct))
    after = state(ct)
    assert after["link"] == start["link"]
    # sysctls are not restored by DEL (the reference does not either)
    assert after["arp_filter"] == "1"
    assert files_under(data_dir) == []


@pytest.mark.parametrize(
    ("keys", "changed"),
    [
        ({"mac": NEW_MAC}, {"mac": NEW_MAC}),
        ({"promisc": True}, {"promisc": True, "promiscuity": 1}),
        ({"mtu": 9000}, {"mtu": 9000}),
        ({"allmulti": True}, {"allmulti": True}),
        ({"txQLen": 0}, {"txqlen": 0}),
        ({"txQLen": 5000}, {"txqlen": 5000}),
    ],
)
def test_each_attribute_alone(ct, data_dir, start, keys, changed):
    c = conf(ct, data_dir, **keys)
    ok(run_tuning("ADD", c, ct))
    assert link_state(ct) == {**start["link"], **changed}
    saved = json.loads(backup_file(data_dir).read_text())
    assert list(saved) == list(keys)
    ok(run_tuning("CHECK", c, ct))
    ok(run_tuning("DEL", c, ct))
    assert link_state(ct) == start["link"]
    assert not backup_file(data_dir).exists()


def test_allmulti_false_turns_it_off_and_del_turns_it_back_on(ct, data_dir):
    ip("link", "set", IFNAME, "allmulticast", "on", netns=ct.name)
    c = conf(ct, data_dir, allmulti=False)
    ok(run_tuning("ADD", c, ct))
    assert not link_state(ct)["allmulti"]
    assert json.loads(backup_file(data_dir).read_text()) == {"allmulti": True}
    ok(run_tuning("DEL", c, ct))
    assert link_state(ct)["allmulti"]


def test_promisc_false_leaves_promisc_alone(ct, data_dir):
    ip("link", "set", IFNAME, "promisc", "on", netns=ct.name)
    c = conf(ct, data_dir, promisc=False)
    ok(run_tuning("ADD", c, ct))
    assert link_state(ct)["promisc"]
    assert not backup_file(data_dir).exists()
    # CHECK wants it off (the reference's rule)
    assert err(run_tuning("CHECK", c, ct)) == (
        999,
        "Error: Tuning link eth0 configured promisc is false, current value is 1",
    )


def test_sysctls_only_no_backup(ct, data_dir, host_ns):
    host_before = sysctl_host("net/ipv4/ip_forward")
    c = conf(
        ct, data_dir, sysctl={"net.ipv4.ip_forward": "1", "net.ipv4.conf.IFNAME.arp_filter": "1"}
    )
    result = ok(run_tuning("ADD", c, ct))
    assert result == prev_result(ct)
    assert sysctl(ct, "net/ipv4/ip_forward") == "1"
    assert sysctl(ct, ARP_FILTER) == "1"
    assert sysctl_host("net/ipv4/ip_forward") == host_before  # only the container's
    assert files_under(data_dir) == []
    ok(run_tuning("CHECK", c, ct))
    ok(run_tuning("DEL", c, ct))


def sysctl_host(name: str) -> str:
    with open("/proc/sys/" + name) as f:
        return f.read().strip()


def test_sysctl_with_several_fields(ct, data_dir):
    key = "net.ipv4.ping_group_range"
    c = conf(ct, data_dir, sysctl={key: "100 200"})
    ok(run_tuning("ADD", c, ct))
    assert sysctl(ct, "net/ipv4/ping_group_range").split() == ["100", "200"]
    # the kernel prints a tab; CHECK compares the fields
    ok(run_tuning("CHECK", c, ct))


@pytest.mark.parametrize(
    ("source", "keys", "cni_args"),
    [
        ("conf", {"mac": NEW_MAC}, ""),
        ("CNI_ARGS", {"mac": "02:00:00:00:00:09"}, f"IgnoreUnknown=1;K8S_POD_NAME=p;MAC={NEW_MAC}"),
        ("runtimeConfig", {"mac": "02:00:00:00:00:09", "runtimeConfig": {"mac": NEW_MAC}}, ""),
        (
            "args.cni",
            {"runtimeConfig": {"mac": "02:00:00:00:00:09"}, "args": {"cni": {"mac": NEW_MAC}}},
            "",
        ),
    ],
)
def test_mac_sources(ct, data_dir, source, keys, cni_args):
    c = conf(ct, data_dir, **keys)
    result = ok(run_tuning("ADD", c, ct, args=cni_args))
    assert link_state(ct)["mac"] == NEW_MAC, source
    assert result["interfaces"][1]["mac"] == NEW_MAC
    assert result["interfaces"][0]["mac"] == "02:00:5e:10:00:99"  # the host veth: untouched
    ok(run_tuning("CHECK", {**c, "prevResult": result}, ct, args=cni_args))
    ok(run_tuning("DEL", c, ct, args=cni_args))
    assert link_state(ct)["mac"] == START_MAC


def test_mac_in_another_form_is_normalised_in_the_result(ct, data_dir):
    c = conf(ct, data_dir, mac="C2-11-22-33-44-55")
    result = ok(run_tuning("ADD", c, ct))
    assert link_state(ct)["mac"] == NEW_MAC
    assert result["interfaces"][1]["mac"] == NEW_MAC
    ok(run_tuning("CHECK", {**c, "prevResult": result}, ct))


def test_mac_of_another_length_is_refused_before_any_change(ct, data_dir, start):
    c = conf(
        ct, data_dir, sysctl={"net.ipv4.conf.IFNAME.arp_filter": "1"}, mac="02:00:5e:10:00:01:02:03"
    )
    code, msg = err(run_tuning("ADD", c, ct))
    assert code == 7 and "6-byte addresses" in msg
    assert state(ct) == start
    assert files_under(data_dir) == []


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_every_version_passes_prev_result_through(ct, data_dir, version):
    c = conf(ct, data_dir, version, mtu=1300)
    result = ok(run_tuning("ADD", c, ct))
    assert result["cniVersion"] == version
    prev = prev_result(ct, version)
    if "interfaces" in prev:
        assert result["interfaces"] == prev["interfaces"]
    else:
        assert result["ip4"] == prev["ip4"]
    ok(run_tuning("DEL", c, ct))


def test_add_without_prev_result_is_refused(ct, data_dir, start):
    code, msg = err(run_tuning("ADD", conf(ct, data_dir, prev=False, **FULL), ct))
    assert code == 7
    assert msg == "Required prevResult missing: tuning must be called as a chained plugin"
    assert state(ct) == start and files_under(data_dir) == []


def test_add_to_a_missing_interface_fails_and_changes_nothing(ct, data_dir, start):
    c = conf(ct, data_dir, **FULL)
    code, msg = err(run_tuning("ADD", c, ct, ifname="eth9"))
    assert code == 999 and '"eth9"' in msg and ct.path in msg
    assert state(ct) == start and files_under(data_dir) == []


def test_add_with_a_missing_netns_is_code_8(ct, data_dir):
    code, _ = err(
        run_tuning(
            "ADD", conf(ct, data_dir, mtu=1400), None, env={"CNI_NETNS": "/run/netns/tun-none"}
        )
    )
    assert code == 8


def test_second_add_keeps_the_first_backups_values(ct, data_dir, start):
    """The reference overwrites the backup with the tuned values; pycni keeps
    the values from before the first ADD, and adds the newly tuned ones."""
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct))
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1300, mac=NEW_MAC), ct))
    assert json.loads(backup_file(data_dir).read_text()) == {"mac": START_MAC, "mtu": 1500}
    ok(run_tuning("DEL", conf(ct, data_dir), ct))
    assert link_state(ct) == start["link"]


# --- ADD rollback ------------------------------------------------------------------------


def test_failed_add_restores_sysctls_link_and_backup(ct, data_dir, start):
    """MAC and promisc are applied, then the MTU is refused by the kernel
    (above the veth maximum): everything goes back."""
    ra_before = sysctl(ct, ACCEPT_RA)
    c = conf(ct, data_dir, **{**FULL, "mtu": 70000})
    code, msg = err(run_tuning("ADD", c, ct))
    assert code == 999 and "MTU" in msg and "70000" in msg
    assert state(ct) == start
    assert sysctl(ct, ACCEPT_RA) == ra_before
    assert files_under(data_dir) == []


def test_failed_add_puts_an_older_backup_back(ct, data_dir):
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct))
    before = backup_file(data_dir).read_bytes()
    err(run_tuning("ADD", conf(ct, data_dir, mac="01:00:5e:00:00:01"), ct))  # multicast: refused
    assert backup_file(data_dir).read_bytes() == before
    assert marker_file(data_dir).exists()


def test_failed_sysctl_write_undoes_earlier_ones(ct, data_dir, start):
    c = conf(
        ct,
        data_dir,
        sysctl={"net.ipv4.conf.IFNAME.arp_filter": "1", "net.ipv4.no_such_sysctl": "1"},
        mtu=1400,
    )
    code, msg = err(run_tuning("ADD", c, ct))
    assert code == 999 and "net.ipv4.no_such_sysctl" in msg and "No such file" in msg
    assert state(ct) == start
    assert files_under(data_dir) == []


@pytest.mark.parametrize("step", ["tuning.add.promisc", "tuning.add.txqlen", "tuning.backup.write"])
def test_add_killed_midway_then_del_restores(ct, data_dir, start, step):
    c = conf(ct, data_dir, **FULL)
    killed = run_tuning("ADD", c, ct, env={"PYCNI_FAULT_STEP": step})
    assert killed.exit_code != 0
    ok(run_tuning("DEL", c, ct))
    assert link_state(ct) == start["link"]
    assert files_under(data_dir) == []


# --- DEL ---------------------------------------------------------------------------------


def test_del_without_backup_twice(ct, data_dir):
    c = conf(ct, data_dir, **FULL)
    ok(run_tuning("DEL", c, ct))
    ok(run_tuning("DEL", c, ct))


def test_del_after_the_netns_is_gone_removes_the_backup(netns_factory, host_ns, data_dir):
    ct = make_container(netns_factory, "gone")
    c = conf(ct, data_dir, **FULL)
    ok(run_tuning("ADD", c, ct))
    ct.close()
    ok(run_tuning("DEL", c, ct))
    ok(run_tuning("DEL", c, ct))
    assert files_under(data_dir) == []


def test_del_without_netns_removes_the_backup(ct, data_dir):
    c = conf(ct, data_dir, mtu=1400)
    ok(run_tuning("ADD", c, ct))
    ok(run_tuning("DEL", c, None))
    assert files_under(data_dir) == []


def test_del_after_the_link_is_gone(ct, data_dir):
    c = conf(ct, data_dir, mtu=1400)
    ok(run_tuning("ADD", c, ct))
    ip("link", "del", IFNAME, netns=ct.name)
    ok(run_tuning("DEL", c, ct))
    assert files_under(data_dir) == []


def test_del_with_a_corrupt_backup_removes_it(ct, data_dir):
    c = conf(ct, data_dir, mtu=1400)
    ok(run_tuning("ADD", c, ct))
    backup_file(data_dir).write_text("{not json")
    out = ok(run_tuning("DEL", c, ct))
    assert out is None
    assert files_under(data_dir) == []
    assert link_state(ct)["mtu"] == 1400  # nothing to restore from


def test_del_that_cannot_restore_keeps_the_backup_and_succeeds(ct, data_dir):
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct))
    backup_file(data_dir).write_text('{"mtu": 70000, "mac": "01:00:5e:00:00:01"}')
    out = run_tuning("DEL", conf(ct, data_dir), ct)
    ok(out)
    assert "failed to restore MTU" in out.stderr and "failed to restore MAC" in out.stderr
    assert backup_file(data_dir).exists() and marker_file(data_dir).exists()


def test_del_ignores_the_rest_of_a_broken_config(ct, data_dir, start):
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct))
    broken = conf(ct, data_dir, mtu="x", mac=5, sysctl={"kernel.panic": "1"})
    ok(run_tuning("DEL", broken, ct, args="NOT=known"))
    assert link_state(ct) == start["link"]


def test_del_with_a_bad_data_dir_type_fails(ct, data_dir):
    code, msg = err(run_tuning("DEL", conf(ct, data_dir, dataDir=5), ct))
    assert code == 7 and '"dataDir"' in msg


# --- CHECK -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("link", "set", IFNAME, "mtu", "1500"),
            "Error: Tuning configured MTU of eth0 is 1400, current value is 1500",
        ),
        (
            ("link", "set", IFNAME, "address", START_MAC),
            f"Error: Tuning configured Ethernet of eth0 is {NEW_MAC}, current value is {START_MAC}",
        ),
        (
            ("link", "set", IFNAME, "promisc", "off"),
            "Error: Tuning link eth0 configured promisc is true, current value is 0",
        ),
        (
            ("link", "set", IFNAME, "allmulticast", "off"),
            "Error: Tuning configured all-multicast mode of eth0 is true, current value is false",
        ),
        (
            ("link", "set", IFNAME, "txqueuelen", "7"),
            "Error: Tuning configured Transmit Queue Length of eth0 is 123, current value is 7",
        ),
        (
            ("sysctl", ARP_FILTER, "0"),
            "Error: Tuning configured value of /proc/sys/net/ipv4/conf/eth0/arp_filter is 1, "
            "current value is 0",
        ),
    ],
)
def test_check_finds_each_drift(ct, data_dir, change, message):
    c = conf(ct, data_dir, **FULL)
    result = ok(run_tuning("ADD", c, ct))
    c["prevResult"] = result
    ok(run_tuning("CHECK", c, ct))
    if change[0] == "sysctl":
        set_sysctl(ct, change[1], change[2])
    else:
        ip(*change, netns=ct.name)
    assert err(run_tuning("CHECK", c, ct)) == (999, message)


def test_check_missing_link_and_prev_result(ct, data_dir):
    c = conf(ct, data_dir, mtu=1400)
    code, msg = err(run_tuning("CHECK", c, ct, ifname="eth9"))
    assert msg == "Cannot find container link eth9"
    code, msg = err(run_tuning("CHECK", conf(ct, data_dir, prev=False), ct))
    assert code == 7 and msg.startswith("Required prevResult missing")


def test_check_refuses_bad_config_like_add(ct, data_dir):
    code, msg = err(run_tuning("CHECK", conf(ct, data_dir, sysctl={"kernel.panic": "1"}), ct))
    assert (code, msg) == (7, 'invalid net sysctl key: "kernel/panic"')


# --- GC and STATUS -----------------------------------------------------------------------


def gc_conf(data_dir, attachments, name: str = NETWORK) -> dict:
    c = {"cniVersion": "1.1.0", "name": name, "type": "tuning", "dataDir": str(data_dir)}
    if attachments is not None:
        c["cni.dev/valid-attachments"] = [
            {"containerID": cid, "ifname": ifname} for cid, ifname in attachments
        ]
    return c


def test_gc_removes_backups_of_stale_attachments_of_this_network_only(ct, data_dir):
    for cid in ("tun-a", "tun-b"):
        ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct, container_id=cid))
    other = {**conf(ct, data_dir, mtu=1400), "name": "othernet"}
    ok(run_tuning("ADD", other, ct, container_id="tun-c"))
    # a backup the reference's ADD wrote has no marker: left alone
    backup_file(data_dir, "tun-go").write_text('{\n "mtu": 1500\n}')

    ok(run_tuning("GC", gc_conf(data_dir, [("tun-a", IFNAME)]), None))
    assert files_under(data_dir) == [
        "pycni-gc/othernet/tun-c_eth0",
        "pycni-gc/tunnet/tun-a_eth0",
        "tun-a_eth0.json",
        "tun-c_eth0.json",
        "tun-go_eth0.json",
    ]
    # null: every attachment of the network is stale
    gc = gc_conf(data_dir, [])
    gc["cni.dev/valid-attachments"] = None
    ok(run_tuning("GC", gc, None))
    assert "tun-a_eth0.json" not in files_under(data_dir)
    assert "tun-c_eth0.json" in files_under(data_dir)


def test_gc_without_attachments_removes_nothing(ct, data_dir):
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct))
    ok(run_tuning("GC", gc_conf(data_dir, None), None))
    assert backup_file(data_dir).exists()


def test_gc_of_an_unused_data_dir(data_dir, host_ns):
    ok(run_tuning("GC", gc_conf(data_dir, []), None))


def test_gc_and_status_need_1_1_0(data_dir, host_ns):
    code, _ = err(run_tuning("GC", {**gc_conf(data_dir, []), "cniVersion": "1.0.0"}, None))
    assert code == 1
    ok(run_tuning("STATUS", gc_conf(data_dir, None), None))


def test_del_removes_the_gc_marker_even_without_a_backup(ct, data_dir):
    ok(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct))
    backup_file(data_dir).unlink()  # e.g. the reference's DEL ran
    ok(run_tuning("DEL", conf(ct, data_dir), ct))
    assert files_under(data_dir) == []


# --- bad input changes nothing -----------------------------------------------------------

BAD = {
    "sysctl-not-a-map": {"sysctl": ["net.ipv4.ip_forward"]},
    "sysctl-value-number": {"sysctl": {"net.ipv4.ip_forward": 1}},
    "mac-number": {"mac": 1},
    "mac-bad": {"mac": "02:00:00:00:00:zz"},
    "promisc-string": {"promisc": "true"},
    "mtu-string": {"mtu": "1400"},
    "mtu-negative": {"mtu": -1},
    "allmulti-number": {"allmulti": 1},
    "txqlen-string": {"txQLen": "1"},
    "txqlen-negative": {"txQLen": -1},
    "datadir-bool": {"dataDir": True},
    "outside-net": {"sysctl": {"kernel.hostname": "pwned"}},
    "traversal": {"sysctl": {"net/../..": "1"}},
    "traversal-abs": {"sysctl": {"/etc/passwd": "1"}},
    "runtime-mac-bad": {"runtimeConfig": {"mac": "x"}},
    "args-mtu-string": {"args": {"cni": {"mtu": "1"}}},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_refused_and_changes_nothing(ct, data_dir, start, case):
    keys = {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}, "mtu": 1400, **BAD[case]}
    code, msg = err(run_tuning("ADD", conf(ct, data_dir, **keys), ct))
    assert code == 7, msg
    assert state(ct) == start
    assert not data_dir.exists()


def test_duplicate_sysctl_keys_refused_and_change_nothing(ct, data_dir, start):
    text = json.dumps(conf(ct, data_dir, mtu=1400))[:-1]
    key = '"net.ipv4.conf.IFNAME.arp_filter"'
    text += f', "sysctl": {{{key}: "1", {key}: "1"}}}}'
    code, msg = err(run_tuning("ADD", text.encode(), ct))
    assert code == 7 and "duplicated sysctl keys" in msg
    assert state(ct) == start


def test_bad_cni_args_mac_is_code_4(ct, data_dir, start):
    code, _ = err(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct, args="MAC=zz"))
    assert code == 4
    code, _ = err(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct, args="FOO=1"))
    assert code == 4
    assert state(ct) == start


def test_ifname_with_slash_is_refused(ct, data_dir):
    code, msg = err(run_tuning("ADD", conf(ct, data_dir, mtu=1400), ct, ifname="a/b"))
    assert code == 4 and "/" in msg


def test_allowlist_violation_changes_nothing(ct, data_dir, start, tmp_path, monkeypatch):
    allow = tmp_path / "allowlist.conf"
    allow.write_text("^net\\.ipv4\\.conf\\.IFNAME\\.arp_filter$\n")
    monkeypatch.setattr(tconf, "ALLOWLIST_FILE", str(allow))
    refused = conf(
        ct, data_dir, sysctl={"net.ipv4.conf.IFNAME.arp_filter": "1", "net.ipv4.ip_forward": "1"}
    )
    code, msg = err(run_in_process("ADD", refused, ct))
    assert code == 7 and msg.startswith("Sysctl net.ipv4.ip_forward is not allowed.")
    assert state(ct) == start
    allowed = conf(ct, data_dir, sysctl={"net.ipv4.conf.IFNAME.arp_filter": "1"})
    ok(run_in_process("ADD", allowed, ct))
    assert sysctl(ct, ARP_FILTER) == "1"
