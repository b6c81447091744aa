#!/usr/bin/env python3
"""Benchmark pycni's plugins against the Go reference plugins, side by side.

Everything runs inside a throwaway sandbox host namespace. In one run, for
the Go plugins (/usr/lib/cni) and the installed pycni plugins, with the same
bridge + host-local config and the same runtime driving both:

- ADD and DEL latency (median, min, max over --runs), through the
  cnitool-compatible `pycni` CLI and through the runtime library in-process;
- --concurrency simultaneous ADDs, then DELs (wall time);
- start-up of one plugin process answering VERSION;
- peak memory (max RSS) of each plugin process during an ADD (GNU time).

Usage: sudo .venv/bin/python bench/bench_plugins.py [--runs 30] [--concurrency 20]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pycni.cli.install import install
from pycni.kernel import netns
from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf

GO_BIN = Path("/usr/lib/cni")
IMPLS = ("go", "pycni")
SUBNETS = {"go": "198.18.96.0/21", "pycni": "198.18.104.0/21"}


class Bench:
    def __init__(self, tmp: Path, tag: str) -> None:
        self.tmp = tmp
        self.tag = tag
        self.namespaces: list[str] = []
        self.bins = {"go": GO_BIN, "pycni": tmp / "bin"}
        install(self.bins["pycni"])
        self.conf_dir = tmp / "conf"
        self.conf_dir.mkdir()
        for impl in IMPLS:
            conf = {
                "cniVersion": "1.0.0",
                "name": f"bench-{impl}",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": f"bench-{impl}0",
                        "isGateway": True,
                        "ipam": {
                            "type": "host-local",
                            "dataDir": str(tmp / "data"),
                            "ranges": [[{"subnet": SUBNETS[impl]}]],
                        },
                    }
                ],
            }
            (self.conf_dir / f"{impl}.conflist").write_text(json.dumps(conf))
        self.cache = tmp / "cache"

    def netns(self) -> str:
        name = f"pycni-bench-{self.tag}-{len(self.namespaces)}"
        path = netns.create_named(name)
        self.namespaces.append(name)
        return path

    def close(self) -> None:
        for name in self.namespaces:
            netns.delete_named(name)

    def cli(self, impl: str, verb: str, ns: str) -> float:
        env = {**os.environ, "NETCONFPATH": str(self.conf_dir), "CNI_PATH": str(self.bins[impl])}
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pycni",
                "--cache-dir",
                str(self.cache),
                verb,
                f"bench-{impl}",
                ns,
            ],
            env=env,
            capture_output=True,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{impl} {verb} failed: {proc.stderr.decode()}")
        return elapsed

    def library(self, impl: str) -> tuple[CNIConfig, object]:
        cni = CNIConfig(path=[str(self.bins[impl])], cache_dir=str(self.cache))
        return cni, load_network_conf(str(self.conf_dir), f"bench-{impl}")


def summary(samples: list[float]) -> dict:
    return {
        "median": statistics.median(samples) * 1000,
        "min": min(samples) * 1000,
        "max": max(samples) * 1000,
    }


def serial(bench: Bench, runs: int) -> dict:
    times = {
        (impl, how, verb): [] for impl in IMPLS for how in ("cli", "lib") for verb in ("ADD", "DEL")
    }
    libs = {impl: bench.library(impl) for impl in IMPLS}
    for i in range(runs):
        for impl in IMPLS if i % 2 == 0 else reversed(IMPLS):  # alternate who goes first
            ns = bench.netns()
            times[(impl, "cli", "ADD")].append(bench.cli(impl, "add", ns))
            times[(impl, "cli", "DEL")].append(bench.cli(impl, "del", ns))
            cni, net = libs[impl]
            rt = RuntimeConf(f"bench-lib-{i}", ns, "eth0")
            start = time.perf_counter()
            cni.add_network_list(net, rt)
            times[(impl, "lib", "ADD")].append(time.perf_counter() - start)
            start = time.perf_counter()
            cni.del_network_list(net, rt)
            times[(impl, "lib", "DEL")].append(time.perf_counter() - start)
    return {key: summary(samples) for key, samples in times.items()}


def concurrent(bench: Bench, n: int) -> dict:
    out = {}
    for impl in IMPLS:
        namespaces = [bench.netns() for _ in range(n)]
        for verb in ("add", "del"):
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=n) as pool:
                list(pool.map(lambda ns, v=verb, im=impl: bench.cli(im, v, ns), namespaces))
            out[(impl, verb.upper())] = (time.perf_counter() - start) * 1000
    return out


def startup(bench: Bench, runs: int) -> dict:
    out = {}
    env = {"CNI_COMMAND": "VERSION"}
    for plugin in ("bridge", "host-local", "loopback"):
        for impl in IMPLS:
            exe = str(bench.bins[impl] / plugin)
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                subprocess.run(
                    [exe], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True
                )
                samples.append(time.perf_counter() - start)
            out[(impl, plugin)] = summary(samples)
    return out


def peak_memory(bench: Bench) -> dict:
    """Max RSS (KiB) of each plugin process during an ADD.

    Measured by GNU time, a small C parent: a child forked from this Python
    process would report this process's RSS as its own high-water mark.
    """
    out = {}
    for impl in IMPLS:
        conf = json.loads((bench.conf_dir / f"{impl}.conflist").read_text())
        plugin_conf = json.dumps(
            {**conf["plugins"][0], "cniVersion": "1.0.0", "name": conf["name"]}
        ).encode()
        ns = bench.netns()
        env = {
            **os.environ,
            "CNI_CONTAINERID": "bench-mem",
            "CNI_NETNS": ns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(bench.bins[impl]),
        }
        for plugin, command in (
            ("host-local", "ADD"),
            ("host-local", "DEL"),
            ("bridge", "ADD"),
            ("bridge", "DEL"),
        ):
            proc = subprocess.run(
                ["/usr/bin/time", "-f", "maxrss=%M", str(bench.bins[impl] / plugin)],
                env={**env, "CNI_COMMAND": command},
                input=plugin_conf,
                capture_output=True,
                check=True,
            )
            if command == "ADD":
                line = proc.stderr.decode().strip().splitlines()[-1]
                out[(impl, plugin)] = int(line.removeprefix("maxrss="))
    return out


def report(runs: int, n: int, ser: dict, conc: dict, start: dict, mem: dict) -> str:
    lines = [
        f"pycni vs Go reference plugins (bridge + host-local), {runs} runs, {n} concurrent",
        "",
    ]
    lines.append(
        f"{'latency (ms)':<28}{'Go median':>10}{'min':>8}{'max':>8}"
        f"{'pycni med':>11}{'min':>8}{'max':>8}{'ratio':>8}"
    )
    for how, label in (("cli", "via pycni CLI"), ("lib", "via runtime library")):
        for verb in ("ADD", "DEL"):
            go, py = ser[("go", how, verb)], ser[("pycni", how, verb)]
            lines.append(
                f"{verb + ' ' + label:<28}{go['median']:>10.1f}{go['min']:>8.1f}"
                f"{go['max']:>8.1f}{py['median']:>11.1f}{py['min']:>8.1f}"
                f"{py['max']:>8.1f}{py['median'] / go['median']:>8.2f}"
            )
    lines.append("")
    for verb in ("ADD", "DEL"):
        go, py = conc[("go", verb)], conc[("pycni", verb)]
        lines.append(
            f"{n} concurrent {verb} (wall ms){'':<5}{go:>10.0f}{'':<16}{py:>11.0f}"
            f"{'':<16}{py / go:>8.2f}"
        )
    lines.append("")
    for plugin in ("bridge", "host-local", "loopback"):
        go, py = start[("go", plugin)], start[("pycni", plugin)]
        lines.append(
            f"{'VERSION start-up ' + plugin:<28}{go['median']:>10.1f}{go['min']:>8.1f}"
            f"{go['max']:>8.1f}{py['median']:>11.1f}{py['min']:>8.1f}"
            f"{py['max']:>8.1f}{py['median'] / go['median']:>8.2f}"
        )
    lines.append("")
    for plugin in ("bridge", "host-local"):
        go, py = mem[("go", plugin)], mem[("pycni", plugin)]
        lines.append(
            f"{'peak RSS ' + plugin + ' (MiB)':<28}{go / 1024:>10.1f}{'':<16}"
            f"{py / 1024:>11.1f}{'':<16}{py / go:>8.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=20)
    opts = parser.parse_args()
    if os.geteuid() != 0 or not (GO_BIN / "bridge").exists():
        print("needs root and the Go plugins in /usr/lib/cni", file=sys.stderr)
        return 2
    tag = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="pycni-bench-"))
    host = netns.create_named(f"pycni-bench-host-{tag}")
    bench = None
    try:
        with netns.enter(host):
            bench = Bench(tmp, tag)
            ser = serial(bench, opts.runs)
            conc = concurrent(bench, opts.concurrency)
            start = startup(bench, max(opts.runs, 30))
            mem = peak_memory(bench)
        print(report(opts.runs, opts.concurrency, ser, conc, start, mem))
    finally:
        if bench:
            bench.close()
        netns.delete_named(f"pycni-bench-host-{tag}")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
