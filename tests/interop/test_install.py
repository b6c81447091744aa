"""`pycni install` and Go's libcni driving the installed pycni plugins."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pycni.cli.install import LIB_DIR, install, uninstall
from pycni.plugins import PLUGINS
from pycni.spec.errors import CNIError

from support.cni import bridge_conflist, reservations
from support.sandbox import ip_json


def run_version(path: Path) -> dict:
    proc = subprocess.run(
        [str(path)], env={"CNI_COMMAND": "VERSION"}, input=b"", capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc
    return json.loads(proc.stdout)


def test_install_then_uninstall_leaves_only_foreign_files(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sriov").write_text("foreign")
    installed = install(bin_dir)
    assert sorted(installed) == sorted(PLUGINS)
    for plugin_type in PLUGINS:
        launcher = bin_dir / plugin_type
        assert os.access(launcher, os.X_OK)
        first = launcher.read_text().splitlines()[0]
        assert first.startswith("#!/") and first.endswith(" -IS")
        assert ".venv" not in first and "shims" not in first
        assert "1.1.0" in run_version(launcher)["supportedVersions"]
    assert list((bin_dir / LIB_DIR).rglob("*.pyc")), "bytecode is precompiled"
    assert sorted(uninstall(bin_dir)) == sorted(PLUGINS)
    assert sorted(p.name for p in bin_dir.iterdir()) == ["sriov"]
    assert uninstall(bin_dir) == []


def test_install_refuses_to_replace_foreign_plugins(tmp_path):
    (tmp_path / "bridge").write_text("#!/bin/sh\n")
    with pytest.raises(CNIError, match=r"bridge.*--force"):
        install(tmp_path)
    assert (tmp_path / "bridge").read_text() == "#!/bin/sh\n"
    assert not (tmp_path / LIB_DIR).exists()
    install(tmp_path, force=True)
    assert "pycni launcher" in (tmp_path / "bridge").read_text()


def test_cli_install_and_uninstall(tmp_path):
    base = [sys.executable, "-m", "pycni"]
    out = subprocess.run(
        [*base, "install", "--cni-bin-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "installed host-local" in out
    out = subprocess.run(
        [*base, "uninstall", "--cni-bin-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "removed bridge" in out
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def installed(cni_dirs):
    """pycni installed for PYCNI_TEST_PYTHON (set by `make test-matrix`), else
    for the system python3: the kernel smoke of each interpreter in the matrix."""
    install(cni_dirs["bin"], os.environ.get("PYCNI_TEST_PYTHON") or None)
    return cni_dirs["bin"]


def fake_python(path: Path, version: str, real: str) -> Path:
    """A script that answers the interpreter probe like Python `version` at `real`."""
    path.write_text(f"#!/bin/sh\nprintf '%s\\n%s' '{version}' '{real}'\n")
    path.chmod(0o755)
    return path


def old_pythons(tmp_path: Path) -> list[str]:
    found: list[Path] = []
    with contextlib.suppress(PermissionError):  # another user's pyenv root: none of ours
        found = sorted(Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")).glob("versions/3.8.*"))
    return [str(fake_python(tmp_path / "python3.8", "3.8.18", "/usr/bin/python3.8"))] + [
        str(v / "bin/python3") for v in found[-1:]
    ]


def test_install_refuses_an_interpreter_outside_the_range_and_writes_nothing(tmp_path):
    for python in old_pythons(tmp_path):
        bin_dir = tmp_path / "bin"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pycni",
                "install",
                "--python",
                python,
                "--cni-bin-dir",
                str(bin_dir),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 1, proc
        assert "Python 3.8." in proc.stderr and "need Python 3.9 to 3.13" in proc.stderr
        assert python in proc.stderr and "Traceback" not in proc.stderr
        assert not bin_dir.exists()
    future = fake_python(tmp_path / "python3.14", "3.14.0", "/usr/bin/python3.14")
    with pytest.raises(CNIError, match=r"Python 3\.14\.0 .*need Python 3\.9 to 3\.13"):
        install(tmp_path / "bin", str(future))


def test_install_names_the_real_interpreter_behind_a_shim(tmp_path):
    real = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    shim = tmp_path / "python3"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    install(tmp_path / "bin", str(shim))
    assert (tmp_path / "bin/bridge").read_text().splitlines()[0] == f"#!{real} -IS"


@pytest.mark.parametrize("bad", ["/etc/passwd", "/nonexistent/python3", "/tmp", "/bin/false"])
def test_install_rejects_what_is_no_interpreter(tmp_path, bad):
    with pytest.raises(CNIError, match=bad):
        install(tmp_path / "bin", bad)
    assert not (tmp_path / "bin").exists()


def test_install_check_reports_interpreter_version_and_startup(tmp_path):
    base = [sys.executable, "-m", "pycni", "install", "--check", "--cni-bin-dir", str(tmp_path)]
    empty = subprocess.run(base, capture_output=True, text=True)
    assert empty.returncode == 1 and "no pycni installation" in empty.stdout
    install(tmp_path)
    proc = subprocess.run(base, capture_output=True, text=True)
    assert proc.returncode == 0, proc
    python = (tmp_path / "bridge").read_text().splitlines()[0][2:-4]
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"run on {python}" in proc.stdout
    assert f"Python {version} (supported)" in proc.stdout
    assert re.search(r"bare start-up \(python -I -S -c pass\): \d+\.\d ms median", proc.stdout)
    (tmp_path / "host-local").write_text("#!/bin/sh\n")
    broken = subprocess.run(base, capture_output=True, text=True)
    assert broken.returncode == 1 and "altered launchers: host-local" in broken.stdout


def write_conflist(conf_dir: Path, data_dir: Path, bridge: str) -> None:
    conf = bridge_conflist(
        "gonet", bridge, "198.18.7.0/24", data_dir, "1.0.0", routes=[{"dst": "0.0.0.0/0"}]
    )
    (conf_dir / "10-br.conflist").write_text(json.dumps(conf))
    (conf_dir / "20-lo.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "lonet", "plugins": [{"type": "loopback"}]})
    )


def gocni(
    tool: Path, verb: str, net: str, netns: str, bin_dir: Path, dirs: dict, ifname: str = "eth0"
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "NETCONFPATH": str(dirs["conf"]),
        "CNI_PATH": str(bin_dir),
        "CNI_CACHE_DIR": str(dirs["cache"]),
        "CNI_IFNAME": ifname,
    }
    return subprocess.run(
        [str(tool), verb, net, netns], env=env, capture_output=True, text=True, timeout=60
    )


def test_go_libcni_runs_installed_pycni_plugins(
    host_ns, container_ns, installed, cni_dirs, gocnitool
):
    write_conflist(cni_dirs["conf"], cni_dirs["data"], "pycgo0")
    for verb in ("add", "check"):
        lo = gocni(gocnitool, verb, "lonet", container_ns.path, installed, cni_dirs, "lo")
        assert lo.returncode == 0, lo.stderr
    add = gocni(gocnitool, "add", "gonet", container_ns.path, installed, cni_dirs)
    assert add.returncode == 0, add.stderr + add.stdout
    result = json.loads(add.stdout)
    assert result["cniVersion"] == "1.0.0"
    assert [i["name"] for i in result["interfaces"]][::2] == ["pycgo0", "eth0"]
    assert result["ips"][0]["address"].startswith("198.18.7.")
    addrs = {a["ifname"]: a for a in ip_json("addr", netns=container_ns.name)}
    assert addrs["eth0"]["addr_info"][0]["local"] == result["ips"][0]["address"].split("/")[0]
    assert addrs["lo"]["operstate"] == "UNKNOWN" and "UP" in addrs["lo"]["flags"]

    check = gocni(gocnitool, "check", "gonet", container_ns.path, installed, cni_dirs)
    assert check.returncode == 0, check.stderr + check.stdout

    # The cache Go libcni wrote is read by the pycni runtime.
    from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

    cni = CNIConfig(path=[str(installed)], cache_dir=str(cni_dirs["cache"]))
    net = load_network_conf(str(cni_dirs["conf"]), "gonet")
    cid = next(a.container_id for a in cni.get_cached_attachments("") if a.network == "gonet")
    cached = cni.get_network_list_cached_result(net, RuntimeConf(cid, container_ns.path, "eth0"))
    assert cached.ips[0].address == result["ips"][0]["address"]

    for _ in range(2):
        dele = gocni(gocnitool, "del", "gonet", container_ns.path, installed, cni_dirs)
        assert dele.returncode == 0, dele.stderr + dele.stdout
    lo = gocni(gocnitool, "del", "lonet", container_ns.path, installed, cni_dirs, "lo")
    assert lo.returncode == 0, lo.stderr
    assert [a["ifname"] for a in ip_json("link", netns=container_ns.name)] == ["lo"]
    assert reservations(cni_dirs["data"], "gonet") == []


def test_pycni_cache_is_read_by_go_libcni(host_ns, container_ns, installed, cni_dirs, gocnitool):
    """pycni ADDs, Go reads the cached result and DELs with it; and back."""
    from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

    write_conflist(cni_dirs["conf"], cni_dirs["data"], "pycgo1")
    cni = CNIConfig(path=[str(installed)], cache_dir=str(cni_dirs["cache"]))
    net = load_network_conf(str(cni_dirs["conf"]), "gonet")
    import hashlib

    cid = "cnitool-" + hashlib.sha512(container_ns.path.encode()).hexdigest()[:20]
    rt = RuntimeConf(cid, container_ns.path, "eth0")
    ours = cni.add_network_list(net, rt)
    cached = gocni(gocnitool, "cached", "gonet", container_ns.path, installed, cni_dirs)
    assert cached.returncode == 0, cached.stderr
    assert json.loads(cached.stdout)["ips"][0]["address"] == ours.ips[0].address
    dele = gocni(gocnitool, "del", "gonet", container_ns.path, installed, cni_dirs)
    assert dele.returncode == 0, dele.stderr
    assert cni.get_network_list_cached_result(net, rt) is None

    add = gocni(gocnitool, "add", "gonet", container_ns.path, installed, cni_dirs)
    assert add.returncode == 0, add.stderr
    assert (
        cni.get_network_list_cached_result(net, rt).ips[0].address
        == json.loads(add.stdout)["ips"][0]["address"]
    )
    cni.del_network_list(net, rt)
    assert not list((cni_dirs["cache"] / "results").iterdir())
