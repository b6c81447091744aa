"""CNIError values and the name/ID/interface validation rules."""

from __future__ import annotations

import json
import pickle

import pytest

from pycni.spec import errors, validate
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import go_dumps


def test_codes() -> None:
    assert [
        errors.ERR_UNKNOWN,
        errors.ERR_INCOMPATIBLE_CNI_VERSION,
        errors.ERR_UNSUPPORTED_FIELD,
        errors.ERR_UNKNOWN_CONTAINER,
        errors.ERR_INVALID_ENVIRONMENT_VARIABLES,
        errors.ERR_IO_FAILURE,
        errors.ERR_DECODING_FAILURE,
        errors.ERR_INVALID_NETWORK_CONFIG,
        errors.ERR_INVALID_NETNS,
        errors.ERR_TRY_AGAIN_LATER,
        errors.ERR_PLUGIN_NOT_AVAILABLE,
        errors.ERR_LIMITED_CONNECTIVITY,
        errors.ERR_INTERNAL,
    ] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 50, 51, 999]


def test_error_string_like_go() -> None:
    assert str(CNIError(7, "bad")) == "bad"
    assert str(CNIError(7, "bad", "more")) == "bad; more"
    assert repr(CNIError(7, "bad", "more")) == "CNIError(7, 'bad', 'more')"
    assert isinstance(CNIError(1, "x"), Exception)


def test_error_json_shape() -> None:
    """As skel prints it: Go's types.Error.Print."""

    def to_json(err: CNIError, cni_version: str | None = None) -> str:
        return go_dumps(err.to_dict(cni_version))

    assert to_json(CNIError(7, "bad")) == '{\n    "code": 7,\n    "msg": "bad"\n}'
    text = to_json(CNIError(4, "x<y", "d"), "1.1.0")
    assert text == (
        '{\n    "cniVersion": "1.1.0",\n    "code": 4,\n    "msg": "x\\u003cy",\n'
        '    "details": "d"\n}'
    )
    assert list(json.loads(text)) == ["cniVersion", "code", "msg", "details"]
    assert to_json(CNIError(0, "é")) == '{\n    "code": 0,\n    "msg": "é"\n}'
    assert CNIError(0, "m").to_dict() == {"code": 0, "msg": "m"}


def test_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(CNIError(4, "m", "d")))
    assert (err.code, err.msg, err.details) == (4, "m", "d")


def check(fn, value, code: int, msg: str, details: str = "") -> None:
    with pytest.raises(CNIError) as info:
        fn(value)
    assert (info.value.code, info.value.msg, info.value.details) == (code, msg, details)


@pytest.mark.parametrize("name", ["a", "dbnet", "net-1.v2_x", "0", "A.B-C_d"])
def test_valid_names(name: str) -> None:
    validate.network_name(name)
    validate.container_id(name)
    assert validate.is_valid_name(name)


def test_network_name_errors() -> None:
    check(validate.network_name, "", 7, "missing network name")
    check(validate.network_name, None, 7, "missing network name")
    for bad in ("-a", ".a", "_a", "a b", "a/b", "a:b", "ä", "a\n"):
        check(validate.network_name, bad, 7, "invalid characters found in network name", bad)
    check(validate.network_name, 5, 7, "invalid characters found in network name", "5")


def test_container_id_errors() -> None:
    check(validate.container_id, "", 3, "missing containerID")
    for bad in ("-a", "a b", "a/b", "a;b"):
        check(validate.container_id, bad, 4, "invalid characters in containerID", bad)


@pytest.mark.parametrize("name", ["eth0", "a", "x" * 15, "é" * 7, "veth-1.2@x", "...", "a\udcff"])
def test_valid_interface_names(name: str) -> None:
    validate.interface_name(name)


def test_interface_name_errors() -> None:
    check(validate.interface_name, "", 4, "interface name is empty")
    long = "interface name should be less than 16 characters"
    check(validate.interface_name, "x" * 16, 4, "interface name is too long", long)
    check(validate.interface_name, "é" * 8, 4, "interface name is too long", long)  # 16 bytes
    check(validate.interface_name, "\udcff" * 16, 4, "interface name is too long", long)
    check(validate.interface_name, "\ud800" * 8, 4, "interface name is too long", long)
    check(validate.interface_name, ".", 4, "interface name is . or ..")
    check(validate.interface_name, "..", 4, "interface name is . or ..")
    for bad in ("a/b", "a:b", "a b", "a\tb", "a\u00a0b", "a\u3000b"):
        check(
            validate.interface_name,
            bad,
            4,
            "interface name contains / or : or whitespace characters",
        )
