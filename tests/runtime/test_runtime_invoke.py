"""pycni.invoke: plugin lookup, environment, exec, errors, timeouts."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from pycni import invoke
from pycni.invoke import PluginTimeoutError, UntypedError, execute
from pycni.spec.errors import CNIError

from support.cni import plugin, read_log
from support.plugin_dirs import install_plugin


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def request(**obj: object) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "n", **obj}).encode()


# -- find_in_path --------------------------------------------------------------


def test_find_in_path_errors(tmp_path):
    with pytest.raises(UntypedError, match=r"^no plugin name provided$"):
        invoke.find_in_path("", [str(tmp_path)])
    with pytest.raises(UntypedError, match=r"^invalid plugin name: a/b$"):
        invoke.find_in_path("a/b", [str(tmp_path)])
    with pytest.raises(UntypedError, match=r"^no paths provided$"):
        invoke.find_in_path("x", [])
    with pytest.raises(CNIError) as err:
        invoke.find_in_path("nope", [str(tmp_path), "/nonexistent"])
    assert str(err.value) == f'failed to find plugin "nope" in path [{tmp_path} /nonexistent]'
    assert err.value.code == 999  # what Go's skel reports for this untyped error


def test_find_in_path_order_and_regular_files(tmp_path):
    a, b, c = (tmp_path / d for d in "abc")
    for d in (a, b, c):
        d.mkdir()
    (a / "p").mkdir()  # a directory does not count
    (b / "p").write_text("")  # exec bit is not checked
    (c / "p").write_text("")
    assert invoke.find_in_path("p", [str(a), str(b), str(c)]) == str(b / "p")
    (c / "q").write_text("")
    (b / "q").symlink_to(c / "q")  # symlinks are followed
    assert invoke.find_in_path("q", [str(b) + "/", str(c)]) == str(b / "q")


def test_find_in_path_skips_empty_components(tmp_path, monkeypatch):
    (tmp_path / "p").write_text("")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CNIError, match=r"in path \[ /nonexistent\]"):
        invoke.find_in_path("p", ["", "/nonexistent"])


# -- environment -----------------------------------------------------------------


def test_plugin_env_adds_the_six_variables_and_they_win(monkeypatch):
    monkeypatch.setenv("CNI_COMMAND", "stale")
    monkeypatch.setenv("CNI_IFNAME", "stale")
    monkeypatch.setenv("KEEP_ME", "1")
    env = invoke.plugin_env("ADD", "cid", "/run/netns/x", [("A", "1"), ("B", "2")], "eth0", "/a:/b")
    assert env["KEEP_ME"] == "1"
    assert {k: v for k, v in env.items() if k.startswith("CNI_")} == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "cid",
        "CNI_NETNS": "/run/netns/x",
        "CNI_ARGS": "A=1;B=2",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/a:/b",
    }
    empty = invoke.plugin_env("STATUS")
    assert [empty[k] for k in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_ARGS", "CNI_IFNAME")] == [
        "",
        "",
        "",
        "",
    ]


def test_exec_passes_env_and_stdin(plugin_dir, plugin_log, monkeypatch):
    monkeypatch.setenv("TESTPLUGIN_EXTRA", "inherited")
    env = invoke.plugin_env("DEL", "c1", "", [("K", "V")], "eth1", str(plugin_dir))
    conf = request(type="testplugin", tag="x", log=str(plugin_log))
    assert invoke.exec_plugin(str(plugin_dir / "testplugin"), conf, env) == b""
    (entry,) = read_log(plugin_log)
    assert entry["cmd"] == "DEL"
    assert entry["extra_env"] == "inherited"
    assert entry["env"]["CNI_ARGS"] == "K=V"
    assert entry["env"]["CNI_NETNS"] == ""
    assert entry["stdin"] == json.loads(conf)


def test_exec_large_stdin_and_stdout(tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    assert invoke.exec_plugin("/bin/cat", data) == data


def test_exec_plugin_that_does_not_read_stdin(tmp_path):
    path = script(tmp_path / "p", "echo done")
    assert invoke.exec_plugin(path, b"x" * (1 << 20)) == b"done\n"


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output",
    [
        '{"code": 7, "msg": "bad config", "details": "d"}',
        # Go decodes the error into types.Error, whose fields match any case.
        '{"Code": 7, "Msg": "bad config", "DETAILS": "d"}',
    ],
    ids=["exact-keys", "any-case-keys"],
)
def test_typed_error_is_kept(tmp_path, output):
    path = script(tmp_path / "p", f"echo '{output}'; exit 1")
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(path, b"{}")
    assert (err.value.code, err.value.msg, err.value.details) == (7, "bad config", "d")
    assert str(err.value) == "bad config; d"
    assert not isinstance(err.value, UntypedError)


@pytest.mark.parametrize("key", ["CNI_NETNS", "CNI_ARGS"])
def test_nul_in_the_environment_is_a_cni_error(tmp_path, key):
    """posix_spawn refuses it with ValueError; Go's exec fails with EINVAL."""
    path = script(tmp_path / "p", "exit 0")
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(path, b"{}", {key: "a\0b"})
    assert str(err.value) == (
        f"netplugin failed with no error message: fork/exec {path}: invalid argument"
    )


