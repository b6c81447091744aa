"""The fault-matrix machinery: run the runtime with a fault armed, read back
everything an attachment can leave, and compare it with a baseline.

Each runtime operation runs in a forked child of the test process (no extra
interpreter start-up), with PYCNI_FAULT_STEP / PYCNI_FAULT_TRACE set in that
child only (see pycni.faultpoint); plugins inherit them from the runtime. The
child may enter a private mount namespace first (the full-disk tests).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from pycni import faultpoint
from pycni.spec.errors import CNIError

from support.sandbox import Netns, ip

PREFIX = "pycflt"
CLONE_NEWNS = 0x00020000
PAGE = 4096

_libc = ctypes.CDLL(None, use_errno=True)


# --- running an operation in a forked child --------------------------------------------


class Outcome:
    """How a forked operation ended: "ok", "cni-error" (a CNIError), "error"
    (any other exception) or "killed" (the child itself got SIGKILL)."""

    __slots__ = ("message", "status")

    def __init__(self, status: str, message: str = "") -> None:
        self.status = status
        self.message = message

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        return f"Outcome({self.status}: {self.message})"


def forked(fn: Callable[[], object], env: dict | None = None, mntns: int | None = None) -> Outcome:
    """Run fn() in a forked child: in the mount namespace of process `mntns`
    if given, with `env` added to its environment and faultpoint re-read."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(r)
            if mntns is not None:
                fd = os.open(f"/proc/{mntns}/ns/mnt", os.O_RDONLY)
                if _libc.setns(fd, CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "setns(mnt)")
                os.close(fd)
            os.environ.update(env or {})
            faultpoint.load()
            try:
                fn()
                out = {"status": "ok"}
            except CNIError as err:
                out = {"status": "cni-error", "message": str(err)}
            except BaseException as err:
                out = {"status": "error", "message": f"{type(err).__name__}: {err}"}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Outcome("killed", f"signal {os.WTERMSIG(status)}")
    if not data:
        return Outcome("error", f"child ended without an answer (status {status})")
    return Outcome(**json.loads(data))


# --- what an attachment can leave behind ------------------------------------------------

_STATE_SCRIPT = r"""
ct="$1"
for fam in 4 6; do
  echo "@@host-routes$fam"; ip -j -$fam route show table all
  echo "@@host-rules$fam"; ip -j -$fam rule show
  echo "@@ct-routes$fam"; ip -n "$ct" -j -$fam route show table all
  echo "@@ct-rules$fam"; ip -n "$ct" -j -$fam rule show
done
echo "@@host-links"; ip -j -d link show
echo "@@host-addrs"; ip -j addr show
echo "@@ct-links"; ip -n "$ct" -j -d link show
echo "@@ct-addrs"; ip -n "$ct" -j addr show
echo "@@iptables"; iptables-save -t nat
echo "@@ip6tables"; ip6tables-save -t nat
echo "@@nft"; nft -s list ruleset
"""


def kernel_state(ct_name: str, skip_dev: str | None = None) -> dict[str, set]:
    """Links, addresses, routes, rules of the host netns the calling thread
    is in and of netns `ct_name`, and the host's nat/nftables rules, as sets
    of comparable items (volatile fields such as carrier and counters left
    out, and the link, addresses and routes of device `skip_dev`)."""
    out = subprocess.run(
        ["sh", "-c", _STATE_SCRIPT, "sh", ct_name], capture_output=True, text=True, check=True
    ).stdout
    sections: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@@"):
            current = line[2:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    state: dict[str, set] = {}
    for key, lines in sections.items():
        text = "\n".join(lines)
        if key.endswith("links"):
            state[key] = {_link(x) for x in _json(text) if x["ifname"] != skip_dev}
        elif key.endswith("addrs"):
            state[key] = {
                f"{x['ifname']} {a['local']}/{a['prefixlen']}"
                for x in _json(text)
                for a in x.get("addr_info", [])
                if x["ifname"] != skip_dev
            }
        elif "routes" in key:
            # the local table follows the addresses (and a bridge's carrier)
            state[key] = {
                _entry(x)
                for x in _json(text)
                if x.get("table") != "local" and x.get("dev") != skip_dev
            }
        elif "rules" in key:
            state[key] = {_entry(x) for x in _json(text)}
        elif key in ("iptables", "ip6tables"):
            state[key] = {
                line.split(" [", 1)[0]
                for line in lines
                if line and not line.startswith(("#", "COMMIT", "*"))
            }
        else:
            state[key] = _nft_items(lines)
    return state


def _nft_items(lines: list[str]) -> set[str]:
    """`nft -s list ruleset` lines, each prefixed with its table and chain."""
    table = chain = ""
    out = set()
    for raw in lines:
        line = raw.strip()
        if line.startswith("table "):
            table, chain = line.rstrip(" {"), ""
        elif line.startswith("chain "):
            chain = line.rstrip(" {")
        elif line and line != "}":
            out.add(f"{table} / {chain} / {line}")
            continue
        if line.startswith(("table ", "chain ")):
            out.add(f"{table} / {chain}")
    return out


def _json(text: str) -> list:
    return json.loads(text) if text.strip() else []


def _link(x: dict) -> str:
    info = x.get("linkinfo", {})
    up = "UP" in x.get("flags", [])
    return f"{x['ifname']} kind={info.get('info_kind')} master={x.get('master')} up={up}"


_VOLATILE = ("flags", "expires", "cacheinfo")


def _entry(x: dict) -> str:
    return json.dumps({k: v for k, v in x.items() if k not in _VOLATILE}, sort_keys=True)


def files_state(root: str | Path) -> set[str]:
    """Every path under `root` (relative), directories marked with a "/"."""
    root = str(root)
    if not os.path.isdir(root):
        return {"<no such directory>"}
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out.add(os.path.normpath(os.path.join(rel, d)) + "/")
        for f in filenames:
            out.add(os.path.normpath(os.path.join(rel, f)))
    return out


def diff(before: dict[str, set], after: dict[str, set]) -> list[str]:
    """What `after` has that `before` lacks (+) and the reverse (-), per section."""
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key, set()), after.get(key, set())
        out += [f"{key}: + {item}" for item in sorted(a - b)]
        out += [f"{key}: - {item}" for item in sorted(b - a)]
    return out


