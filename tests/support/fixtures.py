"""The suite's pytest plugin (tests/conftest.py loads it): sandbox
namespaces, temp CNI dirs, plugin dirs, the Go libcni driver, the leak
check, and the `kernel` marker.

Every kernel test runs with the test thread moved into a throwaway sandbox
host namespace (`host_ns`), so plugins it executes never touch the real host.

A test is marked `kernel` (needs root and network namespaces) when it uses
one of KERNEL_FIXTURES, directly or through another fixture; a test that
needs root some other way (it runs `ip`, `nft` or makes namespaces itself)
carries an explicit `@pytest.mark.kernel`. `pytest -m "not kernel"` (make
test-unit) is the rest, which runs as any user.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.plugin_dirs import install_launchers, install_plugins
from support.sandbox import Netns, NetnsFactory, entered, leaked_netns

#: fixtures that need root: a test using any of them, even through another
#: fixture (item.fixturenames is the whole closure), is marked `kernel`
KERNEL_FIXTURES = frozenset(
    {"root", "netns_factory", "host_ns", "container_ns", "session_netns_factory", "gocnitool"}
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `kernel` before `-m` deselects (the mark plugin's own hook)."""
    for item in items:
        if KERNEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kernel)


# --- namespaces ----------------------------------------------------------------------------


@pytest.fixture
def root() -> None:
    """Skip unless root (a test that needs root but no namespace fixture)."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")


@pytest.fixture
def netns_options() -> dict:
    """Keyword arguments of the Netns that netns_factory makes (prefix,
    lo_up); a folder's conftest.py overrides this to name its own."""
    return {}


@pytest.fixture
def netns_factory(netns_options: dict) -> Iterator[NetnsFactory]:
    """netns_factory(tag="ct") -> a new Netns, removed after the test."""
    factory = NetnsFactory(**netns_options)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def session_netns_factory() -> Iterator[NetnsFactory]:
    """Like netns_factory, for namespaces that last the whole session."""
    factory = NetnsFactory()
    yield factory
    factory.close()


@pytest.fixture
def host_ns(netns_factory) -> Iterator[Netns]:
    """A sandbox host netns that the test thread runs inside."""
    ns = netns_factory("host")
    with entered(ns):
        yield ns


@pytest.fixture
def container_ns(netns_factory) -> Netns:
    return netns_factory("ct")


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


# --- CNI dirs and plugin dirs ----------------------------------------------------------------


@pytest.fixture
def cni_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    dirs = {k: tmp_path / k for k in ("conf", "cache", "data", "bin")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("NETCONFPATH", str(dirs["conf"]))
    return dirs


@pytest.fixture
def plugin_dir(cni_dirs) -> Path:
    """cni_dirs["bin"] with the test plugin (support/testplugin.py)
    installed under its type names."""
    return install_plugins(cni_dirs["bin"])


@pytest.fixture
def launcher_dir(tmp_path: Path) -> Path:
    """tmp_path/bin with a launcher of every pycni plugin of this checkout,
    on this interpreter (so bridge runs host-local in-process)."""
    return install_launchers(tmp_path / "bin")


@pytest.fixture(scope="session")
def gocnitool(tmp_path_factory) -> Path:
    """Our Go libcni driver (tests/interop/gocnitool), built once per session."""
    import gocni

    if why := gocni.missing():
        pytest.skip(why)
    return gocni.build(tmp_path_factory.mktemp("gocnitool"))
