"""The plugin SDK: verbs, gates, error codes, env and stdin handling."""

from __future__ import annotations

import io
import json
import os

import pytest

from pycni import skel
from pycni.skel import CmdArgs
from pycni.spec import version
from pycni.spec.errors import CNIError
from pycni.spec.result import IPConfig, Result

NETNS = "/proc/1/ns/net" if os.path.exists("/proc/1/ns/net") else "/nonexistent"


def invoke(
    command: str,
    conf: dict | bytes | None = None,
    env: dict | None = None,
    supported=version.ALL,
    about: str = "",
    **handlers,
):
    environ = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "ctr1",
        "CNI_NETNS": "/tmp/ns-x",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin",
    }
    environ.update(env or {})
    environ = {k: v for k, v in environ.items() if v is not None}
    data = (
        conf
        if isinstance(conf, bytes)
        else json.dumps(
            {"cniVersion": "1.1.0", "name": "net1", "type": "t"} if conf is None else conf
        ).encode()
    )
    out, err = io.StringIO(), io.StringIO()
    plugin = skel.Plugin(supported=supported, about=about, **handlers)
    code = skel.run(environ, io.BytesIO(data), out, err, plugin)
    return code, out.getvalue(), err.getvalue()


def add_ok(args: CmdArgs) -> Result:
    return Result(ips=[IPConfig("198.18.0.5/24", "198.18.0.1")])


def error_of(stdout: str) -> dict:
    return json.loads(stdout)


