#!/usr/bin/env python3
"""pycni's plugins vs the Go reference plugins, driven by a Go libcni runtime.

Two networks a runtime really uses, each set up once for the Go plugins
(/usr/lib/cni) and once for pycni's installed plugins (the host's python3):

- bridge: bridge + host-local with isGateway and ipMasq;
- sql: the same bridge with pycni's sql IPAM on a temp SQLite file. Go has
  no sql plugin, so its Go column is the Go bridge + host-local again: the
  row compares pycni's sql path with the Go host-local path, and beside
  the bridge row, sql with host-local within pycni;
- pg: the same with sql on PostgreSQL: a throwaway server (pycni.cli.pgserver)
  and the node daemon (`sql daemon`, through the installed launcher) that
  the plugin forwards its verb to; again beside Go's and pycni's host-local;
- chain6: podman's chain, bridge + host-local + portmap (one mapping) +
  bandwidth (both directions) + firewall + tuning;
- ptp: ptp + host-local with ipMasq (the talk's routed + IPAM order);
- macvlan: macvlan (bridge mode, on a veth uplink of the sandbox host) +
  host-local.

In one run, interleaved round by round inside a throwaway sandbox host
namespace, our Go libcni driver (tests/interop/gocnitool) ADDs and DELs a
fresh container netns; the bare interpreter start (`python3 -I -S -c pass`)
is timed beside them as the floor no Python plugin can go under, and so is
one bridge process answering VERSION. Then, once per plugin set:
--concurrency simultaneous ADDs of as many containers on the `bridge`
network, then their DELs (wall time of each batch; --batches of them per
side, alternating), and the peak RSS of
every plugin process of one ADD and DEL of each network (GNU time around
each plugin exec).

Usage: sudo .venv/bin/python bench/bench_chain.py [--runs 20] [--concurrency 20] [--batches 5]
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


SCENARIOS = ("bridge", "sql", "pg", "chain6", "ptp", "macvlan")
UPLINK = "bencup0"


def conflist(
    name: str,
    scenario: str,
    index: int,
    data: Path,
    impl: str = "pycni",
    pg: tuple[str, str] | None = None,
) -> dict:
    """The network of `scenario`; `pg` is the (dsn, daemon socket) of pg."""
    subnet = f"198.18.{64 + 4 * index}.0/22"
    ipam: dict = {"type": "host-local", "dataDir": str(data), "ranges": [[{"subnet": subnet}]]}
    if scenario == "sql" and impl == "pycni":
        ipam = {
            "type": "sql",
            "database": {"engine": "sqlite", "path": str(data / "sql" / "ipam.db")},
            "node": "bench",
            "ranges": [[{"subnet": subnet}]],
        }
    if scenario == "pg" and impl == "pycni":
        assert pg is not None
        ipam = {
            "type": "sql",
            "database": {"engine": "postgres", "dsn": pg[0]},
            "daemonSocketPath": pg[1],
            "node": "bench",
            "ranges": [[{"subnet": subnet}]],
        }
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


def concurrent(driver: Path, verb: str, name: str, paths: list[str], env: dict) -> float:
    """Wall time of one `verb` per netns in `paths`, all started at once."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen([str(driver), verb, name, p], env=env, stdout=subprocess.DEVNULL)
        for p in paths
    ]
    codes = [proc.wait() for proc in procs]
    elapsed = time.perf_counter() - start
    if any(codes):
        raise SystemExit(f"concurrent {verb} {name}: exit codes {codes}")
    return elapsed


