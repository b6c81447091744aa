#!/usr/bin/env python3
"""pycni's runtime with pycni's plugins vs Go's cnitool with Go's plugins.

Issue 10's runtime targets: the `pycni` command of an installation
(`<bin dir>/.pycni/bin/pycni`, written by `pycni install`: the host's
python3 with `-I -S` on the installed copy and its bundle, so that its fork
server runs the installed launchers), against our Go libcni driver
(tests/interop/gocnitool, libcni as cnitool uses it) running the Go plugins
of /usr/lib/cni. Networks:

- bridge: bridge + host-local with isGateway and ipMasq;
- chain6: podman's chain, bridge + host-local + portmap (one mapping) +
  bandwidth (both directions) + firewall + tuning.

In one run, interleaved round by round inside a throwaway sandbox host
netns: Go, pycni with the fork server, pycni with PYCNI_FORK_SERVER=0 (every
plugin exec'd), each ADDing and DELing a fresh container netns; the bare
interpreter start (`python3 -I -S -c pass`) and `pycni --help` are timed
beside them. A fourth column, `pycni-lib`, is pycni.runtime used as a
library by one long-lived process (runtime_warm.py), as containerd and CRI-O
hold Go's libcni: the same networks and plugins, timed per call from request
to answer, with no interpreter start of its own.

Usage: sudo .venv/bin/python bench/bench_runtime.py [--runs 15]
"""

from __future__ import annotations

import argparse
import contextlib
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
from bench_chain import CAPS, GO_BIN, conflist, timed

from pycni.cli.install import choose_python, install
from pycni.kernel import netns
from pycni.plugins.launcher import COMMAND, LIB_DIR

SCENARIOS = ("bridge", "chain6")
IMPLS = ("go", "pycni", "pycni-exec", "pycni-lib")
WARM_DRIVER = Path(__file__).with_name("runtime_warm.py")
#: issue 10's targets, pycni / Go
TARGETS = {("bridge", "add"): 0.6, ("chain6", "add"): 0.5, ("chain6", "del"): 0.4}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    opts = parser.parse_args()
    if os.geteuid() != 0 or not (GO_BIN / "bridge").exists() or gocni.missing():
        print("needs root, the Go plugins in /usr/lib/cni and a Go toolchain with libcni")
        return 2
    tag = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="pyfs-bench-"))
    host = f"pyfs-bench-host-{tag}"
    host_path = ""
    samples: dict[tuple[str, str, str], list[float]] = {}
    try:
        driver = gocni.build(tmp)
        python = choose_python(None)
        bin_dir = tmp / "bin"
        install(bin_dir, python.path)
        pycni = [str(bin_dir / LIB_DIR / COMMAND)]  # the installation's own command
        conf_dir = tmp / "conf"
        conf_dir.mkdir()
        nets = []
        for i, (impl, scenario) in enumerate((i, s) for i in IMPLS for s in opts.scenarios):
            name = f"{scenario}-{impl}"
            doc = conflist(name, scenario, i, tmp / "data")
            (conf_dir / f"{i}.conflist").write_text(json.dumps(doc))
            nets.append((impl, scenario, name))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CNI_", "PYCNI_"))}
        base.update(NETCONFPATH=str(conf_dir), CAP_ARGS=json.dumps(CAPS))
        envs = {
            "go": {**gocni.env(conf_dir, GO_BIN, tmp / "cache-go"), "CAP_ARGS": json.dumps(CAPS)},
            "pycni": {**base, "CNI_PATH": str(bin_dir)},
            "pycni-exec": {**base, "CNI_PATH": str(bin_dir), "PYCNI_FORK_SERVER": "0"},
        }
        host_path = netns.create_named(host)
        count = 0
        with netns.enter(host_path), warm_runtime(python.path, bin_dir, conf_dir, tmp) as warm:
            for run in range(opts.runs):
                samples.setdefault(("floor", "", ""), []).append(
                    timed([python.path, "-I", "-S", "-c", "pass"], {})
                )
                samples.setdefault(("help", "", ""), []).append(
                    timed([*pycni, "--help"], envs["pycni"])
                )
                order = nets if run % 2 == 0 else nets[::-1]
                for impl, scenario, name in order:
                    count += 1
                    ns = f"pyfs-bench-{tag}-{count}"
                    path = netns.create_named(ns)
                    try:
                        for verb in ("add", "del"):
                            if impl == "pycni-lib":
                                seconds = warm(verb, name, path)
                                samples.setdefault((impl, scenario, verb), []).append(seconds)
                                continue
                            if impl == "go":
                                argv = [str(driver), verb, name, path]
                            else:
                                argv = [*pycni, "--cache-dir", str(tmp / f"cache-{impl}")]
                                argv += [verb, name, path]
                            seconds = timed(argv, envs[impl])
                            samples.setdefault((impl, scenario, verb), []).append(seconds)
                    finally:
                        netns.delete_named(ns)
        print(report(samples, opts.runs, python.path, opts.scenarios))
    finally:
        if host_path:
            netns.delete_named(host)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


@contextlib.contextmanager
def warm_runtime(python: str, bin_dir: Path, conf_dir: Path, tmp: Path):
    """runtime_warm.py started in the current netns; yields call(verb,
    network, netns path) -> seconds."""
    argv = [python, "-I", "-S", str(WARM_DRIVER), str(bin_dir / LIB_DIR), str(conf_dir)]
    argv += [str(tmp / "cache-lib"), str(bin_dir)]
    env = {"PATH": os.environ.get("PATH", ""), "CAP_ARGS": json.dumps(CAPS)}
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def call(verb: str, name: str, path: str) -> float:
        start = time.perf_counter()
        proc.stdin.write(f"{verb} {name} {path}\n")
        proc.stdin.flush()
        answer = proc.stdout.readline()
        elapsed = time.perf_counter() - start
        if answer.strip() != "ok":
            raise SystemExit(f"pycni-lib {verb} {name}: {answer.strip() or 'no answer'}")
        return elapsed

    try:
        yield call
    finally:
        proc.stdin.close()
        proc.wait(10)


def report(samples: dict, runs: int, python: str, scenarios: list[str]) -> str:
    def ms(key) -> float:
        return statistics.median(samples[key]) * 1000

    lines = [
        f"ms, median of {runs}, interleaved; pycni's runtime and plugins on {python}",
        f"floor (bare interpreter start): {ms(('floor', '', '')):.1f} ms",
        f"pycni --help: {ms(('help', '', '')):.1f} ms",
        "",
        f"{'':<14}{'Go':>8}{'pycni':>8}{'ratio':>7}{'target':>8}{'no fork':>9}{'ratio':>7}"
        f"{'library':>9}{'ratio':>7}",
    ]
    for scenario in scenarios:
        for verb in ("add", "del"):
            go = ms(("go", scenario, verb))
            fork = ms(("pycni", scenario, verb))
            plain = ms(("pycni-exec", scenario, verb))
            lib = ms(("pycni-lib", scenario, verb))
            target = TARGETS.get((scenario, verb))
            lines.append(
                f"{scenario + ' ' + verb.upper():<14}{go:>8.1f}{fork:>8.1f}{fork / go:>7.2f}"
                f"{'<= ' + str(target) if target else '':>8}{plain:>9.1f}{plain / go:>7.2f}"
                f"{lib:>9.1f}{lib / go:>7.2f}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
