#!/usr/bin/env python3
"""pycni's plugins vs the Go reference plugins, driven by a Go libcni runtime.

Two networks a runtime really uses, each set up once for the Go plugins
(/usr/lib/cni) and once for pycni's installed plugins (the host's python3):

- bridge: bridge + host-local with isGateway and ipMasq;
- chain6: podman's chain, bridge + host-local + portmap (one mapping) +
  bandwidth (both directions) + firewall + tuning;
- ptp: ptp + host-local with ipMasq (the talk's routed + IPAM order);
- macvlan: macvlan (bridge mode, on a veth uplink of the sandbox host) +
  host-local.

In one run, interleaved round by round inside a throwaway sandbox host
namespace, our Go libcni driver (tests/interop/gocnitool) ADDs and DELs a
fresh container netns; the bare interpreter start (`python3 -I -S -c pass`)
is timed beside them as the floor no Python plugin can go under.

Usage: sudo .venv/bin/python bench/bench_chain.py [--runs 20]
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

from pycni.cli.install import choose_python, install
from pycni.kernel import netns
from pycni.kernel.netlink import RtNetlink

GO_BIN = Path("/usr/lib/cni")
CAPS = {
    "portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}],
    "bandwidth": {
        "ingressRate": 100_000_000,
        "ingressBurst": 10_000_000,
        "egressRate": 100_000_000,
        "egressBurst": 10_000_000,
    },
}


SCENARIOS = ("bridge", "chain6", "ptp", "macvlan")
UPLINK = "bencup0"


def conflist(name: str, scenario: str, index: int, data: Path) -> dict:
    subnet = f"198.18.{64 + 4 * index}.0/22"
    ipam = {"type": "host-local", "dataDir": str(data), "ranges": [[{"subnet": subnet}]]}
    first: dict = {"type": "bridge", "bridge": f"benc{index}", "isGateway": True, "ipMasq": True}
    if scenario == "ptp":
        first = {"type": "ptp", "ipMasq": True}
    elif scenario == "macvlan":
        first = {"type": "macvlan", "master": UPLINK, "mode": "bridge"}
    plugins = [{**first, "ipam": ipam}]
    if scenario == "chain6":
        plugins += [
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
            {"type": "firewall"},
            {"type": "tuning"},
        ]
    return {"cniVersion": "1.0.0", "name": name, "plugins": plugins}


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()}{proc.stdout.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    opts = parser.parse_args()
    if os.geteuid() != 0 or not (GO_BIN / "bridge").exists() or gocni.missing():
        print("needs root, the Go plugins in /usr/lib/cni and a Go toolchain with libcni")
        return 2
    tag = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="pycni-benchc-"))
    host = f"pycni-benchc-host-{tag}"
    host_path = ""
    samples: dict[tuple[str, str, str], list[float]] = {}
    try:
        driver = gocni.build(tmp)
        python = choose_python(None)
        bins = {"go": GO_BIN, "pycni": tmp / "bin"}
        install(bins["pycni"], python.path)
        conf_dir = tmp / "conf"
        conf_dir.mkdir()
        nets = []
        for i, (impl, scenario) in enumerate(
            (i, s) for i in ("go", "pycni") for s in opts.scenarios
        ):
            name = f"{scenario}-{impl}"
            doc = conflist(name, scenario, i, tmp / "data")
            (conf_dir / f"{i}.conflist").write_text(json.dumps(doc))
            nets.append((impl, scenario, name))
        host_path = netns.create_named(host)
        count = 0
        with netns.enter(host_path):
            with RtNetlink() as nl:  # macvlan's master
                nl.link_add_veth(UPLINK, UPLINK + "p")
                nl.link_set(nl.link_get(UPLINK), up=True)
            for run in range(opts.runs):
                samples.setdefault(("floor", "", ""), []).append(
                    timed([python.path, "-I", "-S", "-c", "pass"], {})
                )
                order = nets if run % 2 == 0 else nets[::-1]
                for impl, scenario, name in order:
                    count += 1
                    ns = f"pycni-benchc-{tag}-{count}"
                    path = netns.create_named(ns)
                    try:
                        env = gocni.env(conf_dir, bins[impl], tmp / "cache")
                        env["CAP_ARGS"] = json.dumps(CAPS)
                        for verb in ("add", "del"):
                            seconds = timed([str(driver), verb, name, path], env)
                            samples.setdefault((impl, scenario, verb), []).append(seconds)
                    finally:
                        netns.delete_named(ns)
        print(report(samples, opts.runs, python.path, opts.scenarios))
    finally:
        if host_path:
            netns.delete_named(host)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(samples: dict, runs: int, python: str, scenarios: list[str]) -> str:
    def ms(key) -> float:
        return statistics.median(samples[key]) * 1000

    lines = [
        f"through a Go libcni runtime, ms, median of {runs}; pycni on {python}",
        f"floor (bare interpreter start): {ms(('floor', '', '')):.1f} ms",
        "",
        f"{'':<16}{'Go':>10}{'pycni':>10}{'ratio':>8}",
    ]
    for scenario in scenarios:
        for verb in ("add", "del"):
            go, py = ms(("go", scenario, verb)), ms(("pycni", scenario, verb))
            lines.append(
                f"{scenario + ' ' + verb.upper():<16}{go:>10.1f}{py:>10.1f}{py / go:>8.2f}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
