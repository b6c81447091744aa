"""Network configuration lists, plugin configs and request building (libcni rules)."""

from __future__ import annotations

import json

import pytest

from pycni.spec.config import (
    NetworkConfigList,
    PluginConfig,
    build_gc_request,
    build_request,
    build_status_request,
    inject,
    list_from_single_conf,
    network_config_list_from_bytes,
    plugin_config_from_bytes,
)
from pycni.spec.errors import CNIError
from pycni.spec.result import IPConfig, Result

LIST_ERR = "error parsing configuration list: "


def load(doc: dict | str) -> NetworkConfigList:
    data = doc if isinstance(doc, str) else json.dumps(doc)
    return network_config_list_from_bytes(data.encode())


def list_error(doc: dict | str) -> CNIError:
    with pytest.raises(CNIError) as info:
        load(doc)
    return info.value


def error_of(fn, *args) -> CNIError:
    with pytest.raises(CNIError) as info:
        fn(*args)
    return info.value


SPEC_EXAMPLE = {
    "cniVersion": "1.1.0",
    "cniVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    "name": "dbnet",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "cni0",
            "keyA": ["some more", "plugin specific", "configuration"],
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
            "dns": {"nameservers": ["10.1.0.1"]},
        },
        {"type": "tuning", "capabilities": {"mac": True}, "sysctl": {"net.core.somaxconn": "500"}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


# -- the list ------------------------------------------------------------------------------


def test_spec_example() -> None:
    data = json.dumps(SPEC_EXAMPLE).encode()
    net = network_config_list_from_bytes(data)
    assert (net.name, net.cni_version) == ("dbnet", "1.1.0")
    assert net.cni_versions == ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    assert (net.disable_check, net.disable_gc, net.load_only_inlined_plugins) == (
        False,
        False,
        False,
    )
    assert [p.type for p in net.plugins] == ["bridge", "tuning", "portmap"]
    assert net.raw_bytes == data
    bridge = net.plugins[0]
    assert bridge.raw == SPEC_EXAMPLE["plugins"][0]
    assert json.loads(bridge.raw_bytes) == SPEC_EXAMPLE["plugins"][0]
    assert net.plugins[1].capabilities == {"mac": True}
    assert (bridge.name, bridge.cni_version) == ("", "")


def test_str_input_and_plugins_absent() -> None:
    net = network_config_list_from_bytes('{"name": "n"}')  # type: ignore[arg-type]
    assert (net.plugins, net.cni_version, net.cni_versions) == ([], "", [])
    assert net.raw_bytes == b'{"name": "n"}'


@pytest.mark.parametrize(
    ("cni_version", "cni_versions", "selected"),
    [
        (None, ["1.1.0", "0.4.0", "1.0.0"], "1.1.0"),
        (None, ["99.0.0", "1.1.0", "1.0.0"], "1.1.0"),
        ("1.0.0", ["0.1.0", "0.4.0"], "1.0.0"),
        ("0.4.0", ["1.0.0"], "1.0.0"),
        (None, [], ""),
        ("1.2.3", None, "1.2.3"),
        ("1.2.3", [], "1.2.3"),
        ("2.0.0", ["3.0.0"], "2.0.0"),
        ("", ["0.3.1"], "0.3.1"),
        ("0.3.1", None, "0.3.1"),
    ],
)
def test_version_selection(cni_version, cni_versions, selected) -> None:
    doc: dict = {"name": "n"}
    if cni_version is not None:
        doc["cniVersion"] = cni_version
    if cni_versions is not None:
        doc["cniVersions"] = cni_versions
    assert load(doc).cni_version == selected


@pytest.mark.parametrize(
    ("doc", "code", "msg"),
    [
        ("{", 6, None),
        (
            "[]",
            7,
            LIST_ERR + "json: cannot unmarshal array into Go value of type map[string]interface {}",
        ),
        ("null", 7, LIST_ERR + "no name"),
        ({}, 7, LIST_ERR + "no name"),
        ({"name": 1}, 7, LIST_ERR + "invalid name type float64"),
        ({"name": None}, 7, LIST_ERR + "invalid name type <nil>"),
        ({"name": []}, 7, LIST_ERR + "invalid name type []interface {}"),
        ({"name": ""}, 7, "missing network name"),
        ({"name": "a/b"}, 7, "invalid characters found in network name"),
        ({"name": "-a"}, 7, "invalid characters found in network name"),
        ({"name": "n", "cniVersion": 1}, 7, LIST_ERR + "invalid cniVersion type float64"),
        ({"name": "n", "cniVersion": None}, 7, LIST_ERR + "invalid cniVersion type <nil>"),
        (
            {"name": "n", "cniVersions": "1.0.0"},
            7,
            LIST_ERR + "invalid type for cniVersions: string",
        ),
        ({"name": "n", "cniVersions": None}, 7, LIST_ERR + "invalid type for cniVersions: <nil>"),
        (
            {"name": "n", "cniVersions": ["1.0.0", 1]},
            7,
            LIST_ERR + "invalid type for cniVersions index 1: float64",
        ),
        (
            {"name": "n", "cniVersions": ["1.0.0-rc1"]},
            7,
            LIST_ERR + "invalid cniVersions entry 1.0.0-rc1 at index 0: failed to convert micro "
            'version part "0-rc1": strconv.Atoi: parsing "0-rc1": invalid syntax',
        ),
        (
            {"name": "n", "cniVersions": ["1.0.0"], "cniVersion": "a"},
            7,
            LIST_ERR + 'invalid cniVersion a: failed to convert major version part "a": '
            'strconv.Atoi: parsing "a": invalid syntax',
        ),
        (
            {"name": "n", "disableCheck": "yes"},
            7,
            LIST_ERR + 'invalid value "yes" for disableCheck',
        ),
        (
            {"name": "n", "disableGC": "FALSE!"},
            7,
            LIST_ERR + 'invalid value "false!" for disableGC',
        ),
        (
            {"name": "n", "loadOnlyInlinedPlugins": 1},
            7,
            LIST_ERR + "invalid type float64 for loadOnlyInlinedPlugins",
        ),
        ({"name": "n", "disableCheck": None}, 7, LIST_ERR + "invalid type <nil> for disableCheck"),
        (
            {"name": "n", "loadOnlyInlinedPlugins": True},
            7,
            LIST_ERR + "`loadOnlyInlinedPlugins` is true, and no 'plugins' key",
        ),
        (
            {"name": "n", "loadOnlyInlinedPlugins": "True"},
            7,
            LIST_ERR + "`loadOnlyInlinedPlugins` is true, and no 'plugins' key",
        ),
        (
            {"name": "n", "plugins": {}},
            7,
            LIST_ERR + "invalid 'plugins' type map[string]interface {}",
        ),
        ({"name": "n", "plugins": None}, 7, LIST_ERR + "invalid 'plugins' type <nil>"),
        ({"name": "n", "plugins": []}, 7, LIST_ERR + "no plugins in list"),
        (
            {"name": "n", "plugins": [{"type": "a"}, {}]},
            7,
            "failed to parse plugin config 1: error parsing configuration: missing 'type'",
        ),
        (
            {"name": "n", "plugins": [{"type": ""}]},
            7,
            "failed to parse plugin config 0: error parsing configuration: missing 'type'",
        ),
        (
            {"name": "n", "plugins": [None]},
            7,
            "failed to parse plugin config 0: error parsing configuration: missing 'type'",
        ),
        (
            {"name": "n", "plugins": ["bridge"]},
            7,
            "failed to parse plugin config 0: error parsing configuration: json: cannot"
            " unmarshal string into Go value of type types.PluginConf",
        ),
    ],
)
def test_list_errors(doc, code: int, msg: str | None) -> None:
    err = list_error(doc)
    assert err.code == code
    if msg is None:
        assert err.msg.startswith(LIST_ERR)
    else:
        assert err.msg == msg


def test_name_error_details() -> None:
    assert list_error({"name": "a b"}).details == "a b"


@pytest.mark.parametrize("key", ["disableCheck", "disableGC", "loadOnlyInlinedPlugins"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("fAlSe", False),
    ],
)
def test_booleans(key: str, value, expected: bool) -> None:
    net = load({"name": "n", key: value, "plugins": [{"type": "x"}]})
    assert (
        getattr(
            net,
            {
                "disableCheck": "disable_check",
                "disableGC": "disable_gc",
                "loadOnlyInlinedPlugins": "load_only_inlined_plugins",
            }[key],
        )
        is expected
    )


def test_list_keys_are_case_sensitive() -> None:
    # libcni reads the list through a plain map: "Name" is not "name".
    assert list_error({"Name": "n"}).msg == LIST_ERR + "no name"
    assert load({"name": "n", "DisableCheck": True}).disable_check is False


# -- plugin configs --------------------------------------------------------------------------


def test_plugin_config_keeps_every_key() -> None:
    data = (
        b'{"type": "bridge", "name": "mynet", "cniVersion": "0.4.0", "custom": {"a": [1]}, '
        b'"args": {"cni": {}}}'
    )
    plugin = plugin_config_from_bytes(data)
    assert (plugin.type, plugin.name, plugin.cni_version) == ("bridge", "mynet", "0.4.0")
    assert plugin.raw == json.loads(data)
    assert plugin.raw_bytes == data
    assert plugin.capabilities == {}
    assert isinstance(plugin, PluginConfig)


def test_plugin_fields_match_case_insensitively() -> None:
    plugin = plugin_config_from_bytes(
        b'{"Type": "bridge", "NAME": "n", "Capabilities": {"mac": true}}'
    )
    assert (plugin.type, plugin.name, plugin.capabilities) == ("bridge", "n", {"mac": True})


PLUGIN_ERR = "error parsing configuration: "


def field_err(kind: str, field: str, go_type: str) -> str:
    return (
        f"{PLUGIN_ERR}json: cannot unmarshal {kind} into Go struct field PluginConf.{field} "
        f"of type {go_type}"
    )


@pytest.mark.parametrize(
    ("data", "code", "msg"),
    [
        (b"{", 6, None),
        (b"{}", 7, PLUGIN_ERR + "missing 'type'"),
        (b"null", 7, PLUGIN_ERR + "missing 'type'"),
        (b'{"type": null}', 7, PLUGIN_ERR + "missing 'type'"),
        (
            b"[1]",
            7,
            PLUGIN_ERR + "json: cannot unmarshal array into Go value of type types.PluginConf",
        ),
        (
            b'{"type": 1}',
            7,
            field_err("number", "type", "string"),
        ),
        (
            b'{"type": "a", "name": true}',
            7,
            field_err("bool", "name", "string"),
        ),
        (
            b'{"type": "a", "cniVersion": 1.0}',
            7,
            field_err("number 1.0", "cniVersion", "string"),
        ),
        (
            b'{"type": "a", "capabilities": []}',
            7,
            field_err("array", "capabilities", "map[string]bool"),
        ),
        (
            b'{"type": "a", "capabilities": {"mac": "true"}}',
            7,
            field_err("string", "capabilities.mac", "bool"),
        ),
        (
            b'{"type": "a", "ipam": "host-local"}',
            7,
            field_err("string", "ipam", "types.IPAM"),
        ),
        (
            b'{"type": "a", "ipam": {"type": 1}}',
            7,
            field_err("number", "ipam.type", "string"),
        ),
        (
            b'{"type": "a", "dns": {"domain": []}}',
            7,
            field_err("array", "dns.domain", "string"),
        ),
        (
            b'{"type": "a", "dns": {"search": [1]}}',
            7,
            field_err("number", "dns.search", "string"),
        ),
        (
            b'{"type": "a", "prevResult": "x"}',
            7,
            field_err("string", "prevResult", "map[string]interface {}"),
        ),
        (
            b'{"type": "a", "cni.dev/valid-attachments": {}}',
            7,
            field_err("object", "cni.dev/valid-attachments", "[]types.GCAttachment"),
        ),
        (
            b'{"type": "a", "cni.dev/valid-attachments": [{"ifname": 1}]}',
            7,
            field_err("number", "cni.dev/valid-attachments.ifname", "string"),
        ),
        (
            b'{"type": "../bin/evil"}',
            7,
            PLUGIN_ERR
            + "invalid 'type' \"../bin/evil\": a plugin name must not contain '/' or '\\'",
        ),
        (
            b'{"type": "a\\\\b"}',
            7,
            PLUGIN_ERR + "invalid 'type' \"a\\\\b\": a plugin name must not contain '/' or '\\'",
        ),
        (
            b'{"type": "a", "ipam": {"type": "/usr/bin/x"}}',
            7,
            PLUGIN_ERR
            + "invalid 'ipam.type' \"/usr/bin/x\": a plugin name must not contain '/' or '\\'",
        ),
    ],
)
def test_plugin_errors(data: bytes, code: int, msg: str | None) -> None:
    err = error_of(plugin_config_from_bytes, data)
    assert err.code == code
    if msg is None:
        assert err.msg.startswith(PLUGIN_ERR)
    else:
        assert err.msg == msg


def test_null_fields_are_unset() -> None:
    plugin = plugin_config_from_bytes(
        b'{"type": "a", "name": null, "capabilities": null, "ipam": null, "dns": null}'
    )
    assert (plugin.name, plugin.capabilities) == ("", {})


def test_list_from_single_conf() -> None:
    plugin = plugin_config_from_bytes(
        b'{"type": "bridge", "name": "old", "cniVersion": "0.3.1", "x": 1}'
    )
    net = list_from_single_conf(plugin)
    assert (net.name, net.cni_version) == ("old", "0.3.1")
    assert len(net.plugins) == 1 and net.plugins[0].raw == plugin.raw
    assert json.loads(net.raw_bytes) == {
        "cniVersion": "0.3.1",
        "name": "old",
        "plugins": [plugin.raw],
    }
    unnamed = plugin_config_from_bytes(b'{"type": "bridge"}')
    assert error_of(list_from_single_conf, unnamed).msg == "missing network name"


# -- requests --------------------------------------------------------------------------------


def request(data: bytes) -> dict:
    return json.loads(data)


@pytest.fixture
def net() -> NetworkConfigList:
    return load(SPEC_EXAMPLE)


def test_request_injects_name_and_version_and_keeps_everything(net: NetworkConfigList) -> None:
    plugin = plugin_config_from_bytes(
        b'{"type": "bridge", "name": "mine", "cniVersion": "0.1.0", "b": {"c": [1, 2]}}'
    )
    out = request(build_request(plugin, net))
    assert out == {"type": "bridge", "name": "dbnet", "cniVersion": "1.1.0", "b": {"c": [1, 2]}}
    assert list(out) == ["type", "name", "cniVersion", "b"]  # original order kept
    assert plugin.raw["name"] == "mine"  # not modified


def test_first_plugin_gets_no_prev_result_nor_runtime_config(net: NetworkConfigList) -> None:
    out = request(build_request(net.plugins[0], net, capability_args={"mac": "aa"}))
    assert "prevResult" not in out and "runtimeConfig" not in out
    assert out == {**SPEC_EXAMPLE["plugins"][0], "name": "dbnet", "cniVersion": "1.1.0"}


def test_capability_injection(net: NetworkConfigList) -> None:
    args = {"mac": "c2:11:22:33:44:55", "portMappings": [{"hostPort": 80}], "bandwidth": {}}
    tuning = request(build_request(net.plugins[1], net, capability_args=args))
    assert tuning["runtimeConfig"] == {"mac": "c2:11:22:33:44:55"}
    assert tuning["capabilities"] == {"mac": True}  # libcni keeps it
    portmap = request(build_request(net.plugins[2], net, capability_args=args))
    assert portmap["runtimeConfig"] == {"portMappings": [{"hostPort": 80}]}


def test_false_and_undeclared_capabilities_are_not_passed() -> None:
    plugin = plugin_config_from_bytes(b'{"type": "a", "capabilities": {"mac": false, "ips": true}}')
    net = load({"name": "n", "cniVersion": "1.0.0"})
    out = request(build_request(plugin, net, capability_args={"mac": "x", "bandwidth": {}}))
    assert "runtimeConfig" not in out
    out = request(build_request(plugin, net, capability_args={"ips": None}))
    assert out["runtimeConfig"] == {"ips": None}


def test_static_runtime_config_passes_through_or_is_replaced() -> None:
    plugin = plugin_config_from_bytes(
        b'{"type": "a", "capabilities": {"mac": true}, "runtimeConfig": {"static": 1}}'
    )
    net = load({"name": "n"})
    assert request(build_request(plugin, net))["runtimeConfig"] == {"static": 1}
    assert request(build_request(plugin, net, capability_args={}))["runtimeConfig"] == {"static": 1}
    out = request(build_request(plugin, net, capability_args={"mac": "m"}))
    assert out["runtimeConfig"] == {"mac": "m"}


def test_prev_result(net: NetworkConfigList) -> None:
    prev = {"cniVersion": "1.1.0", "ips": [{"address": "10.1.0.5/16"}]}
    out = request(build_request(net.plugins[1], net, prev_result=prev))
    assert out["prevResult"] == prev
    result = Result("1.0.0", ips=[IPConfig("10.1.0.5/16")])
    out = request(build_request(net.plugins[1], net, prev_result=result))
    assert out["prevResult"] == {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/16"}]}
    static = plugin_config_from_bytes(b'{"type": "a", "prevResult": {"cniVersion": "0.4.0"}}')
    assert request(build_request(static, net))["prevResult"] == {"cniVersion": "0.4.0"}


def test_request_is_compact_go_json() -> None:
    plugin = plugin_config_from_bytes('{"type": "a", "note": "<é>"}'.encode())
    data = build_request(plugin, load({"name": "n", "cniVersion": "1.0.0"}))
    assert data == '{"type":"a","note":"\\u003cé\\u003e","name":"n","cniVersion":"1.0.0"}'.encode()


def test_gc_request(net: NetworkConfigList) -> None:
    plugin = net.plugins[1]
    absent = request(build_gc_request(plugin, net, None))
    assert "cni.dev/valid-attachments" not in absent and "cni.dev/attachments" not in absent
    assert absent == {**plugin.raw, "name": "dbnet", "cniVersion": "1.1.0"}
    empty = request(build_gc_request(plugin, net, []))
    assert empty["cni.dev/valid-attachments"] == [] and empty["cni.dev/attachments"] == []
    some = request(build_gc_request(plugin, net, [("c1", "eth0"), ("c2", "net1")]))
    expected = [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]
    assert some["cni.dev/valid-attachments"] == expected
    assert some["cni.dev/attachments"] == expected
    assert "runtimeConfig" not in some and "prevResult" not in some


def test_status_request(net: NetworkConfigList) -> None:
    out = request(build_status_request(net.plugins[2], net))
    assert out == {**SPEC_EXAMPLE["plugins"][2], "name": "dbnet", "cniVersion": "1.1.0"}


def test_empty_list_version_is_injected_as_is() -> None:
    plugin = plugin_config_from_bytes(b'{"type": "a", "cniVersion": "0.4.0"}')
    assert request(build_request(plugin, load({"name": "n"})))["cniVersion"] == ""


# -- InjectConf ------------------------------------------------------------------------------


def test_inject() -> None:
    raw = {"type": "a", "x": 1}
    out = inject(raw, {"name": "n", "x": 2, "new": [1]})
    assert out == {"type": "a", "x": 2, "name": "n", "new": [1]}
    assert raw == {"type": "a", "x": 1}


@pytest.mark.parametrize(
    ("keys", "msg"),
    [
        ({"": 1}, "keys cannot be empty"),
        ({"name": None}, "key 'name' value must not be nil"),
        ({"type": ""}, "error parsing configuration: missing 'type'"),
        (
            {"capabilities": "x"},
            "error parsing configuration: json: cannot unmarshal string into Go struct field"
            " PluginConf.capabilities of type map[string]bool",
        ),
    ],
)
def test_inject_errors(keys: dict, msg: str) -> None:
    err = error_of(inject, {"type": "a"}, keys)
    assert (err.code, err.msg) == (7, msg)


def test_injected_key_wins_over_case_variants() -> None:
    out = inject({"type": "a", "name": "x", "NAME": "y", "z": 1}, {"name": "n"})
    assert list(out) == ["type", "NAME", "z", "name"]  # last, so Go's last-wins reads it
    assert out["name"] == "n"
    assert list(inject({"type": "a", "name": "x", "z": 1}, {"name": "n"})) == ["type", "name", "z"]
