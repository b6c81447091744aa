"""The dhcp IPAM keys (conf.py) and the daemon's command line (Go flag
syntax and durations, daemon.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.plugins.ipam.dhcp import daemon
from pycni.plugins.ipam.dhcp.conf import DEFAULT_SOCKET_PATH, OPTION_NAMES, DHCPConf, client_id
from pycni.spec.errors import CNIError


def conf(**ipam) -> dict:
    return {"cniVersion": "1.0.0", "name": "dhnet", "ipam": {"type": "dhcp", **ipam}}


def config_error(netconf: dict, cni_args: str = "") -> CNIError:
    with pytest.raises(CNIError) as info:
        DHCPConf(netconf).options(cni_args)
    return info.value


def test_defaults():
    c = DHCPConf(conf())
    assert c.socket_path == DEFAULT_SOCKET_PATH
    assert c.name == "dhnet" and c.priority == 0
    assert c.options("") == [(55, bytes([3, 1]))]
    assert DHCPConf({"name": "n"}).socket_path == DEFAULT_SOCKET_PATH  # no ipam at all


def test_socket_path_and_priority():
    c = DHCPConf(conf(daemonSocketPath="/tmp/x.sock", priority=42))
    assert (c.socket_path, c.priority) == ("/tmp/x.sock", 42)


@pytest.mark.parametrize("name", sorted(OPTION_NAMES))
def test_option_names(name):
    c = DHCPConf(conf(provide=[{"option": name, "value": "v"}]))
    assert c.options("")[0] == (OPTION_NAMES[name], b"v")


@given(st.integers(1, 254).filter(lambda n: n != 53))
def test_decimal_codes(code):
    c = DHCPConf(conf(provide=[{"option": str(code), "value": "x"}]))
    assert c.options("")[0] == (code, b"x")


def test_request_list():
    c = DHCPConf(conf(request=[{"option": "host-name"}, {"option": "121"}]))
    assert c.options("") == [(55, bytes([12, 121, 3, 1]))]
    c = DHCPConf(conf(request=[{"option": "routers"}, {"skipDefault": True}]))
    assert c.options("") == [(55, bytes([3]))]
    c = DHCPConf(conf(request=[{"skipDefault": True}]))
    assert c.options("") == []  # no Parameter Request List at all


def test_provide_from_cni_args_wins_over_value():
    c = DHCPConf(conf(provide=[{"option": "host-name", "value": "cfg", "fromArg": "K8S_POD_NAME"}]))
    assert c.options("")[0] == (12, b"cfg")
    assert c.options("IgnoreUnknown=1;K8S_POD_NAME=pod-1")[0] == (12, b"pod-1")
    assert c.options("K8S_POD_NAME=a=b")[0] == (12, b"a=b")  # first "=" splits
    assert c.options("OTHER=1")[0] == (12, b"cfg")


def test_provide_without_value_sends_nothing():
    c = DHCPConf(conf(provide=[{"option": "host-name", "fromArg": "NAME"}]))
    assert c.options("") == [(55, bytes([3, 1]))]


@pytest.mark.parametrize(
    ("ipam", "words"),
    [
        ({"provide": [{"option": "classless-static-routes", "value": "x"}]}, ["provide[0]"]),
        ({"provide": [{"option": "256", "value": "x"}]}, ["provide[0].option", "256"]),
        ({"provide": [{"option": "-1", "value": "x"}]}, ["provide[0].option", "-1"]),
        ({"provide": [{"option": "", "value": "x"}]}, ["provide[0].option"]),
        ({"request": [{"option": "nope"}]}, ["request[0].option", "nope"]),
        ({"request": [{"option": 3}]}, ["request[0].option"]),
        ({"provide": [{"option": "12", "value": "x" * 256}]}, ["provide[0].value", "256 bytes"]),
        ({"provide": [{"option": "53", "value": "x"}]}, ["provide[0].option", "53"]),
        ({"provide": [{"option": "0", "value": "x"}]}, ["provide[0].option", "pad"]),
        ({"provide": "x"}, ["ipam.provide"]),
        ({"provide": ["x"]}, ["ipam.provide[0]"]),
        ({"request": [{"skipDefault": "yes"}]}, ["request[0].skipDefault"]),
        ({"daemonSocketPath": 5}, ["ipam.daemonSocketPath"]),
        ({"priority": "1"}, ["ipam.priority"]),
        ({"priority": -1}, ["ipam.priority", "-1"]),
    ],
)
def test_bad_config_is_error_7_naming_key_and_value(ipam, words):
    err = config_error(conf(**ipam))
    assert err.code == 7
    for word in words:
        assert word in err.msg


def test_value_of_255_bytes_is_fine_256_is_not():
    DHCPConf(conf(provide=[{"option": "12", "value": "é" * 127 + "x"}]))  # 255 bytes
    err = config_error(conf(provide=[{"option": "12", "value": "é" * 128}]))  # 256 bytes
    assert err.code == 7 and "256 bytes" in err.msg


def test_too_long_cni_arg_is_error_4():
    c = conf(provide=[{"option": "host-name", "fromArg": "NAME"}])
    err = config_error(c, "NAME=" + "x" * 256)
    assert err.code == 4 and "NAME" in err.msg and "host-name" in err.msg


def test_client_id():
    assert client_id("ctr", "net", "eth0") == "ctr/net/eth0"
    long = client_id("c" * 300, "net", "eth0")
    assert long == "c" * 254


def test_client_id_cuts_bytes_as_go():
    cid = client_id("é" * 200, "n", "eth0")  # 400 bytes of container ID
    assert len(cid.encode("utf-8", "surrogateescape")) == 254


# --- the daemon's flags -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("1m30s", 90),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("0", 0),
        ("2m", 120),
        ("100us", 1e-4),
        ("-1s", -1),
    ],
)
def test_parse_duration(text, seconds):
    assert daemon.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "1..2s", "."])
def test_parse_duration_errors(text):
    with pytest.raises(ValueError, match="time: "):
        daemon.parse_duration(text)


def test_parse_flags_defaults_and_forms():
    flags = daemon.parse_flags([])
    assert flags == {
        "broadcast": False,
        "hostprefix": "",
        "pidfile": "",
        "resendmax": 62.0,
        "resendtimeout": 208.0,
        "socketpath": "",
        "timeout": 10.0,
    }
    flags = daemon.parse_flags(
        ["-socketpath", "/x.sock", "--timeout=2s", "-broadcast", "-resendmax", "4s"]
    )
    assert flags["socketpath"] == "/x.sock" and flags["timeout"] == 2.0
    assert flags["broadcast"] is True and flags["resendmax"] == 4.0
    assert daemon.parse_flags(["-broadcast=false"])["broadcast"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-nope"], "flag provided but not defined: -nope"),
        (["-timeout"], "flag needs an argument: -timeout"),
        (["-timeout", "ten"], 'invalid value "ten" for flag -timeout'),
        (["-broadcast=maybe"], 'invalid boolean value "maybe"'),
        (["---x"], "bad flag syntax"),
    ],
)
def test_parse_flags_errors(argv, message):
    with pytest.raises(daemon.UsageError, match=message):
        daemon.parse_flags(argv)


def test_usage_lists_every_flag():
    text = daemon.usage()
    for name in daemon.FLAGS:
        assert f"-{name}" in text
    assert "(default 3m28s)" in text and "(default 10s)" in text