def test_stderr_only_is_surfaced(tmp_path):
    path = script(tmp_path / "p", 'echo "it broke" >&2; exit 2')
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(path, b"{}")
    assert err.value.code == 0
    assert str(err.value) == 'netplugin failed: "it broke\\n": exit status 2'


def test_no_output_at_all(tmp_path):
    path = script(tmp_path / "p", "exit 3")
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(path, b"{}")
    assert str(err.value) == "netplugin failed with no error message: exit status 3"


def test_killed_by_signal(plugin_dir):
    conf = request(type="testplugin", test={"add": "killself"})
    env = invoke.plugin_env("ADD", "c", "/x", [], "eth0", str(plugin_dir))
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(str(plugin_dir / "testplugin"), conf, env)
    assert str(err.value) == "netplugin failed with no error message: signal: killed"


def test_garbage_stdout(tmp_path):
    path = script(tmp_path / "p", "printf 'this is not json'; exit 1")
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(path, b"{}")
    assert err.value.code == 0
    assert str(err.value).startswith(
        'netplugin failed but error parsing its diagnostic message "this is not json": '
    )


@pytest.mark.parametrize("out", ["[1]", '{"code": "x"}', '{"msg": 5}', '{"code": -1}'])
def test_wrongly_typed_error_object(tmp_path, out):
    path = script(tmp_path / "p", f"echo '{out}'; exit 1")
    with pytest.raises(CNIError, match=r"error parsing its diagnostic message") as err:
        invoke.exec_plugin(path, b"{}")
    assert "cannot unmarshal" in str(err.value)


def test_exec_errors_use_go_wording(tmp_path):
    with pytest.raises(CNIError) as err:
        invoke.exec_plugin(str(tmp_path / "missing"), b"{}")
    assert str(err.value) == (
        f"netplugin failed with no error message: fork/exec "
        f"{tmp_path}/missing: no such file or directory"
    )
    noexec = tmp_path / "noexec"
    noexec.write_text("#!/bin/sh\n")
    with pytest.raises(CNIError, match=r"fork/exec .*: permission denied$"):
        invoke.exec_plugin(str(noexec), b"{}")


def test_stderr_of_a_successful_plugin_is_copied(tmp_path):
    path = script(tmp_path / "p", "echo chatter >&2; echo '{}'")
    sink = io.BytesIO()

    class Stream:
        buffer = sink

        def flush(self):
            pass

    assert invoke.exec_plugin(path, b"{}", stderr=Stream()) == b"{}\n"
    assert sink.getvalue() == b"chatter\n"
    text = io.StringIO()
    invoke.exec_plugin(path, b"{}", stderr=text)
    assert text.getvalue() == "chatter\n"


# -- timeouts ------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("action", ["hang", "hang-ignore-term"])
def test_timeout_kills_a_hanging_plugin(plugin_dir, tmp_path, action):
    pidfile = tmp_path / "pid"
    conf = request(type="testplugin", test={"add": action, "pidfile": str(pidfile)})
    env = invoke.plugin_env("ADD", "c", "/x", [], "eth0", str(plugin_dir))
    start = time.monotonic()
    with pytest.raises(PluginTimeoutError) as err:
        invoke.exec_plugin(str(plugin_dir / "testplugin"), conf, env, timeout=1.5)
    elapsed = time.monotonic() - start
    assert 1.4 < elapsed < 1.5 + execute.KILL_GRACE + 2
    signal_name = "terminated" if action == "hang" else "killed"
    assert str(err.value) == f"netplugin timed out after 1.5s and was killed: signal: {signal_name}"
    assert err.value.timeout == 1.5
    assert not _pid_alive(int(pidfile.read_text()))


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child"
    path = script(tmp_path / "p", f"sleep 60 & echo $! > {pidfile}; wait")
    with pytest.raises(PluginTimeoutError):
        invoke.exec_plugin(path, b"", timeout=0.5)
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child)


def test_fast_plugin_is_not_affected_by_timeout(tmp_path):
    path = script(tmp_path / "p", "cat")
    assert invoke.exec_plugin(path, b"abc", timeout=10) == b"abc"


# -- ETXTBSY -----------------------------------------------------------------------