def peak_rss(driver: Path, conf_dir: Path, tmp: Path, bins: dict, nets: list, tag: str) -> dict:
    """Max RSS (KiB) of every plugin process of one ADD and DEL per network.

    Each plugin runs under GNU time (a small C parent: a child forked from
    this Python process would report this process's RSS as its own) from a
    directory of wrappers placed first in CNI_PATH; host-local, not wrapped,
    still runs in-process in pycni's bridge as the real layout has it.
    """
    out: dict[tuple[str, str], int] = {}
    for impl, _scenario, name in nets:
        wrap = tmp / f"rss-{impl}"
        log = tmp / f"rss-{impl}.log"
        if not wrap.exists():
            wrap.mkdir()
            for t in ("bridge", "ptp", "macvlan", "portmap", "bandwidth", "firewall", "tuning"):
                script = wrap / t
                script.write_text(
                    f"#!/bin/sh\nexec /usr/bin/time -a -o {log} -f '{t} %M' {bins[impl] / t}\n"
                )
                script.chmod(0o755)
        path = netns.create_named(f"pycni-benchc-{tag}-rss")
        try:
            env = gocni.env(conf_dir, Path(f"{wrap}:{bins[impl]}"), tmp / "cache")
            env["CAP_ARGS"] = json.dumps(CAPS)
            for verb in ("add", "del"):
                timed([str(driver), verb, name, path], env)
        finally:
            netns.delete_named(f"pycni-benchc-{tag}-rss")
        for line in log.read_text().split("\n"):
            if line.strip():
                plugin, kib = line.rsplit(" ", 1)
                out[(impl, plugin)] = max(out.get((impl, plugin), 0), int(kib))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--batches", type=int, default=5, help="concurrent batches per side")
    opts = parser.parse_args()
    if os.geteuid() != 0 or not (GO_BIN / "bridge").exists() or gocni.missing():
        print("needs root, the Go plugins in /usr/lib/cni and a Go toolchain with libcni")
        return 2
    tag = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="pycni-benchc-"))
    host = f"pycni-benchc-host-{tag}"
    host_path = ""
    samples: dict[tuple[str, str, str], list[float]] = {}
    stack = contextlib.ExitStack()
    try:
        driver = gocni.build(tmp)
        python = choose_python(None)
        bins = {"go": GO_BIN, "pycni": tmp / "bin"}
        install(bins["pycni"], python.path)
        conf_dir = tmp / "conf"
        conf_dir.mkdir()
        host_path = netns.create_named(host)
        pg = (
            stack.enter_context(pg_daemon(bins["pycni"], host_path, tmp))
            if "pg" in opts.scenarios
            else None
        )
        nets = []
        for i, (impl, scenario) in enumerate(
            (i, s) for i in ("go", "pycni") for s in opts.scenarios
        ):
            name = f"{scenario}-{impl}"
            doc = conflist(name, scenario, i, tmp / "data", impl, pg)
            (conf_dir / f"{i}.conflist").write_text(json.dumps(doc))
            nets.append((impl, scenario, name))
        count = 0
        with netns.enter(host_path):
            with RtNetlink() as nl:  # macvlan's master
                nl.link_add_veth(UPLINK, UPLINK + "p")
                nl.link_set(nl.link_get(UPLINK), up=True)
            for run in range(opts.runs):
                samples.setdefault(("floor", "", ""), []).append(
                    timed([python.path, "-I", "-S", "-c", "pass"], {})
                )
                for impl in ("go", "pycni"):
                    samples.setdefault((impl, "", "version"), []).append(
                        timed([str(bins[impl] / "bridge")], {"CNI_COMMAND": "VERSION"})
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
            walls: dict[tuple[str, str], list[float]] = {}
            if "bridge" in opts.scenarios and opts.concurrency:
                names = [f"pycni-benchc-{tag}-c{i}" for i in range(opts.concurrency)]
                paths = [netns.create_named(n) for n in names]
                try:
                    for batch in range(opts.batches):
                        for impl in ("go", "pycni") if batch % 2 == 0 else ("pycni", "go"):
                            env = gocni.env(conf_dir, bins[impl], tmp / "cache")
                            for verb in ("add", "del"):
                                walls.setdefault((impl, verb), []).append(
                                    concurrent(driver, verb, f"bridge-{impl}", paths, env)
                                )
                finally:
                    for n in names:
                        netns.delete_named(n)
            rss = peak_rss(driver, conf_dir, tmp, bins, nets, tag)
        print(report(samples, opts.runs, python.path, opts.scenarios))
        print(report_extra(walls, opts.concurrency, rss))
    finally:
        stack.close()
        if host_path:
            netns.delete_named(host)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


@contextlib.contextmanager
def pg_daemon(bin_dir: Path, host_path: str, tmp: Path):
    """A throwaway PostgreSQL server and the installed plugins' `sql daemon`
    in the sandbox host netns; yields (dsn, socket path)."""
    from pycni.cli.pgserver import PgServer, available

    reason = available()
    if reason:
        raise SystemExit(f"pg: {reason}")
    server = PgServer.create()
    daemon = None
    try:
        server.create_role("bench")
        server.create_database("bench", owner="bench")
        socket_path = tmp / "sql-daemon" / "sql.sock"
        log = tmp / "sql-daemon.log"
        with netns.enter(host_path), open(log, "wb") as out:
            daemon = subprocess.Popen(
                [str(bin_dir / "sql"), "daemon", "-socketpath", str(socket_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 20
        while "listening on" not in log.read_text(errors="replace"):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"pg: the sql daemon did not start: {log.read_text()}")
            time.sleep(0.02)
        yield server.dsn(user="bench", dbname="bench"), str(socket_path)
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(30)
        server.destroy()


def report(samples: dict, runs: int, python: str, scenarios: list[str]) -> str:
    def ms(key) -> float:
        return statistics.median(samples[key]) * 1000

    floor = ms(("floor", "", ""))
    version = ms(("pycni", "", "version"))
    lines = [
        f"through a Go libcni runtime, ms, median of {runs}; pycni on {python}",
        f"floor (bare interpreter start): {floor:.1f} ms",
        f"bridge VERSION: Go {ms(('go', '', 'version')):.1f}, pycni {version:.1f} ms "
        f"({version / floor:.2f}x the floor)",
        "",
        f"{'':<16}{'Go':>10}{'pycni':>10}{'ratio':>8}",
    ]
    for scenario in scenarios:
        for verb in ("add", "del"):
            go, py = ms(("go", scenario, verb)), ms(("pycni", scenario, verb))
            lines.append(
                f"{scenario + ' ' + verb.upper():<16}{go:>10.1f}{py:>10.1f}{py / go:>8.2f}"
            )
    engines = [
        (s, label) for s, label in (("sql", "SQLite"), ("pg", "PostgreSQL")) if s in scenarios
    ]
    if engines:
        lines.append("(sql, pg: Go has no sql plugin; its Go column is Go bridge + host-local)")
    for scenario, label in engines if "bridge" in scenarios else ():
        for verb in ("add", "del"):
            hl, sq = ms(("pycni", "bridge", verb)), ms(("pycni", scenario, verb))
            target = " (target <= 1.5x)" if scenario == "pg" and verb == "add" else ""
            lines.append(
                f"pycni {verb.upper()}: sql ({label}) {sq:.1f} ms vs host-local {hl:.1f} ms "
                f"= {sq / hl:.2f}x{target}"
            )
    return "\n".join(lines)


def report_extra(walls: dict, n: int, rss: dict) -> str:
    lines = []
    if walls:
        batches = len(walls[("go", "add")])
        lines += ["", f"{n} concurrent on the bridge network, wall ms, median of {batches} batches"]
        for verb in ("add", "del"):
            go = statistics.median(walls[("go", verb)]) * 1000
            py = statistics.median(walls[("pycni", verb)]) * 1000
            lines.append(f"{verb.upper():<16}{go:>10.0f}{py:>10.0f}{py / go:>8.2f}")
    lines += ["", "peak RSS per plugin process (MiB, ADD and DEL)"]
    for plugin in sorted({p for _, p in rss}):
        go, py = rss.get(("go", plugin), 0) / 1024, rss.get(("pycni", plugin), 0) / 1024
        lines.append(f"{plugin:<16}{go:>10.1f}{py:>10.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
