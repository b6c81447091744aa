"""What the static IPAM tests share: the plugin and its Go counterpart."""

from __future__ import annotations

from pathlib import Path

PLUGIN = "pycni.plugins.ipam.static"
GO_STATIC = Path("/usr/lib/cni/static")
