"""Version strings, comparison, negotiation and VERSION answers."""

from __future__ import annotations

import json

import pytest

from pycni.spec import version


def test_constants() -> None:
    assert version.CURRENT == "1.1.0"
    assert version.ALL == ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
    assert version.LEGACY == ("0.1.0", "0.2.0")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", (0, 1, 0)),
        ("1", (1, 0, 0)),
        ("1.2", (1, 2, 0)),
        ("0.4.0", (0, 4, 0)),
        ("10.20.30", (10, 20, 30)),
        ("01.002.3", (1, 2, 3)),
        ("+1.0.0", (1, 0, 0)),
    ],
)
def test_parse(text: str, parsed: tuple) -> None:
    assert version.parse(text) == parsed


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        (
            "asdf.",
            'failed to convert major version part "asdf": strconv.Atoi: parsing "asdf":'
            " invalid syntax",
        ),
        ("0.", 'failed to convert minor version part "": strconv.Atoi: parsing "": invalid syntax'),
        ("..", 'failed to convert major version part "": strconv.Atoi: parsing "": invalid syntax'),
        (
            "1.0.0-rc1",
            'failed to convert micro version part "0-rc1": strconv.Atoi: parsing "0-rc1":'
            " invalid syntax",
        ),
        ("1.2.3.4", 'invalid version "1.2.3.4": too many parts'),
        (
            "1.٣.0",
            'failed to convert minor version part "٣": strconv.Atoi: parsing "٣": invalid syntax',
        ),
        (
            "99999999999999999999",
            'failed to convert major version part "99999999999999999999": strconv.Atoi:'
            ' parsing "99999999999999999999": value out of range',
        ),
        (
            "v1.0.0",
            'failed to convert major version part "v1": strconv.Atoi: parsing "v1": invalid syntax',
        ),
    ],
)
def test_parse_errors(text: str, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        version.parse(text)
    assert str(info.value) == msg


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        version.parse(None)  # type: ignore[arg-type]


def test_comparison() -> None:
    assert version.gte("1.0.0", "0.4.0") and version.gte("0.4.0", "0.4.0")
    assert not version.gte("0.3.1", "0.4.0")
    assert version.gt("1.1.0", "1.0.0") and not version.gt("1.0.0", "1.0.0")
    assert version.gte("", "0.1.0") and not version.gt("", "0.1.0")
    assert version.gt("0.10.0", "0.9.0")  # numeric, not lexical
    assert version.gte("1.0", "1.0.0") and version.gte("1.0.0", "1")


def test_versions_from() -> None:
    assert version.versions_from("0.4.0") == ("0.4.0", "1.0.0", "1.1.0")
    assert version.versions_from("0.1.0") == version.ALL
    assert version.versions_from("1.0") == ()


@pytest.mark.parametrize(
    ("cni_version", "cni_versions", "selected"),
    [
        (None, ["1.1.0", "0.4.0", "1.0.0"], "1.1.0"),
        (None, ["99.0.0", "1.1.0", "1.0.0"], "1.1.0"),
        ("1.0.0", ["0.1.0", "0.4.0"], "1.0.0"),
        (None, [], ""),
        ("1.2.3", None, "1.2.3"),
        ("", None, ""),
        (None, None, ""),
        ("1.2.0", ["1.1.5"], "1.2.0"),
        ("1.2.0", ["1.0.5"], "1.0.5"),
    ],
)
def test_select(cni_version, cni_versions, selected: str) -> None:
    assert version.select(cni_version, cni_versions) == selected


@pytest.mark.parametrize(
    ("cni_version", "cni_versions", "msg"),
    [
        (1, None, "invalid cniVersion type float64"),
        (True, None, "invalid cniVersion type bool"),
        ("1.0.0", "1.0.0", "invalid type for cniVersions: string"),
        ("1.0.0", {}, "invalid type for cniVersions: map[string]interface {}"),
        (None, ["1.0.0", None], "invalid type for cniVersions index 1: <nil>"),
        (
            None,
            ["x"],
            'invalid cniVersions entry x at index 0: failed to convert major version part "x":'
            ' strconv.Atoi: parsing "x": invalid syntax',
        ),
        (
            "1.0.0.0",
            ["1.0.0"],
            'invalid cniVersion 1.0.0.0: invalid version "1.0.0.0": too many parts',
        ),
    ],
)
def test_select_errors(cni_version, cni_versions, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        version.select(cni_version, cni_versions)
    assert str(info.value) == msg


def test_version_info_json() -> None:
    text = version.version_info_json(("0.4.0", "1.0.0"))
    assert text == '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0"]}\n'
    assert json.loads(text)["supportedVersions"] == ["0.4.0", "1.0.0"]


@pytest.mark.parametrize(
    ("data", "supported"),
    [
        (b'{"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0"]}', ["0.4.0", "1.0.0"]),
        (b'{"cniVersion": "0.2.0"}', ["0.1.0", "0.2.0"]),
        (b'{"cniVersion": "0.2.0", "supportedVersions": []}', ["0.1.0", "0.2.0"]),
        (b'{"CNIVersion": "1.0.0", "SupportedVersions": ["1.0.0"]}', ["1.0.0"]),
        ('{"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"], "x": 1}', ["1.0.0"]),
    ],
)
def test_decode_version_info(data, supported: list) -> None:
    assert version.decode_version_info(data) == supported


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        (b"{", None),
        (b"{}", "decoding version info: missing field cniVersion"),
        (b"null", "decoding version info: missing field cniVersion"),
        (b'{"cniVersion": ""}', "decoding version info: missing field cniVersion"),
        (b'{"cniVersion": "1.0.0"}', "decoding version info: missing field supportedVersions"),
        (
            b'{"cniVersion": "1.0.0", "supportedVersions": []}',
            "decoding version info: missing field supportedVersions",
        ),
        (
            b"[]",
            "decoding version info: json: cannot unmarshal array into Go value of type"
            " version.pluginInfo",
        ),
        (
            b'{"cniVersion": 1}',
            "decoding version info: json: cannot unmarshal number into Go struct field"
            " pluginInfo.cniVersion of type string",
        ),
        (
            b'{"cniVersion": "1.0.0", "supportedVersions": "1.0.0"}',
            "decoding version info: json: cannot unmarshal string into Go struct field"
            " pluginInfo.supportedVersions of type []string",
        ),
        (
            b'{"cniVersion": "1.0.0", "supportedVersions": [1]}',
            "decoding version info: json: cannot unmarshal array into Go struct field"
            " pluginInfo.supportedVersions of type []string",
        ),
    ],
)
def test_decode_version_info_errors(data: bytes, msg: str | None) -> None:
    with pytest.raises(ValueError) as info:
        version.decode_version_info(data)
    if msg is None:
        assert str(info.value).startswith("decoding version info: ")
    else:
        assert str(info.value) == msg


def test_go_quote_list() -> None:
    assert version.go_quote_list(["0.1.0", "0.2.0"]) == '["0.1.0" "0.2.0"]'
    assert version.go_quote_list([]) == "[]"
    assert version.go_quote_list(['a"b', "é\n"]) == '["a\\"b" "é\\n"]'
