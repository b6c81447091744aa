"""What the differential tests against the Go reference plugins (Debian's
1.1.1 build in /usr/lib/cni) share: which cniVersions to run, and how two
sides' outcomes are compared.

A config's kernel work does not depend on its cniVersion, only the result's
shape does (the conversion in pycni.spec.result): every case runs once at
the newest version 1.1.1 knows, and the older versions on the few cases
that exercise what the conversions change (IPv4 and IPv6 addresses, routes
and DNS, or none at all)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pytest

from support.bridge import diff

T = TypeVar("T")

GO_NEWEST = "1.0.0"
GO_OLDER = ("0.2.0", "0.3.1", "0.4.0")


def version_matrix(cases: Iterable[str], conversions: Iterable[str]) -> list:
    """pytest params (case, cniVersion): every case at GO_NEWEST, and the
    cases named in `conversions` at each older version too."""
    params = [pytest.param(case, GO_NEWEST, id=f"{case}-{GO_NEWEST}") for case in sorted(cases)]
    for case in conversions:
        params += [pytest.param(case, v, id=f"{case}-{v}") for v in GO_OLDER]
    return params


def compare(go: tuple, py: tuple) -> list[str]:
    """The problems between two (result, state after ADD, CHECK outcome or
    None, state after DEL) tuples; CHECK is compared by success only."""
    problems = diff(go[0], py[0], "result")
    problems += diff(go[1], py[1], "after ADD")
    problems += diff(go[3], py[3], "after DEL")
    if go[2] is not None and go[2].ok != py[2].ok:
        problems.append(f"CHECK: go={go[2]} py={py[2]}")
    return problems


def both(go_side: Callable[[], T], py_side: Callable[[], T]) -> tuple[T, T]:
    """Run the Go side in a second thread while this one runs pycni's, and
    return (go's, py's) outcome; an exception (a failed assert, a skip) of
    either side is raised here. Each side has its own namespaces and enters
    them per thread (support.sandbox.entered moves only the calling
    thread), and most of a side's time is waiting (plugin processes, the
    kernel's linkwatch and DAD), so the pair takes about as long as one."""
    import threading

    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(go_side())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="go-side")
    thread.start()
    try:
        py = py_side()
    finally:
        thread.join()
    if errors:
        raise errors[0]
    return results[0], py


def run_both(netns_factory, tmp_path, go: Path, py: str, cni_path: list[str], side) -> tuple:
    """(go's, py's) `side(name, plugin, cni_path, host, ct, data_dir)`: the Go
    plugin `go` (its own folder as CNI_PATH) and pycni's `py` (`cni_path`),
    each in fresh sandbox host and container namespaces with its own IPAM
    data dir, at once (both)."""
    calls = {}
    for name, plugin, path in (("go", str(go), [str(go.parent)]), ("py", py, cni_path)):
        host, ct = netns_factory("h" + name), netns_factory("c" + name)
        data = tmp_path / f"ipam-{name}"
        data.mkdir()
        calls[name] = functools.partial(side, name, plugin, path, host, ct, data)
    return both(calls["go"], calls["py"])


def normalize(result: dict | None, netns_path: str) -> dict | None:
    """A result with the container's netns path replaced and an empty "dns"
    dropped (Go 1.1.1 prints "dns": {} in 1.x results, newer libcni and
    pycni do not)."""
    import json

    if result is None:
        return None
    out = json.loads(json.dumps(result).replace(netns_path, "<netns>"))
    if out.get("dns") == {}:
        del out["dns"]
    return out
