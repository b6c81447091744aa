"""Launchers, and running a delegate in-process when it is our own plugin."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import pycni
from pycni.cli.install import install
from pycni.invoke import delegate
from pycni.plugins import PLUGINS
from pycni.plugins.launcher import EXECUTOR, in_process_module, parse, render
from pycni.spec.errors import CNIError
from pycni.spec.version import ALL, version_info_json

OWN_LIB = str(Path(pycni.__file__).resolve().parent.parent)
V = version_info_json(ALL).encode()


def write(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_render_and_parse_round_trip():
    text = render("/usr/bin/python3.11", "host-local", PLUGINS["host-local"], "/opt/cni/bin/.p", V)
    assert parse(text.encode()) == ("/usr/bin/python3.11", "/opt/cni/bin/.p", PLUGINS["host-local"])


@pytest.mark.parametrize(
    "text",
    [
        "#!/bin/sh\nexec true\n",
        "",
        render("/usr/bin/python3", "x", "m", "/a'b", V).replace("-IS", "-I"),
        render("/usr/bin/python3", "x", "m", "/a\\b", V),
    ],
)
def test_parse_rejects_anything_else(text):
    assert parse(text.encode()) is None


def test_in_process_only_for_this_installation(tmp_path):
    python = os.path.realpath(sys.executable)
    module = PLUGINS["host-local"]
    ours = write(tmp_path / "a", render(python, "host-local", module, OWN_LIB, V))
    assert in_process_module(ours) == module
    other_lib = write(tmp_path / "b", render(python, "host-local", module, str(tmp_path), V))
    assert in_process_module(other_lib) is None
    other_python = write(tmp_path / "c", render("/bin/true", "host-local", module, OWN_LIB, V))
    assert in_process_module(other_python) is None
    unknown_module = write(tmp_path / "d", render(python, "x", "os", OWN_LIB, V))
    assert in_process_module(unknown_module) is None
    assert in_process_module("/usr/lib/cni/host-local") is None
    assert in_process_module(str(tmp_path / "missing")) is None


def test_installed_launchers_are_recognised_by_their_own_copy(tmp_path):
    """An installed copy recognises its own launchers (and not the dev tree's)."""
    import subprocess

    python = os.path.realpath(sys._base_executable)
    install(tmp_path, python)
    lib = tmp_path / ".pycni"
    probe = (
        f"import sys; sys.path.insert(0, {str(lib)!r}); "
        "from pycni.plugins.launcher import in_process_module as f; "
        f"print(f({str(tmp_path / 'host-local')!r}))"
    )
    out = subprocess.run(
        [python, "-IS", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == PLUGINS["host-local"]
    assert in_process_module(str(tmp_path / "host-local")) is None


def conf(data_dir: Path, subnet: str) -> bytes:
    return json.dumps(
        {
            "cniVersion": "1.1.0",
            "name": "inproc",
            "type": "bridge",
            "ipam": {
                "type": "host-local",
                "dataDir": str(data_dir),
                "ranges": [[{"subnet": subnet}]],
            },
        }
    ).encode()


def test_in_process_delegation_matches_exec(tmp_path, netns_factory):
    """Same result, same store, same error (code, msg) as an exec'd delegate."""
    python = os.path.realpath(sys.executable)
    module = PLUGINS["host-local"]
    inproc_dir, exec_dir = tmp_path / "in", tmp_path / "ex"
    inproc_dir.mkdir()
    exec_dir.mkdir()
    write(inproc_dir / "host-local", render(python, "host-local", module, OWN_LIB, V))
    write(
        exec_dir / "host-local",
        f"#!{python}\nimport sys\nsys.path.insert(0, {OWN_LIB!r})\n"
        f"from {module} import main\nmain()\n",
    )
    assert in_process_module(str(exec_dir / "host-local")) is None
    netns = netns_factory("ip").path
    outcomes = {}
    for name, bin_dir in (("in", inproc_dir), ("ex", exec_dir)):
        env = {
            **os.environ,
            "CNI_CONTAINERID": "ctr",
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(bin_dir),
            "CNI_ARGS": "",
        }
        data_dir = tmp_path / f"data-{name}"
        stdin = conf(data_dir, "198.18.60.0/30")
        first = delegate.delegate_add("host-local", stdin, env, EXECUTOR).to_dict()
        with pytest.raises(CNIError) as exhausted:
            other = {**env, "CNI_CONTAINERID": "other"}
            delegate.delegate_add("host-local", stdin, other, EXECUTOR)
        delegate.delegate_del("host-local", stdin, env, EXECUTOR)
        left = sorted(p.name for p in (data_dir / "inproc").iterdir())
        outcomes[name] = (first, exhausted.value.code, exhausted.value.msg, left)
    assert outcomes["in"] == outcomes["ex"]
    assert outcomes["in"][0]["ips"][0]["address"] == "198.18.60.2/30"
