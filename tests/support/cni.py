"""CNI test data shared across test folders: config builders (conflists,
test plugin configs, a bridge network on host-local) and readers of what
the plugins and the runtime leave on disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

# --- configs -------------------------------------------------------------------------------


def conflist(name: str, plugins: list[dict], version: str = "1.1.0", **extra: object) -> dict:
    doc: dict = {"cniVersion": version, "name": name, "plugins": plugins}
    doc.update(extra)
    return doc


def plugin(
    ptype: str = "testplugin", tag: str | None = None, log: Path | None = None, **extra: object
) -> dict:
    """A test plugin (support/testplugin.py) config object."""
    obj: dict = {"type": ptype}
    if tag:
        obj["tag"] = tag
    if log is not None:
        obj["log"] = str(log)
    obj.update(extra)
    return obj


def bridge_conflist(
    name: str,
    bridge: str,
    subnet: str,
    data_dir: Path | str,
    cni_version: str = "1.1.0",
    **ipam,
) -> dict:
    """A conflist of one gateway `bridge` plugin whose host-local IPAM (data in
    `data_dir`) hands out `subnet`; `ipam` adds keys to the IPAM config."""
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(data_dir),
                    "ranges": [[{"subnet": subnet}]],
                    **ipam,
                },
            }
        ],
    }


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


# --- what is left on disk ------------------------------------------------------------------


def reservations(data_dir: Path | str, network: str) -> list[str]:
    """The addresses host-local holds for `network` (file names in its store,
    sorted); [] when the store does not exist."""
    store = Path(data_dir) / network
    if not store.exists():
        return []
    return sorted(
        p.name
        for p in store.iterdir()
        if p.name != "lock" and not p.name.startswith("last_reserved")
    )


def read_log(path: Path) -> list[dict]:
    """The calls a test plugin logged (one JSON object per line)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cache_files(cache_dir: Path) -> list[str]:
    """The names of the runtime's cached results."""
    results = cache_dir / "results"
    if not results.is_dir():
        return []
    return sorted(p.name for p in results.iterdir())


def file_mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- a plugin network on host-local, for one test ------------------------------------------


class HostLocalNet:
    """One test's network of the plugin `PLUGIN` (a subclass sets it) with
    host-local IPAM in `data_dir`: runs it with `cni_path` (where host-local
    is) and reads back host-local's reservations. Subclasses build the
    plugin's configs (`conf`) with `host_local()` as their IPAM."""

    PLUGIN = ""

    def __init__(self, data_dir: Path, cni_path: list[str], name: str) -> None:
        import secrets

        self.data_dir = data_dir
        self.cni_path = cni_path
        self.name = f"{name}-{secrets.token_hex(3)}"

    def host_local(self, subnets, **extra: object) -> dict:
        return {
            "type": "host-local",
            "dataDir": str(self.data_dir),
            "ranges": [[{"subnet": s}] for s in subnets],
            **extra,
        }

    def runner(self, ct, ifname: str = "eth0", container_id: str | None = None, **kw):
        import secrets

        from pycni.skel.testing import PluginRunner

        return PluginRunner(
            self.PLUGIN,
            netns=ct.path if ct is not None else "",
            container_id=container_id or "ctr-" + secrets.token_hex(4),
            ifname=ifname,
            path=self.cni_path,
            **kw,
        )

    def run(self, command: str, conf, ct=None, **kw):
        from pycni.skel.testing import run_plugin

        kw.setdefault("path", self.cni_path)
        if ct is not None:
            kw.setdefault("netns", ct.path)
        return run_plugin(self.PLUGIN, command, conf, **kw)

    def reservations(self) -> list[str]:
        return reservations(self.data_dir, self.name)

    def add_in_process(self, verbs, ct, conf: dict, container_id: str, monkeypatch) -> None:
        """`verbs.cmd_add` in the test's process (so monkeypatched steps
        apply), with the environment skel would hand it; ifname eth0."""
        from pycni.skel import CmdArgs

        env = {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": ct.path,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": self.cni_path[0],
            "CNI_ARGS": "",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        verbs.cmd_add(CmdArgs.from_env(env, json.dumps(conf).encode()))
