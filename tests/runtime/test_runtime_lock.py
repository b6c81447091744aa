"""pycni.runtime.lock: the GC readers/writer lock and the container lock."""

from __future__ import annotations

import os
import threading
import time

import pytest

from pycni.runtime import lock
from pycni.spec.errors import CNIError

from support.cni import file_mode


def _in_thread(fn):
    done = threading.Event()

    def run():
        fn()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


def test_exclusive_locks_exclude_each_other(tmp_path):
    first = lock.container_lock(str(tmp_path), "c1")
    assert first.acquire()
    second = lock.container_lock(str(tmp_path), "c1")
    t, done = _in_thread(second.acquire)
    assert not done.wait(0.3)
    first.release()
    assert done.wait(5)
    assert second.held
    second.release()
    t.join()
    assert file_mode(tmp_path / "locks") == 0o700
    assert file_mode(tmp_path / "locks" / "ctr-c1.lock") == 0o600


def test_other_containers_are_independent(tmp_path):
    with lock.container_lock(str(tmp_path), "c1"):
        other = lock.container_lock(str(tmp_path), "c2")
        assert other.acquire()
        other.release()


def test_gc_lock_is_readers_writer(tmp_path):
    readers = [lock.gc_lock(str(tmp_path), exclusive=False) for _ in range(3)]
    for r in readers:
        assert r.acquire()  # shared holders coexist
    writer = lock.gc_lock(str(tmp_path), exclusive=True)
    t, done = _in_thread(writer.acquire)
    assert not done.wait(0.3)
    for r in readers[:-1]:
        r.release()
    assert not done.wait(0.2)
    readers[-1].release()
    assert done.wait(5)
    late_reader = lock.gc_lock(str(tmp_path), exclusive=False)
    t2, done2 = _in_thread(late_reader.acquire)
    assert not done2.wait(0.3)  # no reader while the writer holds it
    writer.release()
    assert done2.wait(5)
    late_reader.release()
    t.join()
    t2.join()


def test_removing_a_held_lock_file_lets_no_second_holder_in(tmp_path):
    holder = lock.container_lock(str(tmp_path), "c1")
    holder.acquire()
    waiter = lock.container_lock(str(tmp_path), "c1")
    t, done = _in_thread(waiter.acquire)
    assert not done.wait(0.2)
    holder.release(remove=True)  # DEL succeeded: the file goes away
    assert done.wait(5)
    # the waiter re-locked a fresh file at the path, so a newcomer must wait
    newcomer = lock.container_lock(str(tmp_path), "c1")
    t2, done2 = _in_thread(newcomer.acquire)
    assert not done2.wait(0.3)
    waiter.release()
    assert done2.wait(5)
    newcomer.release()
    t.join()
    t2.join()


def test_operation_lock_order_and_release(tmp_path):
    op = lock.OperationLock(str(tmp_path), "c1")
    with op:
        gc = lock.gc_lock(str(tmp_path), exclusive=True)
        t, done = _in_thread(gc.acquire)
        assert not done.wait(0.2)
        op.remove_container_lock()
    assert done.wait(5)
    gc.release()
    t.join()
    assert not (tmp_path / "locks" / "ctr-c1.lock").exists()
    assert (tmp_path / "locks" / "gc.lock").exists()


def test_locks_across_processes(tmp_path):
    held = lock.container_lock(str(tmp_path), "c1")
    held.acquire()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(held.fd)  # the inherited descriptor shares the parent's lock
            other = lock.container_lock(str(tmp_path), "c1")
            start = time.monotonic()
            other.acquire()
            code = 0 if time.monotonic() - start > 0.3 else 2
        finally:
            os._exit(code)
    time.sleep(0.5)
    held.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_unwritable_lock_dir_runs_unlocked(tmp_path, monkeypatch):
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    lk = lock.container_lock(str(tmp_path), "c1")
    assert lk.acquire() is False
    assert not lk.held
    lk.release()  # harmless
    with lock.OperationLock(str(tmp_path), "c1"):
        pass


def test_other_errors_are_raised(tmp_path):
    (tmp_path / "locks").write_text("a file where the directory should be")
    with pytest.raises(CNIError, match=f"^{tmp_path / 'locks'} is not a directory$"):
        lock.container_lock(str(tmp_path), "c1").acquire()


@pytest.mark.parametrize("cid", ["a\0b", "x" * 300, "../../etc/x", "a/b"])
def test_any_container_id_gives_a_lock_in_the_lock_dir(tmp_path, cid):
    """DEL and CHECK take any container ID: a NUL, a '/' or an over-long
    ID must neither fail the operation nor leave the lock directory."""
    held = lock.container_lock(str(tmp_path), cid)
    assert os.path.dirname(held.path) == str(tmp_path / "locks")
    with held:
        assert held.held
    if "/" in cid:  # no collision with the ID that has "_" instead
        assert lock.container_lock(str(tmp_path), cid.replace("/", "_")).path != held.path
