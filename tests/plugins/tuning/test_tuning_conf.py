"""Decoding the tuning config: precedence, types, sysctl keys, allow-list,
and the backup file format. No kernel needed."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.plugins.meta.tuning import backup
from pycni.plugins.meta.tuning import conf as tconf
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import go_loads

from support.fuzz import configs

BASE = {"cniVersion": "1.0.0", "name": "tunnet", "type": "tuning"}


def load(doc: dict | str, args: str = "", ifname: str = "eth0", allowlist: bool = True):
    text = doc if isinstance(doc, str) else json.dumps({**BASE, **doc})
    data = text.encode()
    return tconf.load(go_loads(data), data, args, ifname, allowlist)  # type: ignore[arg-type]


def load_error(doc: dict | str, args: str = "", ifname: str = "eth0") -> CNIError:
    with pytest.raises(CNIError) as info:
        load(doc, args, ifname)
    return info.value


# --- keys and precedence -----------------------------------------------------------------


def test_defaults_change_nothing():
    n = load({})
    assert n.sysctl == {}
    assert (n.mac, n.promisc, n.mtu, n.allmulti, n.txqlen) == ("", False, 0, None, None)
    assert n.data_dir == "/run/cni/tuning"
    assert not n.changes_link


def test_every_key_decodes():
    n = load(
        {
            "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"},
            "mac": "C2:11:22:33:44:55",
            "promisc": True,
            "mtu": 1400,
            "allmulti": False,
            "txQLen": 0,
            "dataDir": "/tmp/x",
        }
    )
    assert n.sysctl == {"net.ipv4.conf.IFNAME.arp_filter": "1"}
    assert n.mac == "c2:11:22:33:44:55"  # the kernel's form
    assert (n.promisc, n.mtu, n.allmulti, n.txqlen, n.data_dir) == (True, 1400, False, 0, "/tmp/x")
    assert n.changes_link


def test_keys_match_case_insensitively():
    n = load({"MTU": 1300, "TxQlen": 5, "AllMulti": True, "DATADIR": "/d"})
    assert (n.mtu, n.txqlen, n.allmulti, n.data_dir) == (1300, 5, True, "/d")


@pytest.mark.parametrize("only_falsy", [{"allmulti": False}, {"txQLen": 0}])
def test_explicit_false_and_zero_still_change_the_link(only_falsy):
    assert load(only_falsy).changes_link


def test_promisc_false_changes_nothing():
    assert not load({"promisc": False}).changes_link


MAC_CONF = "02:00:00:00:00:01"
MAC_ARGS = "02:00:00:00:00:02"
MAC_RC = "02:00:00:00:00:03"
MAC_CNI = "02:00:00:00:00:04"


@pytest.mark.parametrize(
    ("doc", "cni_args", "expected"),
    [
        ({"mac": MAC_CONF}, "", MAC_CONF),
        ({"mac": MAC_CONF}, f"MAC={MAC_ARGS}", MAC_ARGS),
        ({"mac": MAC_CONF, "runtimeConfig": {"mac": MAC_RC}}, f"MAC={MAC_ARGS}", MAC_RC),
        (
            {"mac": MAC_CONF, "runtimeConfig": {"mac": MAC_RC}, "args": {"cni": {"mac": MAC_CNI}}},
            f"MAC={MAC_ARGS}",
            MAC_CNI,
        ),
        # an empty value does not override, except args.cni.mac (a pointer in Go)
        ({"mac": MAC_CONF, "runtimeConfig": {"mac": ""}}, "MAC=", MAC_CONF),
        ({"mac": MAC_CONF, "args": {"cni": {"mac": ""}}}, "", ""),
        ({"args": {"cni": {"mac": None}}, "mac": MAC_CONF}, "", MAC_CONF),
        ({}, f"IgnoreUnknown=1;K8S_POD_NAME=x;MAC={MAC_ARGS}", MAC_ARGS),
    ],
)
def test_mac_precedence(doc, cni_args, expected):
    assert load(doc, cni_args).mac == expected


def test_args_cni_overrides_and_merges():
    n = load(
        {
            "sysctl": {"net.a": "1", "net.b": "2"},
            "promisc": True,
            "mtu": 1400,
            "allmulti": True,
            "txQLen": 10,
            "args": {
                "cni": {
                    "sysctl": {"net.b": "20", "net.c": "30"},
                    "promisc": False,
                    "mtu": 1300,
                    "allmulti": False,
                    "txQLen": 20,
                }
            },
        }
    )
    assert n.sysctl == {"net.a": "1", "net.b": "20", "net.c": "30"}
    assert (n.promisc, n.mtu, n.allmulti, n.txqlen) == (False, 1300, False, 20)


def test_args_cni_sysctl_without_a_sysctl_map():
    """The reference panics here (assignment to a nil map); pycni merges."""
    assert load({"args": {"cni": {"sysctl": {"net.x": "1"}}}}).sysctl == {"net.x": "1"}


def test_null_means_not_set():
    n = load({"mtu": None, "allmulti": None, "txQLen": None, "sysctl": None, "mac": None})
    assert not n.changes_link and n.sysctl == {}


# --- duplicate sysctl keys ---------------------------------------------------------------


def test_duplicate_sysctl_keys_are_refused():
    text = json.dumps(BASE)[:-1] + ', "sysctl": {"net.a": "1", "net.a": "2"}}'
    err = load_error(text)
    assert err.code == 7 and "duplicated sysctl keys" in err.msg and '"net.a"' in err.msg


def test_duplicates_across_case_variants_of_sysctl_are_refused():
    """Go decodes "sysctl" and "SYSCTL" into the one map: a key in both is
    a duplicate."""
    text = json.dumps(BASE)[:-1] + ', "sysctl": {"net.a": "1"}, "SYSCTL": {"net.a": "1"}}'
    assert "duplicated sysctl keys" in load_error(text).msg


def test_case_variants_of_sysctl_merge():
    text = json.dumps(BASE)[:-1] + ', "sysctl": {"net.a": "1"}, "Sysctl": {"net.b": "2"}}'
    assert load(text).sysctl == {"net.a": "1", "net.b": "2"}


def test_same_key_in_args_cni_sysctl_is_an_override_not_a_duplicate():
    n = load({"sysctl": {"net.a": "1"}, "args": {"cni": {"sysctl": {"net.a": "2"}}}})
    assert n.sysctl == {"net.a": "2"}


def test_nested_sysctl_keys_are_not_checked_for_duplicates():
    text = json.dumps(BASE)[:-1] + ', "other": {"sysctl": {"a": 1, "a": 2}}}'
    assert load(text).sysctl == {}


# --- wrong types and bad values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"sysctl": "net.a=1"}, '"sysctl"'),
        ({"sysctl": ["net.a"]}, '"sysctl"'),
        ({"sysctl": {"net.a": 1}}, '"sysctl"'),
        ({"sysctl": {"net.a": True}}, '"sysctl"'),
        ({"mac": 12}, '"mac"'),
        ({"promisc": "true"}, '"promisc"'),
        ({"promisc": 1}, '"promisc"'),
        ({"mtu": "1400"}, '"mtu"'),
        ({"mtu": 1400.5}, '"mtu"'),
        ({"mtu": True}, '"mtu"'),
        ({"allmulti": "yes"}, '"allmulti"'),
        ({"txQLen": "1000"}, '"txQLen"'),
        ({"txQLen": 1.5}, '"txQLen"'),
        ({"dataDir": 7}, '"dataDir"'),
        ({"runtimeConfig": "x"}, '"runtimeConfig"'),
        ({"runtimeConfig": {"mac": 5}}, '"runtimeConfig.mac"'),
        ({"args": []}, '"args"'),
        ({"args": {"cni": 3}}, '"args.cni"'),
        ({"args": {"cni": {"mac": 1}}}, '"args.cni.mac"'),
        ({"args": {"cni": {"promisc": "on"}}}, '"args.cni.promisc"'),
        ({"args": {"cni": {"mtu": "9000"}}}, '"args.cni.mtu"'),
        ({"args": {"cni": {"allmulti": 0}}}, '"args.cni.allmulti"'),
        ({"args": {"cni": {"txQLen": False}}}, '"args.cni.txQLen"'),
        ({"args": {"cni": {"sysctl": "x"}}}, '"args.cni.sysctl"'),
        ({"args": {"cni": {"sysctl": {"net.a": 1}}}}, '"args.cni.sysctl"'),
    ],
)
def test_wrong_types_are_config_errors_naming_the_key(doc, key):
    err = load_error(doc)
    assert err.code == 7, err
    assert key in err.msg, err


@pytest.mark.parametrize(
    ("doc", "named"),
    [
        ({"mac": "not-a-mac"}, '"not-a-mac" (from mac)'),
        ({"mac": "02:00:00:00:00"}, "(from mac)"),
        ({"mac": "02:00:00:00:00:0g"}, "(from mac)"),
        ({"runtimeConfig": {"mac": "zz:zz:zz:zz:zz:zz"}}, "(from runtimeConfig.mac)"),
        ({"args": {"cni": {"mac": "1"}}}, "(from args.cni.mac)"),
        ({"mtu": -1}, '"mtu" -1'),
        ({"mtu": 1 << 31}, '"mtu" 2147483648'),
        ({"txQLen": -1}, '"txQLen" -1'),
        ({"txQLen": 1 << 32}, '"txQLen" 4294967296'),
        ({"args": {"cni": {"mtu": -5}}}, '"mtu" -5'),
    ],
)
def test_bad_values_are_config_errors(doc, named):
    err = load_error(doc)
    assert err.code == 7, err
    assert named in err.msg, err


@pytest.mark.parametrize(
    "cni_args", ["MAC=nope", "MAC=02:00:00:00:00:01;FOO=bar", "MAC=a=b", "IgnoreUnknown=maybe"]
)
def test_bad_cni_args_are_code_4(cni_args):
    assert load_error({}, cni_args).code == 4


def test_mac_forms_of_net_parsemac_are_accepted():
    assert load({"mac": "02-00-5E-10-00-01"}).mac == "02:00:5e:10:00:01"
    assert load({"mac": "0200.5e10.0001"}).mac == "02:00:5e:10:00:01"


# --- sysctl keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "ifname", "path"),
    [
        ("net.ipv4.ip_forward", "eth0", "/proc/sys/net/ipv4/ip_forward"),
        ("net.ipv4.conf.IFNAME.arp_filter", "eth0", "/proc/sys/net/ipv4/conf/eth0/arp_filter"),
        # the interface name is put in after the dots became slashes: a dotted
        # (VLAN) name stays one path component
        (
            "net.ipv4.conf.IFNAME.arp_filter",
            "eth0.100",
            "/proc/sys/net/ipv4/conf/eth0.100/arp_filter",
        ),
        # only the first IFNAME
        ("net.IFNAME.IFNAME", "ab", "/proc/sys/net/ab/IFNAME"),
        # slashes work as in the reference; empty components are cleaned
        ("net/ipv4/ip_forward", "eth0", "/proc/sys/net/ipv4/ip_forward"),
        ("net..ipv4.ip_forward", "eth0", "/proc/sys/net/ipv4/ip_forward"),
        # dots are separators, so ".." cannot climb out: this stays in net/
        ("net/../kernel/hostname", "eth0", "/proc/sys/net/kernel/hostname"),
    ],
)
def test_sysctl_path(key, ifname, path):
    assert tconf.sysctl_path(key, ifname) == path


@pytest.mark.parametrize(
    "key",
    [
        "kernel.hostname",
        "vm.swappiness",
        "net",
        "net.",
        "net/",
        "net/../..",
        "../etc/passwd",
        "/etc/passwd",
        "netfoo.x",
        "",
        "net.ipv4.ip_forward\0",
        "IFNAME.x",
    ],
)
def test_sysctl_keys_outside_net_are_refused(key):
    with pytest.raises(CNIError) as info:
        tconf.sysctl_path(key, "eth0")
    assert info.value.code == 7
    assert info.value.msg.startswith("invalid net sysctl key: ")


def test_sysctl_key_outside_net_fails_the_whole_config():
    err = load_error({"sysctl": {"net.ipv4.ip_forward": "1", "kernel.panic": "1"}})
    assert err.code == 7 and err.msg == 'invalid net sysctl key: "kernel/panic"'


def test_ifname_making_the_key_escape_is_refused():
    with pytest.raises(CNIError):
        tconf.sysctl_path("net/IFNAME/../../kernel/x", "..")


@settings(max_examples=500, deadline=None)
@given(
    key=st.text(alphabet="net./IFNAMEkrl0_-\\ ", max_size=30),
    ifname=st.text(alphabet="eth0.-_IFNAME", min_size=1, max_size=15).filter(
        lambda s: s not in (".", "..")
    ),
)
def test_any_key_resolves_under_proc_sys_net_or_is_refused(key, ifname):
    try:
        path = tconf.sysctl_path(key, ifname)
    except CNIError as err:
        assert err.code == 7
        return
    assert path.startswith("/proc/sys/net/")
    assert os.path.normpath(path) == path
    assert ".." not in path.split("/")


# --- allow-list --------------------------------------------------------------------------


@pytest.fixture
def allowlist(tmp_path, monkeypatch):
    path = tmp_path / "allowlist.conf"
    monkeypatch.setattr(tconf, "ALLOWLIST_FILE", str(path))
    return path


def test_no_allowlist_file_allows_every_net_key(allowlist):
    assert load({"sysctl": {"net.core.somaxconn": "500"}}).sysctl


def test_allowlist_allows_matching_keys(allowlist):
    allowlist.write_text("\n  ^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$  \n\nnet.core.somaxconn\n")
    n = load({"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1", "net.core.somaxconn": "5"}})
    assert len(n.sysctl) == 2


def test_allowlist_refuses_other_keys(allowlist):
    allowlist.write_text("^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$\nnet.core.somaxconn\n")
    err = load_error({"sysctl": {"net.ipv4.ip_forward": "1"}})
    assert err.code == 7
    assert err.msg == (
        "Sysctl net.ipv4.ip_forward is not allowed. Only the following sysctls are allowed: "
        "[^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$ net.core.somaxconn]"
    )


def test_allowlist_applies_to_args_cni_sysctl(allowlist):
    allowlist.write_text("^net\\.core\\.\n")
    err = load_error({"args": {"cni": {"sysctl": {"net.ipv4.ip_forward": "1"}}}})
    assert "net.ipv4.ip_forward is not allowed" in err.msg


def test_empty_allowlist_refuses_everything(allowlist):
    allowlist.write_text("\n\n")
    assert "is not allowed" in load_error({"sysctl": {"net.core.somaxconn": "5"}}).msg


def test_allowlist_is_not_read_without_sysctls(allowlist):
    allowlist.write_text("(")  # invalid, but never compiled
    assert load({"mtu": 1400}).mtu == 1400


def test_invalid_allowlist_regexp_is_an_error(allowlist):
    allowlist.write_text("net.(\n")
    err = load_error({"sysctl": {"net.core.somaxconn": "5"}})
    assert err.code == 999 and "invalid regular expression" in err.msg


def test_check_does_not_apply_the_allowlist(allowlist):
    allowlist.write_text("^nothing$\n")
    assert load({"sysctl": {"net.core.somaxconn": "5"}}, allowlist=False).sysctl


# --- the backup file ---------------------------------------------------------------------


def test_backup_encoding_is_gos_marshalindent():
    saved = {"txQLen": 1000, "mtu": 1500, "mac": "02:00:5e:10:00:01", "promisc": False}
    saved["allmulti"] = True
    assert backup.encode(saved) == (
        b'{\n "mac": "02:00:5e:10:00:01",\n "promisc": false,\n "mtu": 1500,\n'
        b' "allmulti": true,\n "txQLen": 1000\n}'
    )
    assert backup.encode({"mtu": 9000}) == b'{\n "mtu": 9000\n}'
    assert backup.encode({}) == b"{}"


def test_backup_decoding_as_go_reads_it():
    data = b'{\n "mac": "02:00:5e:10:00:01",\n "promisc": false,\n "mtu": 1500\n}'
    assert backup.decode(data) == {"mac": "02:00:5e:10:00:01", "promisc": False, "mtu": 1500}
    assert backup.decode(b'{"MTU": 0, "Mac": "", "allmulti": null, "txqlen": 0}') == {"txQLen": 0}
    assert backup.decode(b'{"unknown": 1}') == {}
    assert backup.decode(b"null") == {}


@pytest.mark.parametrize(
    "data", [b"", b"{", b"[]", b'"x"', b'{"mtu": "1500"}', b'{"promisc": 1}', b'{"mtu": 1.5}']
)
def test_invalid_backups_decode_to_none(data):
    assert backup.decode(data) is None


def test_backup_write_creates_the_folders_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "a" / "b" / "c_eth0.json"
        backup.write(str(path), b"{}")
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", path):
        assert os.stat(p).st_mode & 0o777 == 0o600, p
    assert path.read_bytes() == b"{}"
    assert not (tmp_path / "a" / "b" / "c_eth0.json.tmp").exists()


def test_put_back_restores_or_removes(tmp_path):
    path = str(tmp_path / "x.json")
    backup.write(path, b"new")
    backup.put_back(path, b"old")
    with open(path, "rb") as f:
        assert f.read() == b"old"
    backup.put_back(path, None)
    assert not os.path.exists(path)
    backup.put_back(path, None)  # already gone: fine


# --- hostile configs ---------------------------------------------------------------------

KEYS = ["sysctl", "mac", "promisc", "mtu", "txQLen", "allmulti", "dataDir", "runtimeConfig", "args"]
KEYS += ["SYSCTL", "Mac", "cni"]
HOSTILE = configs(
    KEYS,
    nested=["net.a", "net.IFNAME.b"],
    leaves=["net.ipv4.ip_forward", "kernel.x", "02:00:00:00:00:01", "net/../.."],
    list_size=3,
)


@settings(max_examples=400, deadline=None)
@given(
    doc=HOSTILE,
    cni_args=st.sampled_from(["", "MAC=02:00:00:00:00:09", "MAC=zz", "X=1", "IgnoreUnknown=1;X=1"]),
)
def test_any_config_decodes_or_raises_a_cni_error(doc, cni_args):
    try:
        n = load(doc, cni_args)
    except CNIError as err:
        assert err.code in (4, 7), err
        assert err.msg
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in n.sysctl.items())
    for key in n.sysctl:
        assert tconf.sysctl_path(key, "eth0").startswith("/proc/sys/net/")
    assert n.mac == "" or len(n.mac) in (17, 23, 59)
    assert n.mtu >= 0 and (n.txqlen is None or n.txqlen >= 0)
    assert isinstance(n.data_dir, str) and n.data_dir
