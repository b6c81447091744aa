"""The `pycni` command: cnitool verbs, version, ls, options and error reporting."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from pycni.cli import main as cli_main
from pycni.cli.cnitool import container_id

from support.cni import cache_files, conflist, plugin, read_log, write_json


def run(*args: str) -> int:
    return cli_main.main(list(args))


def cid_of(path) -> str:
    return "cnitool-" + hashlib.sha512(str(path).encode()).hexdigest()[:20]


@pytest.fixture
def net(cli, tmp_path):
    log = tmp_path / "log.jsonl"
    write_json(
        cli["conf"] / "10-net.conflist",
        conflist(
            "net",
            [
                plugin("testplugin", "a", log, capabilities={"portMappings": True}),
                plugin("testplugin2", "b", log),
            ],
        ),
    )
    return log


def test_container_id_is_cnitools():
    # sha512("/run/netns/test")[:10 bytes], as cnitool computes it
    assert container_id("/run/netns/test") == cid_of("/run/netns/test")
    assert len(container_id("/x")) == len("cnitool-") + 20


def test_add_check_del(net, cli, tmp_path, capsys):
    assert run("--cache-dir", str(cli["cache"]), "add", "net", "ns1") == 0
    out, err = capsys.readouterr()
    assert err == ""
    result = json.loads(out)
    assert not out.endswith("\n")  # printed like Go's Result.Print
    assert out.startswith('{\n    "cniVersion": "1.1.0",\n    "interfaces": [')
    netns = str(tmp_path / "ns1")  # made absolute
    cid = cid_of(netns)
    assert [i["name"] for i in result["interfaces"]] == ["a-eth0", "b-eth0"]
    assert result["interfaces"][0]["sandbox"] == netns
    assert cache_files(cli["cache"]) == [f"net-{cid}-eth0"]
    entry = read_log(net)[0]
    assert entry["env"]["CNI_CONTAINERID"] == cid
    assert entry["env"]["CNI_NETNS"] == netns
    assert entry["env"]["CNI_IFNAME"] == "eth0"
    assert entry["env"]["CNI_PATH"] == str(cli["bin"])
    assert entry["env"]["CNI_ARGS"] == ""

    assert run("--cache-dir", str(cli["cache"]), "check", "net", netns) == 0
    assert run("--cache-dir", str(cli["cache"]), "del", "net", "./ns1") == 0
    assert capsys.readouterr() == ("", "")
    assert [(e["cmd"], e["tag"]) for e in read_log(net)] == [
        ("ADD", "a"),
        ("ADD", "b"),
        ("CHECK", "a"),
        ("CHECK", "b"),
        ("DEL", "b"),
        ("DEL", "a"),
    ]
    assert cache_files(cli["cache"]) == []


def test_ifname_precedence(net, cli, monkeypatch, capsys):
    cache = str(cli["cache"])
    monkeypatch.setenv("CNI_IFNAME", "")
    run("--cache-dir", cache, "add", "net", "/a")
    monkeypatch.setenv("CNI_IFNAME", "net1")
    run("--cache-dir", cache, "add", "net", "/b")
    run("--cache-dir", cache, "add", "--ifname", "net2", "net", "/c")
    run("--cache-dir", cache, "-i", "net3", "add", "net", "/d")
    run("--cache-dir", cache, "add", "net", "/e", "-inet4")
    run("--cache-dir", cache, "add", "net", "/f", "--ifname=net5", "ignored-extra-arg")
    capsys.readouterr()
    ifnames = [e["env"]["CNI_IFNAME"] for e in read_log(net) if e["tag"] == "a"]
    assert ifnames == ["eth0", "net1", "net2", "net3", "net4", "net5"]


def test_cni_args_and_cap_args(net, cli, monkeypatch, capsys):
    monkeypatch.setenv("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web")
    monkeypatch.setenv(
        "CAP_ARGS",
        '{"portMappings": [{"hostPort": 8080, "containerPort": 80, '
        '"protocol": "tcp"}], "mac": "c2:00:00:00:00:01"}',
    )
    assert run("--cache-dir", str(cli["cache"]), "add", "net", "/ns") == 0
    capsys.readouterr()
    a, b = read_log(net)
    assert a["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=web"
    assert a["stdin"]["runtimeConfig"] == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    }
    assert "runtimeConfig" not in b["stdin"]
    record = json.loads((cli["cache"] / "results" / f"net-{cid_of('/ns')}-eth0").read_text())
    assert record["cniArgs"] == [["IgnoreUnknown", "1"], ["K8S_POD_NAME", "web"]]
    assert record["capabilityArgs"]["mac"] == "c2:00:00:00:00:01"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("A=1;", 'pycni: add failed: invalid CNI_ARGS pair "" (CNI error 4)'),
        ("A=1=2", 'pycni: add failed: invalid CNI_ARGS pair "A=1=2" (CNI error 4)'),
        ("A=", 'pycni: add failed: invalid CNI_ARGS pair "A=" (CNI error 4)'),
    ],
)
def test_bad_cni_args(net, cli, monkeypatch, capsys, value, message):
    monkeypatch.setenv("CNI_ARGS", value)
    assert run("--cache-dir", str(cli["cache"]), "add", "net", "/ns") == 1
    assert capsys.readouterr() == ("", message + "\n")
    assert read_log(net) == []


@pytest.mark.parametrize("value", ["{nope", "[1, 2]"])
def test_bad_cap_args(net, cli, monkeypatch, capsys, value):
    monkeypatch.setenv("CAP_ARGS", value)
    assert run("--cache-dir", str(cli["cache"]), "add", "net", "/ns") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("pycni: add failed: ") and err.count("\n") == 1
    assert read_log(net) == []


def test_plugin_failure_is_one_line_with_the_code(cli, tmp_path, capsys):
    write_json(
        cli["conf"] / "n.conflist",
        conflist(
            "bad",
            [
                plugin(
                    "testplugin",
                    "a",
                    test={
                        "add": "fail",
                        "code": 7,
                        "msg": "bad bridge name",
                        "details": "too long",
                    },
                )
            ],
        ),
    )
    assert run("--cache-dir", str(cli["cache"]), "add", "bad", "/ns") == 1
    assert capsys.readouterr() == (
        "",
        'pycni: add failed: plugin type="testplugin" failed '
        "(add): bad bridge name; too long (CNI error 7)\n",
    )


def test_gc_status(net, cli, capsys):
    cache = str(cli["cache"])
    run("--cache-dir", cache, "add", "net", "/a")
    run("--cache-dir", cache, "add", "net", "/b")
    capsys.readouterr()
    assert run("--cache-dir", cache, "gc", "net") == 0
    assert cache_files(cli["cache"]) == []
    gcs = [e for e in read_log(net) if e["cmd"] == "GC"]
    assert len(gcs) == 2 and "cni.dev/valid-attachments" not in gcs[0]["stdin"]
    assert run("--cache-dir", cache, "status", "net") == 0
    assert capsys.readouterr() == ("", "")


def test_status_failure_keeps_the_code(cli, capsys):
    write_json(
        cli["conf"] / "n.conflist",
        conflist(
            "s", [plugin("testplugin", test={"status": "fail", "code": 50, "msg": "no daemon"})]
        ),
    )
    assert run("status", "s") == 1
    assert capsys.readouterr().err == "pycni: status failed: no daemon (CNI error 50)\n"


def test_gc_errors_are_one_line(cli, capsys):
    write_json(
        cli["conf"] / "n.conflist",
        conflist(
            "g",
            [
                plugin("testplugin", test={"gc": "fail", "msg": "first"}),
                plugin("testplugin2", test={"gc": "fail", "msg": "second"}),
            ],
        ),
    )
    assert run("--cache-dir", str(cli["cache"]), "gc", "g") == 1
    assert capsys.readouterr().err == (
        "pycni: gc failed: failed to GC plugin testplugin: first; "
        "failed to GC plugin testplugin2: second\n"
    )


def test_unknown_network_and_missing_config_dir(cli, monkeypatch, capsys):
    write_json(cli["conf"] / "n.conflist", conflist("other", [plugin()]))
    assert run("add", "nope", "/x") == 1
    assert capsys.readouterr().err == (
        f'pycni: add failed: no net configuration with name "nope" in {cli["conf"]}\n'
    )
    monkeypatch.setenv("NETCONFPATH", str(cli["conf"] / "missing"))
    assert run("del", "nope", "/x") == 1
    assert capsys.readouterr().err == (
        f"pycni: del failed: no net configurations found in {cli['conf']}/missing\n"
    )


def test_default_config_dir(cli, monkeypatch):
    monkeypatch.setenv("NETCONFPATH", "")
    calls = []

    def fake_load(directory, name):
        calls.append(directory)
        raise RuntimeError("stop")

    monkeypatch.setattr("pycni.runtime.loader.load_network_conf", fake_load)
    assert run("add", "net", "/x") == 1
    assert calls == ["/etc/cni/net.d"]


def test_no_cni_path(net, cli, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli_main, "DEFAULT_BIN_DIR", str(tmp_path / "opt-cni-bin"))
    monkeypatch.delenv("CNI_PATH")
    assert run("--cache-dir", str(cli["cache"]), "add", "net", "/x") == 1
    assert capsys.readouterr().err == (
        "pycni: add failed: CNI_PATH is not set: set it to the directories of your CNI "
        f"plugins, e.g. CNI_PATH={tmp_path}/opt-cni-bin (once `pycni install` has put its "
        f"plugins in {tmp_path}/opt-cni-bin, pycni finds them there by itself)\n"
    )
    assert read_log(net) == []


def test_timeout_option(cli, capsys):
    write_json(cli["conf"] / "n.conflist", conflist("h", [plugin(test={"add": "hang"})]))
    assert run("--cache-dir", str(cli["cache"]), "--timeout", "0.5", "add", "h", "/x") == 1
    assert capsys.readouterr().err == (
        'pycni: add failed: plugin type="testplugin" failed (add): netplugin timed out after '
        "0.5s and was killed: signal: terminated\n"
    )
    assert run("--timeout", "soon", "add", "h", "/x") == 2
    assert "invalid --timeout" in capsys.readouterr().err


def test_usage_errors(cli, capsys):
    assert run() == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: pycni ")
    assert run("--help") == 0
    out, err = capsys.readouterr()
    assert "add NETWORK NETNS" in out and "ls" in out and err == ""
    assert run("help") == 0
    capsys.readouterr()
    assert run("add", "net") == 2
    assert capsys.readouterr().err == (
        "pycni add: requires at least 2 arg(s), only received 1 (see 'pycni add --help')\n"
    )
    assert run("frobnicate") == 2
    assert capsys.readouterr().err == (
        "pycni: unknown command \"frobnicate\" (see 'pycni --help')\n"
    )
    assert run("--bogus", "add") == 2
    assert "unknown flag: --bogus" in capsys.readouterr().err
    assert run("add", "--cache-dir") == 2
    assert "flag needs an argument: --cache-dir" in capsys.readouterr().err
    assert run("--version") == 0
    assert capsys.readouterr().out.startswith("pycni ")


def test_unexpected_exception_has_no_traceback(cli, monkeypatch, capsys):
    def explode(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr("pycni.runtime.loader.load_network_conf", explode)
    assert run("add", "net", "/x") == 1
    assert capsys.readouterr() == ("", "pycni: add failed: 'surprise'\n")


def test_version_command(cli, monkeypatch, capsys):
    assert run("version", "testplugin") == 0
    assert capsys.readouterr().out == (
        f"testplugin ({cli['bin']}/testplugin): 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n"
    )
    monkeypatch.setenv("TESTPLUGIN_VERSIONS", "0.4.0,1.0.0")
    assert run("version", "--json", "testplugin2") == 0
    assert json.loads(capsys.readouterr().out) == {
        "plugin": "testplugin2",
        "path": f"{cli['bin']}/testplugin2",
        "supportedVersions": ["0.4.0", "1.0.0"],
    }
    assert run("version") == 0
    assert "CNI spec 1.1.0" in capsys.readouterr().out
    assert run("version", "nope") == 1
    assert capsys.readouterr().err.startswith(
        'pycni: version failed: failed to find plugin "nope" in path ['
    )


def test_ls(cli, monkeypatch, capsys):
    conf = cli["conf"]
    write_json(conf / "10-a.conflist", conflist("a", [plugin(), plugin("testplugin2")]))
    (conf / "20-broken.conflist").write_text("{oops")
    write_json(conf / "30-b.conflist", conflist("b", [plugin()]))
    write_json(conf / "40-c.conf", {"cniVersion": "0.4.0", "name": "c", "type": "testplugin"})
    assert run("ls") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "PLUGINS", "FILE", "STATUS"]
    assert lines[1].split()[:5] == [
        "a",
        "1.1.0",
        "testplugin,testplugin2",
        str(conf / "10-a.conflist"),
        "ok",
    ]
    assert lines[2].split()[:5] == ["-", "-", "-", str(conf / "20-broken.conflist"), "invalid:"]
    assert f"unreachable: {conf}/20-broken.conflist is broken" in lines[3]
    assert f"unreachable: {conf}/20-broken.conflist is broken" in lines[4]

    (conf / "20-broken.conflist").unlink()
    write_json(conf / "50-a.json", {"name": "a", "type": "x"})
    assert run("ls", "--json", "--validate") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in rows] == [
        ("a", "ok"),
        ("b", "ok"),
        ("c", "ok"),
        ("a", f"shadowed by {conf}/10-a.conflist"),
    ]
    assert rows[2]["plugins"] == ["testplugin"] and rows[2]["cniVersion"] == "0.4.0"

    monkeypatch.setenv("TESTPLUGIN_VERSIONS", "0.4.0")
    assert run("ls", "--validate", str(conf)) == 0
    out = capsys.readouterr().out
    assert 'invalid: [plugin testplugin does not support config version "1.1.0"' in out
    empty = conf / "empty"
    empty.mkdir()
    assert run("ls", str(empty)) == 0
    assert capsys.readouterr().out == f"no network configurations in {empty}\n"


def test_python_dash_m(net, cli, tmp_path):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "pycni", "--cache-dir", str(cli["cache"]), "add", "net", "/ns"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cniVersion"] == "1.1.0"
    proc = subprocess.run(
        [sys.executable, "-m", "pycni", "add", "missing", "/ns"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_cli_imports_little():
    code = (
        "import sys\nfrom pycni.cli.main import main\n"
        "import io, contextlib\nwith contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('json', 'subprocess', 'argparse', 'hashlib', "
        "'pycni.runtime.api', 'pycni.spec.result') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
