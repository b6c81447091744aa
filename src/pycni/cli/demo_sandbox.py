"""What both demos stand on: a throwaway sandbox and how results are printed."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

from pycni.cli.main import Failure


class DemoFailed(Failure):
    """The demo's own check failed: "pycni: demo failed: <what>", exit 1."""


def say(line: str = "") -> None:
    from pycni.cli.main import out

    out(line + "\n")


class Sandbox:
    """Namespaces and directories the demo creates, all removed by close()."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.tmp = Path(tempfile.mkdtemp(prefix="pycni-demo-"))
        self.namespaces: list[str] = []
        self.host = ""

    def new_netns(self, role: str) -> str:
        from pycni.kernel import netns

        name = f"pycni-demo-{role}-{self.tag}"
        self.namespaces.append(name)  # first: an interrupted create is removed too
        return netns.create_named(name)

    def close(self) -> None:
        from pycni.kernel import netns

        for name in reversed(self.namespaces):
            netns.delete_named(name)
        shutil.rmtree(self.tmp, ignore_errors=True)


def host_link_names() -> list[str]:
    from pycni.kernel.netlink import RtNetlink

    with RtNetlink() as nl:
        return sorted(link.name for link in nl.link_list())


def ms(start: float) -> str:
    return f"{(time.monotonic() - start) * 1000:.0f} ms"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)
