"""Closed or failing standard streams, in real processes: the `pycni` command
and a plugin (the skel boundary). Never a traceback: a closed stdin is CNI
error 5, an output failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.cni import conflist, plugin, write_json
from support.plugin_dirs import write_launcher

CLOSED_IN = "0<&-"
CLOSED_OUT = "1>&-"
FULL_OUT = ">/dev/full"


def sh(argv: list[str], redirects: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run argv with the shell redirections `redirects` (e.g. "0<&- 1>&-")."""
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {redirects}', "sh", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def pycni(*args: str) -> list[str]:
    return [sys.executable, "-m", "pycni", *args]


@pytest.fixture
def net(cli, tmp_path):
    write_json(cli["conf"] / "10-net.conflist", conflist("net", [plugin("testplugin", "a")]))
    return dict(os.environ)


# -- the pycni command ---------------------------------------------------------


@pytest.mark.parametrize(
    ("redirects", "reason"),
    [(CLOSED_OUT, "stdout is closed"), (FULL_OUT, "No space left on device")],
)
@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("version",), "version"),
        (("ls",), "ls"),
        (("add", "net", "/ns"), "add"),
    ],
)
def test_cli_output_failure_is_one_line(net, cli, redirects, reason, args, name):
    proc = sh(pycni("--cache-dir", str(cli["cache"]), *args), redirects, net)
    assert proc.returncode == 1
    assert proc.stderr == f"pycni: {name} failed: cannot write to stdout: {reason}\n"


@pytest.mark.parametrize("redirects", [CLOSED_OUT, FULL_OUT])
def test_cli_help_output_failure(redirects):
    proc = sh(pycni("--help"), redirects)
    assert proc.returncode == 1
    assert proc.stderr.startswith("pycni: cannot write to stdout: ")
    assert proc.stderr.count("\n") == 1


def test_cli_needs_no_stdin(net, cli):
    proc = sh(pycni("--cache-dir", str(cli["cache"]), "add", "net", "/ns"), CLOSED_IN, net)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cniVersion"] == "1.1.0"
    proc = sh(pycni("--cache-dir", str(cli["cache"]), "del", "net", "/ns"), CLOSED_OUT, net)
    assert proc.returncode == 0 and proc.stderr == ""  # nothing to print: no failure


# -- a plugin (skel) -----------------------------------------------------------


@pytest.fixture
def loopback(tmp_path):
    """The loopback plugin as an installed launcher would run it."""
    return str(write_launcher(tmp_path / "loopback", "pycni.plugins.main.loopback"))


def plugin_env(command: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(
        CNI_COMMAND=command,
        CNI_CONTAINERID="pyccli-ctr",
        CNI_NETNS="/run/netns/pyccli-none",
        CNI_IFNAME="lo",
        CNI_PATH="/nonexistent",
        **extra,
    )
    return env


def test_plugin_closed_stdin_is_error_5(loopback):
    proc = sh([loopback], CLOSED_IN, plugin_env("ADD"))
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {
        "code": 5,
        "msg": "error reading from stdin: stdin is closed",
    }
    assert proc.stderr == ""


def test_plugin_version_needs_no_stdin(loopback):
    proc = sh([loopback], CLOSED_IN, plugin_env("VERSION"))
    assert proc.returncode == 0, proc.stderr
    assert "supportedVersions" in json.loads(proc.stdout)


@pytest.mark.parametrize(
    ("command", "redirects", "line"),
    [
        (
            "VERSION",
            CLOSED_OUT,
            "loopback: stdout is closed: nowhere to write the result; nothing done",
        ),
        (
            "ADD",
            f"{CLOSED_IN} {CLOSED_OUT}",
            "loopback: stdout is closed: nowhere to write the result; nothing done",
        ),
        ("VERSION", FULL_OUT, "loopback: cannot write to stdout: No space left on device"),
        # the error JSON (code 5) cannot be written either
        (
            "ADD",
            f"{CLOSED_IN} {FULL_OUT}",
            "loopback: cannot write to stdout: No space left on device",
        ),
    ],
)
def test_plugin_output_failure_is_one_line(loopback, command, redirects, line):
    proc = sh([loopback], redirects, plugin_env(command))
    assert proc.returncode == 1
    assert proc.stderr == line + "\n"
