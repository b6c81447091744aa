"""Our Go libcni driver (tests/interop/gocnitool): build it, run it.

Benchmarks time plugins through a Go libcni runtime, as a container runtime
would run them, so that neither side's numbers include pycni's own CLI.
The test suite builds the same driver through `build()`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests/interop/gocnitool"
LIBCNI = Path("/usr/share/gocode/src/github.com/containernetworking/cni/libcni")


def missing() -> str:
    """Why the driver cannot be built here, or "" when it can."""
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    if not os.access(go, os.X_OK):
        return "no Go toolchain (Debian package golang-go)"
    if not LIBCNI.is_dir():
        return "no libcni sources (Debian package golang-github-appc-cni-dev)"
    return ""


def build(out_dir: Path) -> Path:
    """Build the driver into out_dir with Debian's libcni sources (GOPATH mode)."""
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    out = out_dir / "gocnitool"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(out_dir / "gocache"),
        "GOFLAGS": "",
    }
    subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE, env=env, check=True)
    return out


def env(conf_dir: Path, bin_dir: Path, cache_dir: Path, ifname: str = "eth0") -> dict:
    """The environment the driver reads, like cnitool's."""
    return {
        **os.environ,
        "NETCONFPATH": str(conf_dir),
        "CNI_PATH": str(bin_dir),
        "CNI_CACHE_DIR": str(cache_dir),
        "CNI_IFNAME": ifname,
    }