def test_text_file_busy_is_retried(tmp_path):
    path = tmp_path / "busy"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o755)
    os.write(fd, b"#!/bin/sh\necho ready\n")

    def release():
        time.sleep(1.2)
        os.close(fd)

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        start = time.monotonic()
        assert invoke.exec_plugin(str(path), b"") == b"ready\n"
        assert time.monotonic() - start >= 1.0
    finally:
        releaser.join()


def test_text_file_busy_forever_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "ETXTBSY_DELAY", 0.05)
    path = tmp_path / "busy"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o755)
    try:
        os.write(fd, b"#!/bin/sh\necho ready\n")
        with pytest.raises(CNIError) as err:
            invoke.exec_plugin(str(path), b"")
        assert str(err.value) == (
            f"netplugin failed with no error message: fork/exec {path}: text file busy"
        )
    finally:
        os.close(fd)


# -- results ------------------------------------------------------------------------


def test_fixup_result_version():
    conf = request()
    assert invoke.fixup_result_version(conf, b'{"cniVersion": "0.4.0"}')[0] == "0.4.0"
    version, raw = invoke.fixup_result_version(conf, b'{"ips": []}')
    assert (version, raw) == ("1.0.0", {"ips": [], "cniVersion": "1.0.0"})
    assert invoke.fixup_result_version(conf, b'{"cniVersion": ""}')[0] == "1.0.0"
    assert invoke.fixup_result_version(conf, b'{"cniVersion": 5}')[0] == "1.0.0"
    assert invoke.fixup_result_version(conf, b"null") == ("1.0.0", {"cniVersion": "1.0.0"})
    assert invoke.fixup_result_version(b'{"name": "x"}', b"{}")[0] == "0.1.0"
    with pytest.raises(UntypedError, match=r"^failed to unmarshal raw result: .* result nope$"):
        invoke.fixup_result_version(conf, b"nope")
    with pytest.raises(UntypedError, match=r"cannot unmarshal array"):
        invoke.fixup_result_version(conf, b"[]")


def test_exec_plugin_with_result_fixes_the_version(plugin_dir):
    env = invoke.plugin_env("ADD", "c", "/x", [], "eth0", str(plugin_dir))
    conf = request(type="testplugin", tag="t", test={"add": "noversion"})
    result = invoke.exec_plugin_with_result(str(plugin_dir / "testplugin"), conf, env)
    assert result.cni_version == "1.0.0"
    assert result.ips[0].address == "198.18.0.2/24"
    old = json.dumps({"cniVersion": "0.3.1", "name": "n", "type": "testplugin"}).encode()
    result = invoke.exec_plugin_with_result(str(plugin_dir / "testplugin"), old, env)
    assert result.cni_version == "0.3.1"


def test_get_version_info(plugin_dir, monkeypatch):
    path = str(plugin_dir / "testplugin")
    assert invoke.get_version_info(path)[-1] == "1.1.0"
    monkeypatch.setenv("TESTPLUGIN_VERSIONS", "0.3.1,0.4.0")
    assert invoke.get_version_info(path) == ["0.3.1", "0.4.0"]
    monkeypatch.setenv("TESTPLUGIN_NO_VERSION", "1")
    assert invoke.get_version_info(path) == ["0.1.0"]


def test_get_version_info_env_and_stdin(tmp_path):
    out = tmp_path / "seen"
    path = script(
        tmp_path / "p",
        f"env | grep ^CNI_ | sort > {out}; cat >> {out}; "
        """echo '{"cniVersion":"0.2.0"}'""",
    )
    assert invoke.get_version_info(path) == ["0.1.0", "0.2.0"]
    assert out.read_text().splitlines() == [
        "CNI_ARGS=",
        "CNI_COMMAND=VERSION",
        "CNI_CONTAINERID=",
        "CNI_IFNAME=dummy",
        "CNI_NETNS=dummy",
        "CNI_PATH=dummy",
        '{"cniVersion":"1.1.0"}',
    ]
    bad = script(tmp_path / "bad", "echo '{}'")
    with pytest.raises(UntypedError, match=r"^decoding version info: missing field cniVersion$"):
        invoke.get_version_info(bad)


def test_invoke_import_is_cheap():
    import subprocess

    code = (
        "import sys; import pycni.invoke; "
        "bad = [m for m in ('subprocess', 'json', 'pycni.spec.result', 'threading', "
        "'signal', 'pycni.runtime.api') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_helpers_plugin_config(plugin_log):
    assert plugin("testplugin", "a", plugin_log)["log"] == str(plugin_log)


def test_install_plugin_uses_this_interpreter(tmp_path):
    path = install_plugin(tmp_path, "x")
    assert path.read_text().splitlines()[0] == f"#!{sys.executable}"
