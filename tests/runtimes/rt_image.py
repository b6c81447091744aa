"""A container image made here, since no registry is reachable: Debian's
static busybox (package busybox-static) with a symlink per applet.

`rootfs_tar` is a plain root filesystem tarball (what `podman import`
takes); `oci_archive` wraps it as an OCI image layout tarball (oci-layout,
index.json, manifest, config and one gzip layer, what `ctr image import`
takes). Both are built with tarfile, byte for byte reproducible.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
#: what the test containers serve, at /www/index.html
INDEX = b"hello from a pycni runtime test\n"
#: the name the OCI archive carries (containerd keeps it as the image name)
OCI_NAME = "localhost/rt-busybox:latest"
#: the OCI architecture of this machine (busybox is the host's binary)
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def busybox_missing() -> str | None:
    """Why the image cannot be built here, or None."""
    if not BUSYBOX.is_file():
        return "no /bin/busybox (Debian package busybox-static)"
    probe = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True)
    if probe.returncode != 0 or "httpd" not in probe.stdout.split():
        return "/bin/busybox has no httpd applet (need Debian's busybox-static)"
    return None


def _add(tar: tarfile.TarFile, name: str, kind: bytes, *, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 0
    info.mode = attrs.pop("mode", 0o755)
    for key, value in attrs.items():
        setattr(info, key, value)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def rootfs_tar(dest: Path) -> Path:
    """Write the busybox root filesystem tarball to dest."""
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "www", "run", "var"):
            _add(tar, d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", tarfile.REGTYPE, data=BUSYBOX.read_bytes())
        for applet in sorted(set(applets) - {"busybox"}):
            _add(tar, f"bin/{applet}", tarfile.SYMTYPE, linkname="busybox", mode=0o777)
        _add(tar, "etc/passwd", tarfile.REGTYPE, data=b"root:x:0:0:root:/:/bin/sh\n", mode=0o644)
        _add(tar, "etc/group", tarfile.REGTYPE, data=b"root:x:0:\n", mode=0o644)
        _add(tar, "www/index.html", tarfile.REGTYPE, data=INDEX, mode=0o644)
    return dest


def _blob(tar: tarfile.TarFile, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest[7:]}", tarfile.REGTYPE, data=data, mode=0o644)
    return {"digest": digest, "size": len(data)}


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def oci_archive(rootfs: Path, dest: Path, name: str = OCI_NAME) -> Path:
    """Wrap the rootfs tarball as a one-layer OCI image layout tarball."""
    layer_tar = rootfs.read_bytes()
    layer = gzip.compress(layer_tar, mtime=0)
    config = {
        "architecture": ARCH,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
        },
        "history": [{"created_by": "pycni tests: busybox-static"}],
    }
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        _add(tar, "blobs", tarfile.DIRTYPE)
        _add(tar, "blobs/sha256", tarfile.DIRTYPE)
        config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json"}
        config_desc.update(_blob(tar, _canonical(config)))
        layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
        layer_desc.update(_blob(tar, layer))
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": [layer_desc],
        }
        manifest_desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json"}
        manifest_desc.update(_blob(tar, _canonical(manifest)))
        manifest_desc["annotations"] = {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": name.rpartition(":")[2],
        }
        manifest_desc["platform"] = {"architecture": ARCH, "os": "linux"}
        index = {"schemaVersion": 2, "manifests": [manifest_desc]}
        _add(tar, "oci-layout", tarfile.REGTYPE, data=b'{"imageLayoutVersion":"1.0.0"}', mode=0o644)
        _add(tar, "index.json", tarfile.REGTYPE, data=_canonical(index), mode=0o644)
    return dest
