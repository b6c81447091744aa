"""The locally built busybox image is a well-formed OCI image layout:
every descriptor's digest and size match its blob, the config's diff_id is
the uncompressed layer, and the layer holds busybox, its applets and the
page the test containers serve. No root needed."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile

import pytest
import rt_image


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    if why := rt_image.busybox_missing():
        pytest.skip(why)
    d = tmp_path_factory.mktemp("rt-image-unit")
    rootfs = rt_image.rootfs_tar(d / "rootfs.tar")
    return rootfs, rt_image.oci_archive(rootfs, d / "oci.tar")


def blobs(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_oci_archive_descriptors_match_their_blobs(archive):
    rootfs, oci = archive
    files = blobs(oci)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}

    def blob(desc: dict) -> bytes:
        data = files[f"blobs/sha256/{desc['digest'].removeprefix('sha256:')}"]
        assert len(data) == desc["size"]
        assert hashlib.sha256(data).hexdigest() == desc["digest"][7:]
        return data

    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == rt_image.OCI_NAME
    manifest = json.loads(blob(entry))
    config = json.loads(blob(manifest["config"]))
    (layer_desc,) = manifest["layers"]
    layer = gzip.decompress(blob(layer_desc))
    assert layer == rootfs.read_bytes()
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["architecture"] == entry["platform"]["architecture"] == rt_image.ARCH


def test_rootfs_has_busybox_applets_and_the_page(archive):
    rootfs, _ = archive
    with tarfile.open(rootfs) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/busybox"].mode & 0o111
        for applet in ("sh", "httpd", "wget", "timeout", "grep"):
            link = members[f"bin/{applet}"]
            assert link.issym() and link.linkname == "busybox"
        page = tar.extractfile(members["www/index.html"])
        assert page is not None and page.read() == rt_image.INDEX


def test_images_are_reproducible(archive, tmp_path):
    _, oci = archive
    again = rt_image.oci_archive(rt_image.rootfs_tar(tmp_path / "r.tar"), tmp_path / "o.tar")
    assert again.read_bytes() == oci.read_bytes()
