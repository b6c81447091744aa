"""resolv.conf parsing for host-local's resolvConf."""

from __future__ import annotations

import pytest

from pycni.plugins.ipam.host_local.dns import parse_resolv_conf, parse_resolv_conf_text
from pycni.spec.errors import CNIError
from pycni.spec.result import DNS


def test_full_file(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(
        "# generated\n"
        "; also a comment\n"
        "nameserver 198.18.0.53\n"
        "  nameserver   fd00::53   # trailing words are ignored\n"
        "\n"
        "domain example.com\n"
        "domain example.org\n"
        "search a.example b.example\r\n"
        "search c.example\n"
        "options ndots:5 edns0\n"
        "options rotate\n"
        "sortlist 198.18.0.0/255.255.0.0\n"
        "nameserver\n"
    )
    assert parse_resolv_conf(str(path)) == DNS(
        nameservers=["198.18.0.53", "fd00::53"],
        domain="example.org",
        search=["a.example", "b.example", "c.example"],
        options=["ndots:5", "edns0", "rotate"],
    )


def test_empty_text():
    assert parse_resolv_conf_text("") == ([], "", [], [])
    assert parse_resolv_conf_text("#nameserver 1.1.1.1\n   \n") == ([], "", [], [])


def test_keywords_are_case_sensitive_and_tabs_separate():
    assert parse_resolv_conf_text("Nameserver 1.1.1.1\nnameserver\t2.2.2.2") == (
        ["2.2.2.2"],
        "",
        [],
        [],
    )


def test_missing_file_is_an_io_error(tmp_path):
    with pytest.raises(CNIError) as info:
        parse_resolv_conf(str(tmp_path / "nope"))
    assert info.value.code == 5
    assert info.value.msg == (
        f"failed to read resolvConf {tmp_path / 'nope'}: No such file or directory"
    )
