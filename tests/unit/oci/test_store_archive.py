"""oci-archive / docker-archive save and load, round trips, and hostile or broken archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from imgbuild.errors import ImageNotFound, InputError, UnsafePathError
from imgbuild.oci import archive
from imgbuild.oci.model import MediaType
from imgbuild.oci.store import REF_NAME, Store
from tests.support.oci_images import make_image


@pytest.fixture
def src(tmp_path):
    st = Store(tmp_path / "src")
    make_image(st, "app:v1", {"etc/a": b"a" * 100}, {"etc/b": b"b" * 100}, compression="zstd",
               labels={"sealos.io.type": "rootfs"})
    make_image(st, "localhost:5000/team/tool:2", {"bin/t": b"tool"}, compression="gzip")
    return st


@pytest.fixture
def dst(tmp_path):
    return Store(tmp_path / "dst")


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}


def test_oci_archive_roundtrip_keeps_digests(src, dst, tmp_path):
    out = tmp_path / "imgs.tar"
    archive.save(src, ["app:v1", "localhost:5000/team/tool:2"], out)
    members = _members(out)
    index = json.loads(members["index.json"])
    assert {m["annotations"][REF_NAME] for m in index["manifests"]} == {
        "docker.io/library/app:v1", "localhost:5000/team/tool:2"}
    for name, data in members.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    loaded = archive.load(dst, out)
    assert sorted(n for x in loaded for n in x.names) == ["docker.io/library/app:v1", "localhost:5000/team/tool:2"]
    for ref in ("app:v1", "localhost:5000/team/tool:2"):
        assert dst.resolve(ref).digest == src.resolve(ref).digest
    assert dst.verify() == []


def test_docker_archive_layout_and_roundtrip(src, dst, tmp_path):
    out = tmp_path / "docker.tar"
    archive.save(src, ["app:v1", "localhost:5000/team/tool:2"], out, "docker-archive")
    members = _members(out)
    items = json.loads(members["manifest.json"])
    img = src.image("app:v1")
    app = next(i for i in items if i["RepoTags"] == ["app:v1"])
    assert app["Config"] == f"{img.id.hex}.json" and members[app["Config"]] == img.config.raw
    assert app["Layers"] == [f"{d.hex}.tar" for d in img.config.diff_ids]
    for layer in app["Layers"]:  # uncompressed tar named by its diffID
        assert hashlib.sha256(members[layer]).hexdigest() == layer[:-4]
        tarfile.open(fileobj=io.BytesIO(members[layer])).getnames()
    repos = json.loads(members["repositories"])
    assert repos["app"]["v1"] == app["Layers"][-1][:-4] and "localhost:5000/team/tool" in repos
    archive.load(dst, out)
    loaded = dst.image("app:v1")
    assert loaded.id == img.id  # config bytes kept: same IMAGE ID
    assert all(d.media_type == MediaType.OCI_LAYER for d in loaded.layers)
    assert dst.image("localhost:5000/team/tool:2").config.raw == src.image("localhost:5000/team/tool:2").config.raw
    assert dst.verify() == []


def test_save_by_id_has_no_name(src, dst, tmp_path):
    out = tmp_path / "byid.tar"
    archive.save(src, [src.image("app:v1").id.hex[:12]], out, "docker-archive")
    assert json.loads(_members(out)["manifest.json"])[0]["RepoTags"] == []
    loaded = archive.load(dst, out)
    assert loaded[0].names == () and dst.entries()[0].annotations == {}


def test_load_layout_directory(src, dst):
    loaded = archive.load(dst, src.root)
    assert len(loaded) == 2 and dst.resolve("app:v1").digest == src.resolve("app:v1").digest
    assert dst.verify() == []


def test_load_gzipped_docker_archive(src, dst, tmp_path):
    out = tmp_path / "d.tar"
    archive.save(src, ["app:v1"], out, "docker-archive")
    gz = tmp_path / "d.tar.gz"
    gz.write_bytes(gzip.compress(out.read_bytes()))
    archive.load(dst, gz)
    assert dst.image("app:v1").id == src.image("app:v1").id


def _tar(path, files: dict[str, bytes], links: dict[str, str] | None = None):
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)


def test_legacy_docker_archive_with_symlinked_layer(src, dst, tmp_path):
    """Old `docker save` wrote <id>/layer.tar and symlinked duplicates to another id's layer.tar."""
    img = src.image("localhost:5000/team/tool:2")
    extracted = tmp_path / "x.tar"
    archive.save(src, ["localhost:5000/team/tool:2"], extracted, "docker-archive")
    members = _members(extracted)
    layer = members[f"{img.config.diff_ids[0].hex}.tar"]
    manifest = [{"Config": "cfg.json", "RepoTags": ["localhost:5000/team/tool:legacy"],
                 "Layers": ["aaa/layer.tar"]}]
    legacy = tmp_path / "legacy.tar"
    _tar(legacy, {"bbb/layer.tar": layer, "cfg.json": img.config.raw,
                  "manifest.json": json.dumps(manifest).encode()}, {"aaa/layer.tar": "../bbb/layer.tar"})
    archive.load(dst, legacy)
    assert dst.image("localhost:5000/team/tool:legacy").id == img.id


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "blobs/../../x"])
def test_unsafe_member_names_are_refused(dst, tmp_path, name):
    bad = tmp_path / "bad.tar"
    _tar(bad, {name: b"x", "index.json": b'{"schemaVersion":2,"manifests":[]}', "oci-layout": b"{}"})
    with pytest.raises(UnsafePathError) as exc:
        archive.load(dst, bad)
    assert exc.value.where == name
    assert dst.entries() == []


