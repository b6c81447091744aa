"""Shared fixtures: a sandbox "host" netns, container netns, temp CNI dirs.

Every kernel test runs with the test thread moved into a throwaway sandbox
host namespace, so plugins it executes never touch the real host.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))

from sandbox import Netns, entered, leaked_netns

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel: needs root and network namespaces")


@pytest.fixture
def netns_factory() -> Iterator:
    created: list[Netns] = []

    def make(tag: str = "ct") -> Netns:
        ns = Netns(tag)
        created.append(ns)
        return ns

    yield make
    for ns in reversed(created):
        ns.close()


@pytest.fixture
def host_ns(netns_factory) -> Iterator[Netns]:
    """A sandbox host netns that the test thread runs inside."""
    ns = netns_factory("host")
    with entered(ns):
        yield ns


@pytest.fixture
def container_ns(netns_factory) -> Netns:
    return netns_factory("ct")


@pytest.fixture
def cni_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    dirs = {k: tmp_path / k for k in ("conf", "cache", "data", "bin")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("NETCONFPATH", str(dirs["conf"]))
    return dirs


def _host_links() -> set[str]:
    import json
    import subprocess

    out = subprocess.run(["ip", "-json", "link", "show"], capture_output=True, text=True)
    return {link["ifname"] for link in json.loads(out.stdout or "[]")}


@pytest.fixture(scope="session", autouse=True)
def _no_leaked_namespaces() -> Iterator[None]:
    """The real host keeps its links, and no sandbox namespace outlives the run."""
    host_before = _host_links()
    yield
    added = _host_links() - host_before
    assert not added, f"tests created links in the real host namespace: {sorted(added)}"
    leaked = leaked_netns()
    assert not leaked, f"tests leaked network namespaces: {sorted(leaked)}"


@pytest.fixture(scope="session")
def gocnitool(tmp_path_factory) -> Path:
    """Our Go libcni driver (tests/interop/gocnitool), built once per session."""
    import gocni

    if why := gocni.missing():
        pytest.skip(why)
    return gocni.build(tmp_path_factory.mktemp("gocnitool"))
