#!/usr/bin/env python3
"""Start-up and ADD/DEL cost of pycni's plugins on each supported CPython.

pycni's plugins run on the host's own python3, so what a user pays per
plugin exec depends on the version their host ships. For each interpreter
given, pycni is installed into a plugin dir of its own; the Go plugins in
/usr/lib/cni are the baseline. In one run, interleaved round by round (the
order rotates every round), inside a throwaway sandbox host namespace:

- floor: the bare interpreter start, `python -I -S -c pass`;
- VERSION of bridge, host-local and loopback, one process each;
- bridge + host-local ADD and DEL of a fresh container netns, driven by our
  Go libcni driver (tests/interop/gocnitool), as a runtime drives plugins.

Medians over --runs; each plugin figure is also given as floor + own cost.

Usage: sudo .venv/bin/python bench/bench_versions.py [--runs 20] 3.9 3.10 ... 3.13
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gocni

from pycni.cli.install import install, probe
from pycni.kernel import netns

GO_BIN = Path("/usr/lib/cni")
VERSION_PLUGINS = ("bridge", "host-local", "loopback")


def find_python(pyenv_root: Path, version: str) -> str:
    found = sorted(
        pyenv_root.glob(f"versions/{version}.*/bin/python{version}"),
        key=lambda p: tuple(int(x) for x in p.parts[-3].split(".")),
    )
    if not found:
        raise SystemExit(f"no Python {version} under {pyenv_root}/versions")
    return str(found[-1])


def timed(argv: list[str], env: dict, stdin: bytes = b"") -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, input=stdin, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()}{proc.stdout.decode()}")
    return elapsed


class Impl:
    """One plugin set under test: Go's, or pycni's on one interpreter."""

    def __init__(self, label: str, bin_dir: Path, python: str | None, subnet: str) -> None:
        self.label = label
        self.bin_dir = bin_dir
        self.python = python
        self.subnet = subnet
        self.network = "bench-" + label.replace(".", "")
        self.samples: dict[str, list[float]] = {}

    def record(self, what: str, seconds: float) -> None:
        self.samples.setdefault(what, []).append(seconds)

    def median_ms(self, what: str) -> float:
        return statistics.median(self.samples[what]) * 1000


class Bench:
    def __init__(self, tmp: Path, tag: str, driver: Path, impls: list[Impl]) -> None:
        self.tmp = tmp
        self.tag = tag
        self.driver = driver
        self.impls = impls
        self.conf_dir = tmp / "conf"
        self.conf_dir.mkdir()
        self.cache = tmp / "cache"
        self.count = 0
        for i, impl in enumerate(impls):
            conf = {
                "cniVersion": "1.0.0",
                "name": impl.network,
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": f"benchv{i}",
                        "isGateway": True,
                        "ipam": {
                            "type": "host-local",
                            "dataDir": str(tmp / "data"),
                            "ranges": [[{"subnet": impl.subnet}]],
                        },
                    }
                ],
            }
            (self.conf_dir / f"{i}.conflist").write_text(json.dumps(conf))

    def round(self, impl: Impl) -> None:
        if impl.python:
            impl.record("floor", timed([impl.python, "-I", "-S", "-c", "pass"], {}))
        for plugin in VERSION_PLUGINS:
            env = {"CNI_COMMAND": "VERSION"}
            impl.record(f"VERSION {plugin}", timed([str(impl.bin_dir / plugin)], env))
        self.count += 1
        name = f"pycni-benchv-{self.tag}-{self.count}"
        path = netns.create_named(name)
        try:
            env = gocni.env(self.conf_dir, impl.bin_dir, self.cache)
            for verb in ("add", "del"):
                seconds = timed([str(self.driver), verb, impl.network, path], env)
                impl.record(verb.upper(), seconds)
        finally:
            netns.delete_named(name)


def report(impls: list[Impl], runs: int) -> str:
    go = impls[0]
    whats = ["floor", *(f"VERSION {p}" for p in VERSION_PLUGINS), "ADD", "DEL"]
    head = f"{'ms, median of ' + str(runs):<22}" + "".join(f"{i.label:>12}" for i in impls)
    lines = [
        "pycni per interpreter vs the Go plugins, through a Go libcni runtime",
        "",
        head,
    ]
    for what in whats:
        row = f"{what:<22}"
        for impl in impls:
            row += f"{impl.median_ms(what):>12.1f}" if what in impl.samples else f"{'-':>12}"
        lines.append(row)
    lines += ["", "own cost over floor"]
    for what in whats[1:]:
        row = f"{'  ' + what:<22}{'':>12}"
        for impl in impls[1:]:
            row += f"{impl.median_ms(what) - impl.median_ms('floor'):>12.1f}"
        lines.append(row)
    lines += ["", "ratio to Go"]
    for what in ("ADD", "DEL"):
        row = f"{'  ' + what:<22}{'':>12}"
        for impl in impls[1:]:
            row += f"{impl.median_ms(what) / go.median_ms(what):>12.2f}"
        lines.append(row)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pyenv-root", type=Path, default=Path.home() / ".pyenv")
    parser.add_argument("versions", nargs="+", help="e.g. 3.9 3.13")
    opts = parser.parse_args()
    if os.geteuid() != 0 or not (GO_BIN / "bridge").exists() or gocni.missing():
        print("needs root, the Go plugins in /usr/lib/cni and a Go toolchain with libcni")
        return 2
    tag = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="pycni-benchv-"))
    host = f"pycni-benchv-host-{tag}"
    host_path = ""
    try:
        driver = gocni.build(tmp)
        impls = [Impl("go", GO_BIN, None, "198.18.64.0/22")]
        for i, version in enumerate(opts.versions):
            python = probe(find_python(opts.pyenv_root, version))
            bin_dir = tmp / f"bin-{version}"
            install(bin_dir, python.path)
            impls.append(
                Impl(python.version_text, bin_dir, python.path, f"198.18.{68 + 4 * i}.0/22")
            )
        host_path = netns.create_named(host)
        with netns.enter(host_path):
            bench = Bench(tmp, tag, driver, impls)
            for run in range(opts.runs):
                shift = run % len(impls)
                for impl in impls[shift:] + impls[:shift]:
                    bench.round(impl)
        print(report(impls, opts.runs))
    finally:
        if host_path:
            netns.delete_named(host)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