def test_version_answers_without_stdin():
    code, out, _ = invoke("VERSION", b"not json", supported=("0.4.0", "1.0.0"))
    assert code == 0
    assert json.loads(out) == {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0"]}


def test_about_text_on_empty_command():
    code, out, err = invoke("", about="pycni test plugin", supported=("1.0.0", "1.1.0"))
    assert (code, out) == (0, "")
    assert err == "pycni test plugin\nCNI protocol versions supported: 1.0.0, 1.1.0\n"


def test_empty_command_without_about_is_code_4():
    code, out, _ = invoke("")
    assert code == 1
    assert error_of(out) == {"code": 4, "msg": "required env variables [CNI_COMMAND] missing"}


def test_add_prints_result_in_config_version():
    code, out, _ = invoke("ADD", {"cniVersion": "0.4.0", "name": "n", "type": "t"}, add=add_ok)
    assert code == 0
    assert json.loads(out) == {
        "cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "198.18.0.5/24", "gateway": "198.18.0.1"}],
        "dns": {},
    }


@pytest.mark.parametrize(
    "command,missing",
    [
        ("ADD", "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"),
        ("CHECK", "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"),
        ("DEL", "CNI_CONTAINERID,CNI_IFNAME,CNI_PATH"),
        ("GC", "CNI_PATH"),
        ("STATUS", "CNI_PATH"),
    ],
)
def test_missing_env_vars_are_listed_in_one_error(command, missing):
    env = dict.fromkeys(("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"))
    code, out, _ = invoke(command, env=env, add=add_ok)
    assert code == 1
    assert error_of(out) == {"code": 4, "msg": f"required env variables [{missing}] missing"}


def test_del_does_not_need_netns():
    calls = []
    code, out, _ = invoke("DEL", env={"CNI_NETNS": None}, delete=calls.append)
    assert (code, out) == (0, "")
    assert calls[0].netns == ""


def test_unknown_command():
    code, out, _ = invoke("FROB")
    assert code == 1
    assert error_of(out)["code"] == 4
    assert error_of(out)["msg"] == "unknown CNI_COMMAND: FROB"


def test_bad_json_is_code_6():
    code, out, _ = invoke("ADD", b"{nope", add=add_ok)
    assert code == 1
    err = error_of(out)
    assert err["code"] == 6 and err["msg"].startswith("error unmarshall network config: ")


def test_non_object_json_is_code_6():
    code, out, _ = invoke("ADD", b"[1, 2]", add=add_ok)
    assert code == 1
    assert error_of(out)["code"] == 6


@pytest.mark.parametrize(
    "name,msg",
    [
        (None, "missing network name"),
        ("", "missing network name"),
        ("bad/name", "invalid characters found in network name"),
        ("-lead", "invalid characters found in network name"),
    ],
)
def test_bad_network_name_is_code_7(name, msg):
    conf = {"cniVersion": "1.1.0", "type": "t"}
    if name is not None:
        conf["name"] = name
    code, out, _ = invoke("ADD", conf, add=add_ok)
    assert code == 1
    assert error_of(out)["code"] == 7 and error_of(out)["msg"] == msg


@pytest.mark.parametrize(
    "cid,code,msg",
    [
        ("bad id", 4, "invalid characters in containerID"),
        ("_x", 4, "invalid characters in containerID"),
    ],
)
def test_bad_container_id(cid, code, msg):
    _, out, _ = invoke("ADD", env={"CNI_CONTAINERID": cid}, add=add_ok)
    assert (error_of(out)["code"], error_of(out)["msg"]) == (code, msg)
    assert error_of(out)["details"] == cid


@pytest.mark.parametrize(
    "ifname,msg",
    [
        ("a" * 16, "interface name is too long"),
        ("..", "interface name is . or .."),
        ("eth/0", "interface name contains / or : or whitespace characters"),
        ("eth 0", "interface name contains / or : or whitespace characters"),
    ],
)
def test_bad_ifname_is_code_4(ifname, msg):
    _, out, _ = invoke("DEL", env={"CNI_IFNAME": ifname}, delete=lambda a: None)
    assert (error_of(out)["code"], error_of(out)["msg"]) == (4, msg)


def test_incompatible_version():
    code, out, _ = invoke(
        "ADD", {"cniVersion": "1.0.0", "name": "n"}, add=add_ok, supported=("0.3.1", "0.4.0")
    )
    assert code == 1
    assert error_of(out) == {
        "cniVersion": "1.0.0",
        "code": 1,
        "msg": "incompatible CNI versions",
        "details": 'config is "1.0.0", plugin supports ["0.3.1" "0.4.0"]',
    }


def test_missing_cni_version_means_0_1_0():
    code, out, _ = invoke("ADD", {"name": "n"}, add=add_ok)
    assert code == 0
    assert json.loads(out) == {
        "cniVersion": "0.1.0",
        "ip4": {"ip": "198.18.0.5/24", "gateway": "198.18.0.1"},
        "dns": {},
    }


@pytest.mark.parametrize("value", [1, 0, False, [], {}])
def test_non_string_version_is_decode_error(value):
    """Falsy non-strings too: Go's ConfigDecoder fails on any non-string."""
    code, out, _ = invoke("ADD", {"name": "n", "cniVersion": value}, add=add_ok)
    assert code == 1
    assert error_of(out)["code"] == 6
    assert "cniVersion" in error_of(out)["msg"]


@pytest.mark.parametrize(
    "command,minimum", [("CHECK", "0.4.0"), ("GC", "1.1.0"), ("STATUS", "1.1.0")]
)
def test_verb_gates(command, minimum):
    handler = dict(check=lambda a: None, gc=lambda a: None, status=lambda a: None)
    _, out, _ = invoke(command, {"cniVersion": "0.3.1", "name": "n"}, **handler)
    assert error_of(out)["code"] == 1
    assert error_of(out)["msg"] == f"config version does not allow {command}"
    code, out, _ = invoke(
        command, {"cniVersion": "1.1.0", "name": "n"}, supported=("0.3.1", "1.0.0"), **handler
    )
    assert error_of(out)["msg"] == f"plugin version does not allow {command}"
    code, out, _ = invoke(command, {"cniVersion": "1.1.0", "name": "n"}, **handler)
    assert (code, out) == (0, "")


def test_gc_and_status_without_handler_succeed():
    for command in ("GC", "STATUS"):
        assert invoke(command, add=add_ok)[:2] == (0, "")


def test_handler_cni_error_passes_through():
    def fail(args):
        raise CNIError(50, "pool exhausted", "range 198.18.0.0/24")

    code, out, _ = invoke("STATUS", status=fail)
    assert code == 1
    assert error_of(out) == {
        "cniVersion": "1.1.0",
        "code": 50,
        "msg": "pool exhausted",
        "details": "range 198.18.0.0/24",
    }


def test_handler_exception_becomes_999_without_traceback():
    def boom(args):
        raise RuntimeError("kaboom")

    code, out, err = invoke("ADD", add=boom)
    assert code == 1
    assert error_of(out) == {"cniVersion": "1.1.0", "code": 999, "msg": "kaboom"}
    assert "Traceback" not in out + err


def test_result_conversion_failure_is_reported():
    code, out, _ = invoke("ADD", {"cniVersion": "0.2.0", "name": "n"}, add=lambda a: Result(ips=[]))
    assert code == 1
    assert error_of(out)["msg"] == "cannot convert: no valid IP addresses"


def test_same_netns_is_refused_with_code_8():
    own = "/proc/self/ns/net"
    code, out, _ = invoke("ADD", env={"CNI_NETNS": own}, add=add_ok)
    assert error_of(out)["code"] == 8
    code, out, _ = invoke("ADD", env={"CNI_NETNS": own, "CNI_NETNS_OVERRIDE": "true"}, add=add_ok)
    assert code == 0


def test_cmdargs_fields_and_prev_result():
    seen = {}

    def capture(args: CmdArgs):
        seen["args"] = args
        return args.prev_result

    conf = {
        "cniVersion": "1.0.0",
        "name": "n",
        "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "198.18.1.2/24"}]},
    }
    code, out, _ = invoke(
        "ADD", conf, env={"CNI_ARGS": "A=1;B=2", "CNI_PATH": "/a:/b"}, add=capture
    )
    assert code == 0
    args = seen["args"]
    assert (args.container_id, args.ifname, args.args, args.path) == (
        "ctr1",
        "eth0",
        "A=1;B=2",
        ["/a", "/b"],
    )
    assert json.loads(out)["ips"] == [{"address": "198.18.1.2/24"}]


def test_bad_prev_result_is_an_error():
    conf = {"cniVersion": "1.0.0", "name": "n", "prevResult": {"cniVersion": "0.4.0"}}
    _, out, _ = invoke("ADD", conf, add=lambda a: a.prev_result)
    assert "could not parse prevResult" in error_of(out)["msg"]


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({}, None),
        ({"cni.dev/valid-attachments": None}, []),
        ({"cni.dev/valid-attachments": []}, []),
        ({"cni.dev/attachments": [{"containerID": "c", "ifname": "eth0"}]}, [("c", "eth0")]),
        (
            {
                "cni.dev/valid-attachments": [{"containerID": "a", "ifname": "net1"}],
                "cni.dev/attachments": [{"containerID": "z", "ifname": "z"}],
            },
            [("a", "net1")],
        ),
    ],
)
def test_gc_valid_attachments_absent_vs_empty(extra, expected):
    seen = []
    conf = {"cniVersion": "1.1.0", "name": "n", **extra}
    code, _, _ = invoke("GC", conf, gc=lambda a: seen.append(a.valid_attachments))
    assert code == 0 and seen == [expected]


