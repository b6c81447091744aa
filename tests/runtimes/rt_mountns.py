"""A private mount namespace that hides the host's runtime and CNI paths.

podman 4.3's CNI backend and `ctr run --cni` (go-cni) use fixed paths that
no option moves: libcni's cache /var/lib/cni (results) and host-local's
default store /var/lib/cni/networks; for ctr also the config dir
/etc/cni/net.d and the plugin dir /opt/cni/bin; containerd's shims use
/run/containerd/s; podman keeps its netns files in /run/netns, its lock in
/dev/shm and an image cache in /var/lib/containers. Instead of touching the
host's copies, the runtime runs inside a private mount namespace where each
of these paths is a temp dir of the test:

- /run and /dev/shm: fresh tmpfs;
- /sys: a sysfs of the sandbox netns (the host's shows the host's links),
  with the host's cgroup mounts moved over (runc needs them);
- every `masks` entry: the temp dir bind-mounted on the path; a path that
  does not exist on the host is made inside an overlay of its nearest
  existing parent, so the host's tree gets no new directory.

The namespace is held by one sleeping process (`unshare` then exec
`sleep`); commands enter it with `nsenter --mount`, and inherit the netns of
the calling thread (the sandbox host netns). Nothing propagates out: the
namespace is private, and goes away with its last process.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

READY = "rt-mountns-ready"
#: never overlaid to make a missing path (the namespace needs them as they are)
UNTOUCHABLE = frozenset(map(Path, ("/", "/run", "/sys", "/dev", "/proc", "/tmp")))


def _nearest_existing(path: Path) -> Path:
    parent = path
    while not parent.exists():
        parent = parent.parent
    return parent


def setup_script(work: Path, masks: Mapping[str, Path]) -> str:
    """The shell script that builds the namespace's mounts, then holds it."""
    q = shlex.quote
    lines = [
        "set -e",
        "mount -t tmpfs -o mode=0755 rt-run /run",
        "mount -t tmpfs -o mode=1777 rt-shm /dev/shm",
        f"mkdir -p {q(str(work / 'cgroup'))}",
        f"mount --rbind /sys/fs/cgroup {q(str(work / 'cgroup'))}",
        "mount -t sysfs rt-sys /sys",
        f"mount --move {q(str(work / 'cgroup'))} /sys/fs/cgroup",
    ]
    # overlays first (a bind made before would be covered by a later overlay
    # of its parent), outermost first; then the binds
    parents = sorted({_nearest_existing(Path(t)) for t in masks if not Path(t).is_dir()})
    for n, parent in enumerate(parents):
        if parent in UNTOUCHABLE:
            raise ValueError(f"will not overlay {parent}")
        upper, wdir = work / f"overlay{n}" / "upper", work / f"overlay{n}" / "work"
        lines += [
            f"mkdir -p {q(str(upper))} {q(str(wdir))}",
            f"mount -t overlay rt-overlay -o lowerdir={q(str(parent))},"
            f"upperdir={q(str(upper))},workdir={q(str(wdir))} {q(str(parent))}",
        ]
    for target, source in sorted(masks.items()):
        lines.append(f"mkdir -p {q(target)}")
        lines.append(f"mount --bind {q(str(source))} {q(target)}")
    lines += [f"echo {READY}", "exec sleep 2147483647"]
    return "\n".join(lines)


class MountNamespace:
    """The private mount namespace of one test; close() ends it. Make it
    from a thread inside the sandbox netns: its /sys is that netns's (in
    the host netns, mounting a second sysfs on /sys fails)."""

    def __init__(self, work: Path, masks: Mapping[str, Path], timeout: float = 20) -> None:
        work.mkdir(parents=True, exist_ok=True)
        for source in masks.values():
            Path(source).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                setup_script(work, masks),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if ready else ""
        if line != READY:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.close()
            raise RuntimeError(f"mount namespace setup failed: {line!r} {err.strip()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def argv(self, argv: Sequence[str]) -> list[str]:
        """argv run inside the namespace (and in the caller's netns)."""
        return ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", "--", *argv]

    def run(
        self, argv: Sequence[str], timeout: float = 60, check: bool = True, **kw
    ) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        proc = subprocess.run(self.argv(argv), timeout=timeout, text=True, **kw)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(argv), **kw)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
