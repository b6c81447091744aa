"""pycni.kernel.netns against the real kernel, inside sandbox namespaces."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading

import pytest

from pycni.kernel import netns
from pycni.kernel.netlink import RtNetlink

from support import sandbox


def _ino(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_open_netns_ok_and_errors(root, container_ns, tmp_path):
    fd = netns.open_netns(container_ns.path)
    try:
        assert os.fstat(fd).st_ino == os.stat(container_ns.path).st_ino
    finally:
        os.close(fd)
    # a /proc ns link works too
    fd = netns.open_netns("/proc/thread-self/ns/net")
    os.close(fd)

    missing = tmp_path / "nope"
    with pytest.raises(netns.NetnsNotFound) as ei:
        netns.open_netns(missing)
    assert isinstance(ei.value, FileNotFoundError)

    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(netns.NotANetns):
        netns.open_netns(regular)
    with pytest.raises(netns.NotANetns):
        netns.open_netns("/proc/self/ns/mnt")  # a namespace, but not a network one


def test_enter_and_restore(root, host_ns, container_ns):
    before = netns.current_netns_id()
    assert before == _ino(host_ns.path)
    with netns.enter(container_ns.path):
        assert netns.current_netns_id() == _ino(container_ns.path)
        assert netns.same_netns(container_ns.path)
        assert not netns.same_netns(host_ns.path)
        # a process spawned now lands in the container netns
        out = subprocess.run(
            ["readlink", "/proc/self/ns/net"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == f"net:[{_ino(container_ns.path)[1]}]"
    assert netns.current_netns_id() == before
    assert netns.same_netns(host_ns.path)


def test_enter_restores_when_body_raises(root, host_ns, container_ns):
    before = netns.current_netns_id()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), netns.enter(container_ns.path):
        assert netns.same_netns(container_ns.path)
        raise Boom
    assert netns.current_netns_id() == before


def test_enter_nested_and_by_fd(root, host_ns, netns_factory):
    a, b = netns_factory("a"), netns_factory("b")
    fd = netns.open_netns(b.path)
    try:
        with netns.enter(a.path):
            with netns.enter(fd):
                assert netns.same_netns(b.path)
            assert netns.same_netns(a.path)
        assert netns.same_netns(host_ns.path)
        os.fstat(fd)  # the caller's fd is not closed by enter()
    finally:
        os.close(fd)


def test_enter_missing_path_does_not_move(root, host_ns, tmp_path):
    before = netns.current_netns_id()
    with pytest.raises(netns.NetnsNotFound), netns.enter(tmp_path / "missing"):
        pass
    assert netns.current_netns_id() == before


def test_enter_new_threads_inherit_then_caller_restored(root, host_ns, container_ns):
    seen = {}

    def other():
        seen["other"] = netns.current_netns_id()

    with netns.enter(container_ns.path):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    # a thread started by the test thread inherits its netns at creation
    assert seen["other"] == _ino(container_ns.path)
    assert netns.current_netns_id() == _ino(host_ns.path)


def test_rtnetlink_in_other_netns(root, host_ns, container_ns, ifname):
    name = ifname("ns")
    with RtNetlink(netns=container_ns.path) as nl:
        nl.link_add_veth(name, name + "p")
        assert {link.name for link in nl.link_list()} == {"lo", name, name + "p"}
    # created in the container netns, not in the caller's
    assert netns.same_netns(host_ns.path)
    names = {x["ifname"] for x in sandbox.ip_json("link", "show", netns=container_ns.name)}
    assert name in names
    assert name not in {x["ifname"] for x in sandbox.ip_json("link", "show", netns=host_ns.name)}
    # an fd works as well
    fd = netns.open_netns(container_ns.path)
    try:
        with RtNetlink(netns=fd) as nl:
            assert nl.link_get(name).kind == "veth"
    finally:
        os.close(fd)


def test_create_and_delete_named(root, host_ns):
    name = sandbox.unique_name("cn")
    path = netns.create_named(name)
    try:
        assert path == f"/run/netns/{name}"
        assert sandbox.netns_exists(name)
        fd = netns.open_netns(path)
        os.close(fd)
        # a fresh, empty netns: only lo, and not the caller's
        assert not netns.same_netns(path)
        links = sandbox.ip_json("link", "show", netns=name)
        assert [x["ifname"] for x in links] == ["lo"]
        with RtNetlink(netns=path) as nl:
            assert [link.name for link in nl.link_list()] == ["lo"]
        # creating it again fails and leaves the existing one alone
        with pytest.raises(FileExistsError):
            netns.create_named(name)
        assert sandbox.ip_json("link", "show", netns=name)
    finally:
        netns.delete_named(name)
    assert not sandbox.netns_exists(name)
    assert not os.path.exists(path)
    netns.delete_named(name)  # missing is fine


def test_create_named_fails_cleanly(root, tmp_path):
    with pytest.raises(ValueError):
        netns.create_named("a/b")
    # run_dir is a regular file -> makedirs fails; nothing is left behind
    bad = tmp_path / "file"
    bad.write_text("")
    with pytest.raises(OSError):
        netns.create_named("x", run_dir=str(bad))
    assert bad.read_text() == ""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare missing")
def test_create_named_custom_run_dir(root, tmp_path):
    """A run_dir that is not a mount point is bind-mounted onto itself and made
    shared, as `ip netns add` does.  Runs in a private mount namespace so the
    mounts vanish with the helper process."""
    run_dir = tmp_path / "netns"
    src = os.path.dirname(os.path.dirname(os.path.dirname(netns.__file__)))
    script = f"""
import os, sys
sys.path.insert(0, {src!r})
from pycni.kernel import netns
p = netns.create_named("one", run_dir={str(run_dir)!r})
assert p == {str(run_dir / "one")!r}
mounts = open("/proc/self/mountinfo").read()
assert " {run_dir} " in mounts and " {run_dir}/one " in mounts, mounts
fd = netns.open_netns(p); os.close(fd)
assert not netns.same_netns(p)
netns.delete_named("one", run_dir={str(run_dir)!r})
assert not os.path.exists(p)
assert " {run_dir}/one " not in open("/proc/self/mountinfo").read()
print("ok")
"""
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", script],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_setns_failure_reports_errno(tmp_path):
    regular = tmp_path / "not-a-netns"
    regular.write_text("")
    fd = os.open(regular, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as err:
            netns.setns(fd)
        assert err.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_entering_a_netns_does_not_import_ctypes(host_ns, container_ns):
    code = (
        "import sys\nfrom pycni.kernel import netns\n"
        f"with netns.enter({container_ns.path!r}):\n    pass\n"
        "print('ctypes' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