@pytest.mark.parametrize(
    "entry,expected",
    [
        ({"containerID": None, "ifname": "eth0"}, ("", "eth0")),
        ({"ifname": "eth0"}, ("", "eth0")),
        ({"ContainerID": "c", "IFNAME": "net1"}, ("c", "net1")),
    ],
)
def test_gc_attachment_fields_decode_as_go(entry, expected):
    seen = []
    conf = {"cniVersion": "1.1.0", "name": "n", "cni.dev/valid-attachments": [entry]}
    code, _, _ = invoke("GC", conf, gc=lambda a: seen.append(a.valid_attachments))
    assert code == 0 and seen == [[expected]]


def test_gc_attachment_with_a_non_string_field_is_code_6():
    conf = {"cniVersion": "1.1.0", "name": "n", "cni.dev/valid-attachments": [{"containerID": 5}]}
    code, out, _ = invoke("GC", conf, gc=lambda a: a.valid_attachments)
    assert code == 1
    assert error_of(out)["code"] == 6
    assert "containerID" in error_of(out)["msg"]


def test_plugin_main_process_boundary(tmp_path):
    """Through a real process: exit status and stdout as a runtime sees them."""
    from pycni.skel.testing import run_plugin

    script = tmp_path / "plug"
    script.write_text(
        f"#!{os.sys.executable}\n"
        "from pycni.skel import plugin_main\n"
        "def add(a):\n    raise ValueError('bad thing')\n"
        "plugin_main(add=add, delete=lambda a: None, check=lambda a: None, about='x')\n"
    )
    script.chmod(0o755)
    out = run_plugin(
        str(script), "ADD", {"cniVersion": "1.1.0", "name": "n"}, netns="/nonexistent-ns"
    )
    assert out.exit_code == 1
    assert out.error == {"cniVersion": "1.1.0", "code": 999, "msg": "bad thing"}
    assert out.stderr == ""
    assert run_plugin(str(script), "VERSION").json["supportedVersions"] == list(version.ALL)


def _delegate_script(tmp_path, add_output: str):
    """A delegate that prints `add_output` on ADD and logs every command."""
    log = tmp_path / "log"
    plugin = tmp_path / "ipam"
    plugin.write_text(
        f'#!/bin/sh\necho "$CNI_COMMAND" >> {log}\n'
        f"[ \"$CNI_COMMAND\" = ADD ] && printf '%s' '{add_output}'\nexit 0\n"
    )
    plugin.chmod(0o755)
    env = {"CNI_PATH": str(tmp_path), "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0"}
    return env, log


def test_delegate_add_reads_the_result_as_libcni(tmp_path):
    """A result whose cniVersion is not a non-empty string takes the config's
    version (libcni's fixupResultVersion), as for any exec'd plugin."""
    from pycni.invoke.delegate import delegate_add

    env, log = _delegate_script(
        tmp_path, '{"cniVersion": 1, "ips": [{"address": "198.18.0.5/24"}]}'
    )
    result = delegate_add("ipam", b'{"cniVersion": "1.0.0", "name": "n"}', env)
    assert result.cni_version == "1.0.0"
    assert [ip.address for ip in result.ips] == ["198.18.0.5/24"]
    assert log.read_text().split() == ["ADD"]


def test_delegate_add_with_no_output_fails_and_deletes(tmp_path):
    from pycni.invoke.delegate import delegate_add

    env, log = _delegate_script(tmp_path, "")
    with pytest.raises(CNIError, match=r"^failed to unmarshal raw result: "):
        delegate_add("ipam", b'{"cniVersion": "1.0.0", "name": "n"}', env)
    assert log.read_text().split() == ["ADD", "DEL"]