# --- a full disk ---------------------------------------------------------------------------


class PrivateTmpfs:
    """A tmpfs at `path` that exists only in the private mount namespace of a
    holder process: it vanishes with the holder (closed in teardown, or when
    the test process dies: the holder waits on a pipe from it). Operations
    enter it with `forked(..., mntns=holder.pid)`; the test reads and writes
    it through `holder.view` (/proc/<pid>/root<path>)."""

    def __init__(self, path: Path, options: str = "size=64k") -> None:
        self.path = path
        script = 'mount -t tmpfs -o "$1",mode=0755 pycflt "$2" && echo ready && read _'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
        self.proc = subprocess.Popen(
            [*argv, options, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        if self.proc.stdout.readline().strip() != b"ready":
            self.close()
            raise RuntimeError("could not mount a tmpfs in a private mount namespace")
        self.pid = self.proc.pid
        self.view = Path(f"/proc/{self.pid}/root{path}")
        self._fillers: list[Path] = []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def unfill(self) -> None:
        for path in self._fillers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._fillers = []

    def fill(self, free: int, what: str = "pages") -> None:
        """Leave exactly `free` pages (what="pages": one filler file takes
        the rest) or inodes (what="inodes": empty filler files take the rest)."""
        self.unfill()
        if what == "pages":
            filler = self.view / ".filler"
            self._fillers.append(filler)
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                pages = 0
                while True:
                    try:
                        os.write(fd, b"\0" * PAGE)
                    except OSError:
                        break
                    pages += 1
                os.ftruncate(fd, max(0, pages - free) * PAGE)
            finally:
                os.close(fd)
            left = os.statvfs(self.view).f_bavail
        else:
            while True:
                filler = self.view / f".filler-{len(self._fillers)}"
                try:
                    os.close(os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600))
                except OSError:
                    break
                self._fillers.append(filler)
            for path in self._fillers[:free]:
                path.unlink()
            del self._fillers[:free]
            left = os.statvfs(self.view).f_favail
        assert left == free, f"the tmpfs has {left} free {what}, not {free}"


@contextlib.contextmanager
def private_tmpfs(path: Path, options: str = "size=64k") -> Iterator[PrivateTmpfs]:
    path.mkdir(parents=True, exist_ok=True)
    disk = PrivateTmpfs(path, options)
    try:
        yield disk
    finally:
        disk.close()


# --- one attachment, driven through the runtime ------------------------------------------


class Attachment:
    """One network list, one container netns, one pycni runtime (CNIConfig
    with its cache in `cache_dir`): ADD, DEL, a plain DEL, GC and the state
    they leave. With `disk`, every operation runs in its mount namespace and
    `data_dir`/`cache_dir` are paths inside it."""

    def __init__(
        self,
        conflist: dict,
        ct: Netns,
        bindir: Path,
        cache_dir: Path,
        data_dir: Path | None,
        tmp: Path,
        disk: PrivateTmpfs | None = None,
        ifname: str = "eth0",
        bridge: str | None = None,
        capability_args: dict | None = None,
        extra_state: Callable[[], dict[str, set]] | None = None,
    ) -> None:
        from pycni.runtime import CNIConfig, RuntimeConf, network_conf_from_bytes

        self.net = network_conf_from_bytes(json.dumps(conflist).encode())
        self.cni = CNIConfig(path=[str(bindir)], cache_dir=str(cache_dir), timeout=30)
        self.rt = RuntimeConf(
            f"{PREFIX}-{secrets.token_hex(4)}", ct.path, ifname, capability_args=capability_args
        )
        self.ct = ct
        self.bridge = bridge
        self.bindir = bindir
        self.tmp = tmp
        self.mntns = disk.pid if disk is not None else None
        view = (lambda p: disk.view / p.relative_to(disk.path)) if disk else Path
        self.roots = {"cache": view(cache_dir)}
        if data_dir is not None:
            self.roots["data"] = view(data_dir)
        self._traces = 0
        self.extra_state = extra_state  # what file names do not show (database rows)

    @property
    def cache_file(self) -> str:
        return f"results/{self.net.name}-{self.rt.container_id}-{self.rt.ifname}"

    @property
    def ctr_lock(self) -> str:
        return f"locks/ctr-{self.rt.container_id}.lock"

    def _env(self, fault: str | None, trace: Path | None) -> dict:
        env = {"PYCNI_FAULT_STEP": fault or "", "PYCNI_FAULT_TRACE": str(trace or "")}
        return env

    def add(self, fault: str | None = None, trace: Path | None = None) -> Outcome:
        return forked(
            lambda: self.cni.add_network_list(self.net, self.rt),
            self._env(fault, trace),
            self.mntns,
        )

    def delete(self, fault: str | None = None, trace: Path | None = None) -> Outcome:
        return forked(
            lambda: self.cni.del_network_list(self.net, self.rt),
            self._env(fault, trace),
            self.mntns,
        )

    def run(self, op: str, fault: str | None = None, trace: Path | None = None) -> Outcome:
        return (self.add if op == "ADD" else self.delete)(fault, trace)

    def plain_del(self) -> Outcome:
        """DEL of each plugin, executed directly without prevResult (a runtime
        that kept no cache); the runtime's cache and locks are not touched."""
        from pycni import invoke
        from pycni.spec.config import build_request

        def run() -> None:
            for plugin in reversed(self.net.plugins):
                env = invoke.plugin_env(
                    "DEL", self.rt.container_id, self.rt.netns, [], self.rt.ifname, str(self.bindir)
                )
                request = build_request(plugin, self.net)
                invoke.exec_plugin(str(self.bindir / plugin.type), request, env, 30)

        return forked(run, self._env(None, None), self.mntns)

    def gc(self, valid: list[tuple[str, str]]) -> Outcome:
        return forked(lambda: self.cni.gc_network_list(self.net, valid), None, self.mntns)

    def trace(self, op: str) -> list[str]:
        """The steps a clean `op` passes, in order (the operation must succeed)."""
        self._traces += 1
        path = self.tmp / f"trace-{op}-{self._traces}"
        out = self.run(op, trace=path)
        assert out.ok, f"clean {op} failed: {out}"
        return read_trace(path)

    def warm_up(self, trace: bool = False) -> tuple[list[str], list[str]]:
        """A clean ADD and DEL (traced if asked: their steps are returned),
        then a new container ID for the attachment. What that DEL leaves is
        the baseline; a leak the DEL always makes is not hidden in it, since
        the attachment's next one carries another ID."""
        if trace:
            steps = self.trace("ADD"), self.trace("DEL")
        else:
            add, delete = self.add(), self.delete()
            assert add.ok and delete.ok, f"clean ADD, DEL: {add}, {delete}"
            steps = [], []
        self.rt = self.rt.copy(container_id=f"{PREFIX}-{secrets.token_hex(4)}")
        missing = [str(p) for p in self.roots.values() if not p.is_dir()]
        assert not missing, f"state is read from directories that do not exist: {missing}"
        return steps

    def remove_bridge(self) -> None:
        """Delete the bridge, so that the next ADD creates it again."""
        if self.bridge is not None:
            ip("link", "del", self.bridge, check=False)

    def state(self, kernel: bool = True, files=("cache", "data")) -> dict[str, set]:
        """kernel_state() and the files under the cache and data dirs. The
        bridge itself (its link, addresses and routes) is left out: no DEL
        removes it, and an ADD killed early leaves it half set up."""
        out = kernel_state(self.ct.name, self.bridge) if kernel else {}
        for key in files:
            if key in self.roots:
                out["files:" + key] = files_state(self.roots[key])
        if self.extra_state is not None:
            out.update(self.extra_state())
        return out


def read_trace(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def occurrences(steps: list[str]) -> list[tuple[str, int]]:
    """(PYCNI_FAULT_STEP value, index in `steps`) for every step passed:
    `name#n` is the n-th time `name` is reached."""
    seen: dict[str, int] = {}
    out = []
    for index, name in enumerate(steps):
        seen[name] = seen.get(name, 0) + 1
        out.append((f"{name}#{seen[name]}", index))
    return out
