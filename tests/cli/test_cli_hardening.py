"""The `pycni` command line under misuse: escapes, bad options, broken config
dirs, help and usage errors, CNI_PATH, network-wide verbs, one-sentence errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.cli import main as cli_main
from pycni.invoke import wrap_error
from pycni.runtime import loader

from support.cni import conflist, plugin, read_log, write_json
from support.plugin_dirs import write_launcher

ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b"


def run(*args: str) -> int:
    return cli_main.main(list(args))


@pytest.fixture(autouse=True)
def _no_netns(monkeypatch):
    """None of these tests may reach the kernel, also when a check regresses."""

    def refuse(*args, **kwargs):
        raise AssertionError("this test must not create a network namespace")

    monkeypatch.setattr("pycni.kernel.netns.create_named", refuse)


@pytest.fixture
def logged(cli, tmp_path):
    """Network "net" of one logging test plugin; returns the log path."""
    log = tmp_path / "log.jsonl"
    write_json(cli["conf"] / "10-net.conflist", conflist("net", [plugin("testplugin", "a", log)]))
    return log


def pycni(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pycni", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- item 12: names from disk or the command line cannot drive the terminal --


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain näme", "plain näme"),
        (f"{ESC}]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("a\nb\tc\r", "a\\nb\\tc\\r"),
        ("\u202eevil", "\\u202eevil"),
        (os.fsdecode(b"bad\xff.conf"), "bad\\xff.conf"),
        ("\x7f\x9b", "\\x7f\\x9b"),
    ],
)
def test_printable(text, shown):
    assert cli_main.printable(text) == shown


def test_ls_escapes_file_names(cli, capsys):
    conf = cli["conf"]
    write_json(conf / f"10-{ESC}[2J.conflist", conflist("a", [plugin()]))
    (conf / os.fsdecode(b"20-\xff.conflist")).write_text("{oops")
    assert run("ls") == 0
    out, err = capsys.readouterr()
    assert ESC not in out and err == ""
    assert f"{conf}/10-\\x1b[2J.conflist" in out
    assert f"{conf}/20-\\xff.conflist" in out


@pytest.mark.parametrize(
    "args",
    [
        ("add", f"net{ESC}[31m", "/ns"),  # the network name, in "no net configuration"
        ("version", f"bridge{ESC}[2J"),  # the plugin name, in "failed to find plugin"
        (f"frob{ESC}[2J",),  # an unknown command
        ("ls", f"/nonexistent{ESC}[2J"),  # a directory
        ("install", f"x{ESC}[2J"),  # an argument argparse does not know
    ],
)
def test_errors_escape_names(logged, cli, capsys, args):
    assert run(*args) != 0
    _, err = capsys.readouterr()
    assert ESC not in err and "\\x1b[" in err and err.count("\n") == 1


# -- item 14: --timeout is checked when it is parsed -------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("nan", "not a number of seconds"),
        ("-1", "negative"),
        ("-inf", "negative"),
        ("1e400", "more than 2147483 seconds"),
        ("2147484", "more than 2147483 seconds"),
        ("soon", "not a number of seconds"),
    ],
)
def test_bad_timeout_is_a_usage_error(logged, cli, capsys, value, why):
    for args in (("--timeout", value, "add", "net", "/ns"), ("add", f"--timeout={value}", "net")):
        assert run("--cache-dir", str(cli["cache"]), *args) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"pycni{' add' if args[0] == 'add' else ''}: invalid --timeout ")
        assert repr(value) in err and why in err
    assert read_log(logged) == []  # refused before any plugin ran


@pytest.mark.parametrize("value", ["inf", "Infinity", "+inf", "0", "2147483", "0.5"])
def test_timeout_values_that_work(logged, cli, capsys, value):
    assert run("--cache-dir", str(cli["cache"]), "--timeout", value, "add", "net", "/ns") == 0
    capsys.readouterr()
    assert [e["cmd"] for e in read_log(logged)] == ["ADD"]


def test_run_timeout_is_checked_too(cli, capsys):
    assert run("run", "--timeout", "nan", "--", "true") == 2
    assert "invalid --timeout 'nan'" in capsys.readouterr().err


# -- item 15: ls says what add will do -----------------------------------------


def _statuses(capsys) -> dict[str, str]:
    import json

    assert run("ls", "--json") == 0
    return {Path(r["file"]).name: r["status"] for r in json.loads(capsys.readouterr().out)}


def _add(cli, name: str) -> int:
    return run("--cache-dir", str(cli["cache"]), "add", name, "/ns")


def test_ls_broken_single_conf_stops_later_ones(cli, capsys):
    conf = cli["conf"]
    write_json(conf / "10-a.conf", {"cniVersion": "1.0.0", "name": "a", "type": "testplugin"})
    (conf / "20-broken.conf").write_text("{oops")
    write_json(conf / "30-b.json", {"cniVersion": "1.0.0", "name": "b", "type": "testplugin"})
    statuses = _statuses(capsys)
    assert statuses["10-a.conf"] == "ok"
    assert statuses["20-broken.conf"].startswith("invalid: ")
    assert statuses["30-b.json"] == f"unreachable: {conf}/20-broken.conf is broken"
    # what add does agrees
    assert _add(cli, "a") == 0
    assert _add(cli, "b") == 1
    capsys.readouterr()


def test_ls_single_conf_with_a_bad_name_does_not_stop_lookups(cli, capsys):
    conf = cli["conf"]
    write_json(conf / "10-x.json", {"name": "bad name", "type": "testplugin"})
    write_json(conf / "20-b.conf", {"cniVersion": "1.0.0", "name": "b", "type": "testplugin"})
    statuses = _statuses(capsys)
    assert statuses["10-x.json"].startswith("invalid: ")
    assert statuses["20-b.conf"] == "ok"
    assert _add(cli, "b") == 0
    capsys.readouterr()


def test_ls_broken_conflist_stops_every_single_conf(cli, capsys):
    conf = cli["conf"]
    write_json(conf / "10-a.conflist", conflist("a", [plugin()]))
    (conf / "90-broken.conflist").write_text("[]")
    write_json(conf / "00-c.conf", {"cniVersion": "1.0.0", "name": "c", "type": "testplugin"})
    statuses = _statuses(capsys)
    assert statuses["10-a.conflist"] == "ok"
    assert statuses["00-c.conf"] == f"unreachable: {conf}/90-broken.conflist is broken"
    assert _add(cli, "a") == 0
    assert _add(cli, "c") == 1
    capsys.readouterr()


def test_ls_reports_a_symlink_loop(cli, capsys):
    conf = cli["conf"]
    (conf / "10-loop.conflist").symlink_to(conf / "10-loop.conflist")
    write_json(conf / "20-b.conflist", conflist("b", [plugin()]))
    statuses = _statuses(capsys)
    assert statuses["10-loop.conflist"].startswith("invalid: error reading ")
    assert "too many levels of symbolic links" in statuses["10-loop.conflist"]
    assert statuses["20-b.conflist"] == f"unreachable: {conf}/10-loop.conflist is broken"
    assert _add(cli, "b") == 1  # as libcni: the loop ends the lookup
    assert "too many levels of symbolic links" in capsys.readouterr().err


def test_ls_and_add_skip_a_fifo(cli, tmp_path):
    conf = cli["conf"]
    os.mkfifo(conf / "10-fifo.conf")
    os.mkfifo(conf / "05-fifo.conflist")
    write_json(conf / "20-b.conf", {"cniVersion": "1.0.0", "name": "b", "type": "testplugin"})
    env = {**os.environ}
    proc = pycni("ls", env=env, timeout=30)  # before: blocked forever in open()
    assert proc.returncode == 0, proc.stderr
    fifo_line = next(line for line in proc.stdout.splitlines() if "10-fifo.conf" in line)
    assert fifo_line.endswith("skipped: a FIFO, not a regular file")
    b_line = next(line for line in proc.stdout.splitlines() if "20-b.conf" in line)
    assert b_line.endswith("  ok")
    cache = str(tmp_path / "cache")
    add = pycni("--cache-dir", cache, "add", "b", "/ns", env=env, timeout=30)
    assert add.returncode == 0, add.stderr
    missing = pycni("--cache-dir", cache, "add", "nope", "/ns", env=env, timeout=30)
    assert missing.returncode == 1
    assert missing.stderr == (
        f'pycni: add failed: no net configuration with name "nope" in {conf} '
        "(skipped, not regular files: 05-fifo.conflist (FIFO), 10-fifo.conf (FIFO))\n"
    )


def test_loader_never_opens_a_fifo(tmp_path):
    import threading

    os.mkfifo(tmp_path / "a.conflist")
    os.mkfifo(tmp_path / "b.conf")
    write_json(tmp_path / "c.conf", {"cniVersion": "1.0.0", "name": "c", "type": "x"})
    outcome: list = []

    def lookups() -> None:
        outcome.append(loader.load_network_conf(str(tmp_path), "c").name)
        outcome.append([type(item).__name__ for _, item in loader.load_all_networks(str(tmp_path))])

    worker = threading.Thread(target=lookups, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # blocked opening a FIFO: open them for writing to free it
        for name in ("a.conflist", "b.conf"):
            try:
                os.close(os.open(tmp_path / name, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail("the loader blocked on a FIFO")
    assert outcome == ["c", ["NotRegularFile", "NotRegularFile", "NetworkConfigList"]]
    assert loader.conf_files(str(tmp_path), (".conf",)) == [str(tmp_path / "c.conf")]


def test_ls_missing_or_non_dir(cli, capsys, tmp_path):
    assert run("ls", str(tmp_path / "none")) == 1
    assert capsys.readouterr() == (
        "",
        f"pycni: ls failed: config dir {tmp_path}/none does not exist\n",
    )
    (tmp_path / "file").write_text("")
    assert run("ls", str(tmp_path / "file")) == 1
    assert capsys.readouterr().err == (
        f"pycni: ls failed: config dir {tmp_path}/file is not a directory\n"
    )


# -- item 16: --help everywhere, one exit status for usage errors ------------

VERBS = list(cli_main.COMMANDS)


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_subcommand_has_help(cli, capsys, verb, flag, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("--help must not run the command")

    monkeypatch.setattr("pycni.cli.run.run", forbidden)
    monkeypatch.setattr("pycni.cli.demo.run_demo", forbidden)
    monkeypatch.setattr("pycni.cli.install.install", forbidden)
    monkeypatch.setattr("pycni.cli.install.uninstall", forbidden)
    assert run(verb, flag) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: pycni {verb}") and err == ""
    assert run("help", verb) == 0
    assert capsys.readouterr().out.startswith(f"usage: pycni {verb}")


def test_help_after_other_arguments(cli, capsys):
    assert run("add", "net", "/ns", "--help") == 0
    assert "NETNS is the container's network namespace" in capsys.readouterr().out
    # after "--" it is an argument: here the NETNS (and there is no network)
    assert run("add", "net", "--", "--help") == 1
    assert capsys.readouterr().err.startswith("pycni: add failed: no net configurations")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("frobnicate",),
        ("--bogus",),
        ("add", "net"),
        ("add", "--bogus", "net", "/ns"),
        ("check",),
        ("del", "net"),
        ("gc",),
        ("gc", "net", "/run/netns/x"),
        ("status", "net", "/run/netns/x"),
        ("version", "a", "b"),
        ("version", "--bogus"),
        ("ls", "a", "b"),
        ("ls", "--bogus"),
        ("install", "--bogus"),
        ("uninstall", "extra"),
        ("run",),
        ("run", "--net"),
        ("run", "--bogus", "--", "true"),
        ("demo", "extra"),
        ("--timeout", "x", "version"),
        ("help", "frobnicate"),
    ],
)
def test_usage_errors_exit_2(cli, capsys, args):
    assert run(*args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err


def test_run_takes_global_options_anywhere_before_dashdash(cli, monkeypatch):
    calls = []
    monkeypatch.setattr("pycni.cli.run.run", lambda *args: calls.append(args) or 0, raising=True)
    assert (
        run(
            "--timeout",
            "3",
            "run",
            "--net",
            "a",
            "--cache-dir",
            "/tmp/pyccli-cache",
            "-i",
            "lan0",
            "--net=b",
            "--timeout=7",
            "--",
            "sh",
            "--cache-dir",
            "-i",
        )
        == 0
    )
    assert calls == [(["sh", "--cache-dir", "-i"], ["a", "b"], "/tmp/pyccli-cache", 7.0, "lan0")]
    calls.clear()
    assert run("run", "--ifname", "x0", "ip", "-br", "addr") == 0  # no "--": from the command on
    assert calls == [(["ip", "-br", "addr"], [], cli_main.DEFAULT_CACHE_DIR, None, "x0")]


# -- item 17: CNI_PATH unset --------------------------------------------------


@pytest.fixture
def default_bin(monkeypatch, tmp_path):
    path = tmp_path / "opt-cni-bin"
    path.mkdir()
    monkeypatch.setattr(cli_main, "DEFAULT_BIN_DIR", str(path))
    return path


def test_version_without_cni_path_says_what_to_set(cli, monkeypatch, capsys, default_bin):
    monkeypatch.delenv("CNI_PATH")
    assert run("version", "bridge") == 1
    err = capsys.readouterr().err
    assert err.startswith("pycni: version failed: CNI_PATH is not set: set it to ")
    assert f"CNI_PATH={default_bin}" in err and "no paths provided" not in err
    monkeypatch.setenv("CNI_PATH", "")
    assert run("version", "bridge") == 1
    assert "CNI_PATH is empty" in capsys.readouterr().err


def test_without_cni_path_a_pycni_install_is_used(logged, cli, monkeypatch, capsys, default_bin):
    from support.plugin_dirs import install_plugin

    install_plugin(default_bin, "testplugin")
    monkeypatch.delenv("CNI_PATH")
    assert run("version", "testplugin") == 1  # a plain dir of plugins is not enough
    capsys.readouterr()
    (default_bin / ".pycni").mkdir()
    (default_bin / ".pycni" / "MANIFEST").write_text("testplugin\n")
    assert run("version", "testplugin") == 0
    assert capsys.readouterr().out.startswith(f"testplugin ({default_bin}/testplugin): ")
    assert run("--cache-dir", str(cli["cache"]), "add", "net", "/ns") == 0
    capsys.readouterr()
    assert read_log(logged)[0]["env"]["CNI_PATH"] == str(default_bin)


@pytest.mark.parametrize("verb", ["add", "check", "del", "version"])
def test_help_says_where_plugins_come_from(cli, capsys, verb):
    assert run(verb, "--help") == 0
    assert "CNI_PATH" in capsys.readouterr().out.replace("\n", " ")


# -- item 18: gc and status are network-wide ---------------------------------


@pytest.mark.parametrize(("verb", "word"), [("gc", "GC"), ("status", "STATUS")])
def test_network_wide_verbs_refuse_a_netns(logged, cli, capsys, verb, word):
    assert run("--cache-dir", str(cli["cache"]), verb, "net", "/run/netns/ctr") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pycni {verb}: takes NETWORK only, not a NETNS: {word} is network-wide")
    assert read_log(logged) == []
    assert run(verb, "--help") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pycni {verb} NETWORK\n") and "network-wide" in out


def test_readme_shows_network_wide_verbs():
    readme = (ROOT / "README.md").read_text()
    assert "pycni gc mynet\n" in readme and "pycni status mynet\n" in readme
    assert "gc mynet /" not in readme and "status mynet /" not in readme


# -- item 19: one clear sentence per error -----------------------------------


def test_cache_dir_that_is_a_file(logged, cli, capsys, tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    assert run("--cache-dir", str(f), "add", "net", "/ns") == 1
    assert capsys.readouterr().err == (
        f"pycni: add failed: cache dir {f} is a file, not a directory\n"
    )
    assert run("--cache-dir", str(f / "sub"), "del", "net", "/ns") == 1
    assert capsys.readouterr().err == (
        f"pycni: del failed: cache dir {f}/sub: {f} is a file, not a directory\n"
    )
    assert run("gc", "--cache-dir", str(f), "net") == 1
    assert capsys.readouterr().err == (
        f"pycni: gc failed: cache dir {f} is a file, not a directory\n"
    )
    assert read_log(logged) == []
    assert run("run", "--cache-dir", str(f), "--", "true") == 1
    assert capsys.readouterr().err == (
        f"pycni: run failed: cache dir {f} is a file, not a directory\n"
    )


@pytest.mark.parametrize("verb", ["install", "uninstall"])
def test_cni_bin_dir_that_is_a_file(capsys, tmp_path, verb):
    f = tmp_path / "f"
    f.write_text("")
    assert run(verb, "--cni-bin-dir", str(f)) == 1
    assert capsys.readouterr().err == (
        f"pycni: {verb} failed: CNI bin dir {f} is a file, not a directory\n"
    )
    assert run(verb, "--cni-bin-dir", str(f / "x")) == 1
    assert capsys.readouterr().err == (
        f"pycni: {verb} failed: CNI bin dir {f}/x: {f} is a file, not a directory\n"
    )


def test_install_errors_have_no_cni_code(capsys, tmp_path):
    assert run("install", "--python", str(tmp_path / "nope"), "--cni-bin-dir", str(tmp_path)) == 1
    assert capsys.readouterr().err == (
        f"pycni: install failed: python interpreter {tmp_path}/nope is not an executable file\n"
    )


def test_not_a_netns_names_the_path_once(cli, capsys, tmp_path):
    write_launcher(cli["bin"] / "loopback", "pycni.plugins.main.loopback")
    write_json(cli["conf"] / "lo.conflist", conflist("lo", [{"type": "loopback"}]))
    notns = tmp_path / "notns"
    notns.write_text("")
    assert run("--cache-dir", str(cli["cache"]), "add", "lo", str(notns)) == 1
    err = capsys.readouterr().err
    assert err == (
        f'pycni: add failed: plugin type="loopback" failed (add): {notns} is not a network '
        "namespace (CNI error 8)\n"
    )


def test_os_errors_read_as_sentences():
    from pycni.kernel.netns import NotANetns

    err = NotANetns(22, "/tmp/x is not a network namespace", "/tmp/x")
    assert cli_main.describe_error(err) == "/tmp/x is not a network namespace"
    assert cli_main.describe_error(PermissionError(13, "Permission denied", "/x")) == (
        "Permission denied: /x"
    )
    wrapped = wrap_error(PermissionError(13, "Permission denied", "/c/r"), 'failed to set "n"')
    assert str(wrapped) == "failed to set \"n\": [Errno 13] Permission denied: '/c/r'"
    assert cli_main.describe_error(wrapped) == 'failed to set "n": Permission denied: /c/r'


# -- item 20: the default network's effect on the host is said up front -------


def test_run_help_warns_about_the_default_network(cli, capsys):
    assert run("run", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("bridge pycni0", "198.18.0.0/24", "net.ipv4.ip_forward=1", "host"):
        assert words in text


def test_readme_warns_about_the_default_network():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "pycni0" in readme and "198.18.0.0/24" in readme and "forwarding" in readme