def test_symlink_escaping_archive_is_refused(dst, tmp_path):
    bad = tmp_path / "bad.tar"
    _tar(bad, {"manifest.json": b"[]"}, {"layer.tar": "../../etc/shadow"})
    with pytest.raises(UnsafePathError):
        archive.load(dst, bad)


def test_wrong_blob_content_is_refused(src, dst, tmp_path):
    out = tmp_path / "o.tar"
    archive.save(src, ["app:v1"], out)
    members = _members(out)
    layer = src.image("app:v1").layers[0].digest
    members[f"blobs/sha256/{layer.hex}"] = bytes(len(members[f"blobs/sha256/{layer.hex}"]))  # same size, other bytes
    members["blobs/sha256/" + "0" * 64] = b"junk no index names: skipped, never read"
    bad = tmp_path / "bad.tar"
    _tar(bad, members)
    with pytest.raises(Exception) as exc:
        archive.load(dst, bad)
    assert "digest mismatch" in str(exc.value) and str(layer) in str(exc.value)
    assert list(dst.tmp_dir.iterdir()) == [] and dst.entries() == []


def test_truncated_archive(src, dst, tmp_path):
    out = tmp_path / "o.tar"
    archive.save(src, ["app:v1"], out)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(out.read_bytes()[:1500])
    with pytest.raises(InputError):
        archive.load(dst, cut)
    assert dst.entries() == [] and list(dst.tmp_dir.glob("*")) == []


def test_incomplete_oci_archive(src, dst, tmp_path):
    out = tmp_path / "o.tar"
    archive.save(src, ["app:v1"], out)
    members = _members(out)
    layer = src.image("app:v1").layers[0].digest
    del members[f"blobs/sha256/{layer.hex}"]
    partial = tmp_path / "partial.tar"
    _tar(partial, members)
    with pytest.raises(InputError, match="incomplete"):
        archive.load(dst, partial)
    assert dst.entries() == []


def test_bare_tag_ref_name_loads_untagged(src, dst, tmp_path):
    out = tmp_path / "o.tar"
    archive.save(src, ["app:v1"], out)
    members = _members(out)
    index = json.loads(members["index.json"])
    index["manifests"][0]["annotations"][REF_NAME] = "v1"
    members["index.json"] = json.dumps(index).encode()
    bare = tmp_path / "bare.tar"
    _tar(bare, members)
    loaded = archive.load(dst, bare)
    assert loaded[0].names == () and dst.tags() == [] and len(dst.entries()) == 1


def test_save_failure_leaves_no_file(src, tmp_path):
    out = tmp_path / "never.tar"
    with pytest.raises(ImageNotFound):
        archive.save(src, ["app:v1", "nope:1"], out)
    assert list(tmp_path.glob("*never*")) == []
    with pytest.raises(InputError):
        archive.save(src, ["app:v1"], out, "zip")


def test_not_an_archive(dst, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello")
    with pytest.raises(InputError):
        archive.load(dst, junk)
    with pytest.raises(InputError):
        archive.load(dst, tmp_path / "missing.tar")
