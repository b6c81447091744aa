"""Concurrent host-local processes on one store, and processes killed mid-ADD."""

from __future__ import annotations

import fcntl
import json
import os
import random
import subprocess
import time

from pycni.skel.testing import plugin_argv

from support.host_local import NET, PLUGIN, make_conf, reservations, store_files

TWO_SETS = [[{"subnet": "198.18.0.0/20"}], [{"subnet": "fd00::/116"}]]


def spawn(
    conf: dict, command: str, cid: str, netns: str, ifname: str = "eth0", extra: dict | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": "/nonexistent",
        **(extra or {}),
    }
    proc = subprocess.Popen(
        plugin_argv(PLUGIN),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    return proc


def finish(proc: subprocess.Popen) -> dict | None:
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0, (out, err)
    return json.loads(out) if out.strip() else None


def test_50_concurrent_adds_then_50_concurrent_dels(hl_netns, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "198.18.0.0/26"}], [{"subnet": "fd00::/122"}]])
    procs = [spawn(conf, "ADD", f"ctr{i}", hl_netns) for i in range(50)]
    results = [finish(p) for p in procs]
    v4 = [r["ips"][0]["address"] for r in results]
    v6 = [r["ips"][1]["address"] for r in results]
    assert len(set(v4)) == len(set(v6)) == 50
    files = reservations(data_dir)
    assert len(files) == 100
    assert sorted(set(files.values())) == sorted(f"ctr{i}\r\neth0".encode() for i in range(50))

    procs = [spawn(conf, "DEL", f"ctr{i}", hl_netns) for i in range(50)]
    for p in procs:
        assert finish(p) is None
    assert sorted(store_files(data_dir)) == ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]


def _kill_when_locked(proc: subprocess.Popen, lock_path: str) -> bool:
    """SIGKILL `proc` as soon as it is seen holding the store's flock (or a
    random moment later); False if it finished first."""
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        while proc.poll() is None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(random.uniform(0, 0.03))
                proc.kill()
                return True
            fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _check_store(data_dir, others: dict[str, bytes], victim: bytes) -> None:
    """Every address file is complete and owned; the victim holds at most one
    address per range set."""
    files = reservations(data_dir)
    for name, content in files.items():
        if name in others:
            assert content == others[name]
        else:
            assert content == victim, (name, content)
    mine = [n for n in files if n not in others]
    assert sum("." in n for n in mine) <= 1 and sum(":" in n for n in mine) <= 1, mine


def test_sigkill_during_add_leaves_a_cleanable_store(hl_netns, data_dir):
    conf = make_conf(data_dir, TWO_SETS)
    # Enough reservations by others that an ADD holds the lock for a while.
    net = data_dir / NET
    net.mkdir(parents=True)
    others = {f"198.18.{i // 250}.{i % 250 + 2}": f"other{i}\r\neth0".encode() for i in range(1500)}
    for name, content in others.items():
        (net / name).write_bytes(content)
    lock = str(net / "lock")
    finish(spawn(conf, "ADD", "warmup", hl_netns))
    finish(spawn(conf, "DEL", "warmup", hl_netns))

    locked_kills = 0
    for i in range(16):
        victim = f"victim{i}"
        proc = spawn(conf, "ADD", victim, hl_netns)
        if i % 4 == 3:  # some kills at any moment, locked or not
            time.sleep(random.uniform(0.0, 0.12))
            proc.kill()
        else:
            locked_kills += _kill_when_locked(proc, lock)
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
        _check_store(data_dir, others, f"{victim}\r\neth0".encode())
        if i % 2:
            finish(spawn(conf, "DEL", victim, hl_netns))
        else:
            gc = {
                **conf,
                "cniVersion": "1.1.0",
                "cni.dev/valid-attachments": [
                    {"containerID": f"other{n}", "ifname": "eth0"} for n in range(1500)
                ],
            }
            finish(spawn(gc, "GC", "", ""))
        names = set(os.listdir(net))
        assert not [n for n in names if n.startswith(".")], names
        assert reservations(data_dir) == others
    assert locked_kills >= 8

    # Nothing was lost: every other address is still free, exactly once.
    result = finish(spawn(conf, "ADD", "after", hl_netns))
    assert result["ips"][0]["address"] not in {f"{n}/20" for n in others}
    files = reservations(data_dir)
    assert len(files) == len(others) + 2
