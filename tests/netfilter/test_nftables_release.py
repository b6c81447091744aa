"""Closing a netfilter socket after deletions: the last reference goes to a
detached grandchild, so that the plugin does not wait for the kernel's RCU
grace period (pycni.netfilter.nftables._release_elsewhere).

Each case runs in a child process of the sandbox host netns that makes
itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): the orphaned
grandchild is then re-parented to it and can be waited for, which shows
that there was one, that it exits by itself, and that nothing else was
left behind.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import pycni
from pycni.netfilter import nftables as nft

SRC = pycni.__file__.rsplit("/pycni/", 1)[0]

PROLOGUE = f"""
import ctypes, os, sys, threading
sys.path.insert(0, {SRC!r})
from pycni.netfilter import nftables as nft
PR_SET_CHILD_SUBREAPER = 36
assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0

def table(delete):
    c = nft.Nft()
    b = c.batch()
    if delete:
        b.delete_table("inet", "pycrel")
    else:
        b.add_table("inet", "pycrel")
    b.commit()
    return c

def orphans():
    found = []
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return found
        found.append(os.waitstatus_to_exitcode(status))
"""


def run(body: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PROLOGUE + body], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.usefixtures("host_ns")
def test_a_deleting_socket_is_released_by_a_grandchild_that_exits_by_itself():
    out = run(
        """
table(False).close()
assert orphans() == []          # additions leave nothing to reclaim: a plain close
c = table(True)
fd = c._sock.fileno()
c.close()
try:
    os.fstat(fd)
    print("parent-still-holds-the-socket")
except OSError:
    pass
print("orphans", *orphans())
print("tables", len(nft.Nft().tables("inet")))
"""
    )
    assert out == ["orphans", "0", "tables", "0"]


@pytest.mark.usefixtures("host_ns")
def test_a_multi_threaded_process_closes_the_socket_itself():
    out = run(
        """
table(False).close()
stop = threading.Event()
t = threading.Thread(target=stop.wait)
t.start()
table(True).close()
stop.set()
t.join()
print("orphans", len(orphans()))
"""
    )
    assert out == ["orphans", "0"]


def test_only_deletions_mark_the_socket(monkeypatch):
    """What makes close() hand the socket off: a committed delete message."""
    sent: list[int] = []
    monkeypatch.setattr(nft.Nft, "__init__", lambda self: None)

    class Sock:
        def send(self, data):
            sent.append(len(data))

    c = nft.Nft()
    c._sock, c._seq, c._deleted = Sock(), 0, False  # type: ignore[assignment]
    monkeypatch.setattr(c, "_recv", lambda block: [])
    c.transact([(nft.NFT_MSG_NEWTABLE, 0, 1, b"", "add table")])
    assert not c._deleted
    c.transact([(nft.NFT_MSG_DELRULE, 0, 1, b"", "delete rule")])
    assert c._deleted and len(sent) == 2
