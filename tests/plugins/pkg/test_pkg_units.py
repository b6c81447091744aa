"""The interface plugins' toolkit (pycni.plugins.pkg): veth names, the undo
stack, opening a container's netlink socket."""

from __future__ import annotations

import pytest

from pycni.plugins.pkg import netns, transaction, veth
from pycni.spec.errors import CNIError


def test_random_veth_name():
    names = {veth.random_veth_name() for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("veth") and len(n) == 12 and int(n[4:], 16) >= 0 for n in names)


def test_rollback_runs_in_reverse_and_survives_failures(capsys):
    done = []

    def fail():
        raise RuntimeError("boom")

    undo = transaction.Undo()
    undo.push("first", done.append, 1)
    undo.push("broken", fail)
    undo.push("third", done.append, 3)
    undo.run()
    assert done == [3, 1]
    assert "rollback: broken failed: boom" in capsys.readouterr().err
    undo.push("dropped", done.append, 9)
    undo.commit()
    undo.run()
    assert done == [3, 1]


def test_open_netlink_errors():
    with pytest.raises(netns.NetnsGone) as exc:
        netns.open_netlink("/run/netns/pyc-absent-ns")
    assert exc.value.code == 8
    with pytest.raises(CNIError) as exc:
        netns.open_netlink("/etc/hostname")
    assert exc.value.code == 8 and "/etc/hostname" in exc.value.msg
