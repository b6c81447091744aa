"""Through the daemon, the plugin prints what it prints in-process.

Each scenario runs twice on a fresh SQLite database at the same path: in
this process as the plugin runs (skel.run over sql's PLUGIN), then with
every verb forwarded to a `sql daemon` child process, as the PostgreSQL
engine does. Exit codes and stdout must be byte for byte the same,
results and errors alike, for every CNI version.
"""

from __future__ import annotations

import json
import shutil

import pytest

from pycni.spec.version import ALL

from support.sql_daemon import env_of, run_verb
from support.sql_ipam import leases, make_conf

TWO_SETS = [[{"subnet": "198.18.0.0/24"}], [{"subnet": "fd00::/64"}]]


def _with_prev(conf: dict, outputs: list) -> dict:
    """`conf` with the last successful ADD's output as prevResult."""
    for code, out in reversed(outputs):
        if code == 0 and out:
            return {**conf, "prevResult": json.loads(out)}
    return conf


def scenario_lifecycle(db, version):
    conf = make_conf(
        db,
        TWO_SETS,
        version=version,
        routes=[{"dst": "0.0.0.0/0"}, {"dst": "fd00:1::/64", "gw": "fd00::9"}],
        dns={"nameservers": ["198.18.0.53"], "domain": "pysd", "search": ["a"]},
    )
    return [
        ("ADD", conf, {}),
        ("CHECK", lambda outs: _with_prev(conf, outs), {}),
        ("ADD", conf, {}),  # a second ADD of the attachment: refused
        ("ADD", conf, {"container_id": "pysd-c2"}),
        ("GC", {**conf, "cni.dev/valid-attachments": [{"containerID": "pysd-c2"}]}, {}),
        ("STATUS", conf, {}),
        ("DEL", conf, {}),
        ("DEL", conf, {}),
        ("CHECK", conf, {}),
        ("DEL", conf, {"container_id": "pysd-c2"}),
    ]


def scenario_errors(db, version):
    small = make_conf(db, [[{"subnet": "198.18.1.0/30"}]], version=version)
    return [
        ("ADD", make_conf(db, [[{"subnet": "nonsense"}]], version=version), {}),
        ("ADD", make_conf(db, version=version, blockSize="26"), {}),
        ("ADD", {**make_conf(db, version=version), "ipam": {"type": "sql", "node": 5}}, {}),
        ("ADD", small, {}),
        ("ADD", small, {"container_id": "pysd-c2"}),
        ("ADD", small, {"container_id": "pysd-c3"}),  # /30: full
        ("STATUS", small, {}),
        ("ADD", make_conf(db, version=version), {"args": "IP=198.18.0.9"}),
        ("ADD", make_conf(db, version=version), {"args": "IP=198.18.9.9", "container_id": "x2"}),
        ("ADD", make_conf(db, version=version), {"args": "IP=nope", "container_id": "x3"}),
        ("DEL", make_conf(db, [[{"subnet": "nonsense"}]], version=version), {}),
        ("DEL", make_conf(db, version=version), {"container_id": "pysd-c2"}),
        ("DEL", make_conf(db, version=version), {"container_id": "pysd-unknown"}),
        ("ADD", {**make_conf(db), "cniVersion": "9.9.9"}, {}),
        ("DEL", {"cniVersion": version, "name": "pysd"}, {}),
    ]


def _run(steps, netns: str, socket_path: str | None) -> list[tuple[int, str]]:
    outputs: list[tuple[int, str]] = []
    for command, conf, kw in steps:
        if callable(conf):
            conf = conf(outputs)
        env = env_of(command, netns, **kw)
        outputs.append(run_verb(env, conf, socket_path))
    return outputs


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("scenario", [scenario_lifecycle, scenario_errors])
def test_daemon_prints_what_in_process_prints(daemon, workdir, sd_netns, scenario, version):
    db = workdir / "state" / "ipam.db"
    steps = scenario(db, version)
    direct = _run(steps, sd_netns, None)
    shutil.rmtree(db.parent)
    forwarded = _run(steps, sd_netns, str(daemon.socket_path))
    assert forwarded == direct
    assert any(code == 0 for code, _ in direct) and any(code == 1 for code, _ in direct)
    assert daemon.alive()


def test_non_utf8_config_bytes_are_read_alike(daemon, workdir, sd_netns):
    db = workdir / "state" / "ipam.db"
    conf = make_conf(db, dns={"domain": "pysd-domain"})
    raw = json.dumps(conf).encode().replace(b'"pysd-domain"', b'"pysd\xffdomain"')
    env = env_of("ADD", sd_netns)
    direct = run_verb(env, raw)
    assert direct[0] == 0 and "pysd\ufffddomain" in json.loads(direct[1])["dns"]["domain"]
    shutil.rmtree(db.parent)
    assert run_verb(env, raw, str(daemon.socket_path)) == direct
    assert leases(db) == [("198.18.0.2", "pysq-n1", "pysd-c1", "eth0")]
