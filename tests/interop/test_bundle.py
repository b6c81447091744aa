"""An installed copy's bundle of compiled modules (pycni.bundle) and the
launcher's VERSION answer (pycni.launch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.bundle import FILE_NAME, MAGIC
from pycni.cli.install import LIB_DIR, install
from pycni.plugins import PLUGINS
from pycni.skel import run as skel_run

PYTHON = os.path.realpath(sys._base_executable)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    bin_dir = tmp_path_factory.mktemp("bundle-bin")
    install(bin_dir, PYTHON)
    return bin_dir


def in_copy(lib: Path, code: str, bundle: Path | None = None) -> str:
    """Run `code` on the installed copy with the bundle at `bundle` in use."""
    bundle = bundle or lib / FILE_NAME
    prologue = (
        f"import sys; sys.path.insert(0, {str(lib)!r}); from pycni import bundle; "
        f"print(bundle.activate({str(bundle)!r}))\n"
    )
    proc = subprocess.run(
        [PYTHON, "-I", "-S", "-c", prologue + code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def loader_of(module: str) -> str:
    return f"import {module} as m; print(type(m.__spec__.loader).__name__, m.__file__)\n"


def test_plugin_modules_come_from_the_bundle_with_their_installed_paths(installed):
    lib = installed / LIB_DIR
    module = PLUGINS["bridge"] + ".verbs"
    out = in_copy(lib, loader_of(module)).split()
    assert out == ["True", "BundleFinder", str(lib / (module.replace(".", "/") + ".py"))]


def test_a_traceback_names_the_installed_source_line(installed):
    lib = installed / LIB_DIR
    code = (
        "import traceback\n"
        "from pycni.spec import version\n"
        "try:\n    version.parse('1.2.3.4')\n"
        "except ValueError:\n    print(traceback.format_exc())\n"
    )
    out = in_copy(lib, code)
    assert f'File "{lib}/pycni/spec/version.py"' in out
    assert "raise ValueError" in out  # the source line, read from the copy


def test_an_edited_source_is_imported_from_its_file(tmp_path):
    bin_dir = tmp_path / "bin"
    install(bin_dir, PYTHON)
    lib = bin_dir / LIB_DIR
    edited = lib / "pycni/spec/ipnet.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")
    out = in_copy(lib, loader_of("pycni.spec.ipnet") + loader_of("pycni.spec.version"))
    lines = out.splitlines()
    assert lines[1].split()[0] == "SourceFileLoader"
    assert lines[2].split()[0] == "BundleFinder"
    assert in_copy(lib, "import pycni.spec.ipnet as m; print(m.EDITED)").split() == [
        "True",
        "True",
    ]


@pytest.mark.parametrize(
    "content",
    [b"", b"not a bundle at all", MAGIC + b"\x00\x00\x00\x00" + b"\x10\x00\x00\x00" + b"x" * 16],
    ids=["empty", "garbage", "other-interpreter"],
)
def test_an_unusable_bundle_is_ignored(installed, tmp_path, content):
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(content)
    out = in_copy(installed / LIB_DIR, loader_of("pycni.spec.version"), bad).split()
    assert out[:2] == ["False", "SourceFileLoader"]


def test_a_missing_bundle_is_ignored(installed, tmp_path):
    out = in_copy(installed / LIB_DIR, "pass", tmp_path / "missing").split()
    assert out == ["False"]


@pytest.mark.parametrize("plugin_type", sorted(PLUGINS))
def test_the_launcher_answers_version_as_skel_does_without_importing(installed, plugin_type):
    """Same bytes as the plugin's own VERSION answer, and the process loads
    no pycni module but the package and pycni.launch, and not `os`."""
    import io

    plugin = __import__(PLUGINS[plugin_type], fromlist=["PLUGIN"]).PLUGIN
    expected = io.StringIO()
    assert skel_run({"CNI_COMMAND": "VERSION"}, None, expected, io.StringIO(), plugin) == 0
    proc = subprocess.run(
        [PYTHON, "-I", "-S", "-X", "importtime", str(installed / plugin_type)],
        env={"CNI_COMMAND": "VERSION"},
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == expected.getvalue()
    assert json.loads(proc.stdout)["supportedVersions"] == list(plugin.supported)
    loaded = [line.rpartition("|")[2].strip() for line in proc.stderr.decode().splitlines()]
    assert [m for m in loaded if m.startswith("pycni")] == ["pycni", "pycni.launch"]
    assert "os" not in loaded


def test_other_invocations_go_through_the_plugin(installed):
    """No CNI_COMMAND: the plugin's own about text, from its main()."""
    proc = subprocess.run(
        [str(installed / "bridge")], env={}, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and "CNI protocol versions supported" in proc.stderr


def test_the_installation_has_its_own_pycni_command(installed):
    """Same copy and interpreter as the plugins: the fork server applies."""
    command = installed / LIB_DIR / "bin" / "pycni"
    proc = subprocess.run([str(command), "version"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "pycni" in proc.stdout
    probe = (
        f"import sys; sys.path.insert(0, {str(installed / LIB_DIR)!r}); "
        "from pycni.plugins.launcher import in_process_module; "
        f"print(in_process_module({str(installed / 'bridge')!r}))"
    )
    out = subprocess.run([PYTHON, "-I", "-S", "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == PLUGINS["bridge"]


def test_the_installed_command_runs_plugins_from_its_fork_server(
    installed, tmp_path, netns_factory
):
    """ADD and DEL through the installation's `pycni` command: the fork
    server keeps the bundle it imports from (it closes every other
    descriptor it inherited), and the result is the plugin's."""
    conf = tmp_path / "conf"
    conf.mkdir()
    doc = {"cniVersion": "1.1.0", "name": "lonet", "plugins": [{"type": "loopback"}]}
    (conf / "lo.conflist").write_text(json.dumps(doc))
    env = {"NETCONFPATH": str(conf), "CNI_PATH": str(installed), "PATH": os.environ["PATH"]}
    command = str(installed / LIB_DIR / "bin" / "pycni")
    netns = netns_factory("cmd").path
    for verb in ("add", "del"):
        argv = [command, "--cache-dir", str(tmp_path / "cache"), verb, "lonet", netns]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        if verb == "add":
            assert json.loads(proc.stdout)["interfaces"][0]["name"] == "lo"
