"""The local store: blobs, tags, resolution, gc and verify on a real OCI layout in a temp dir."""

from __future__ import annotations

import json
import os
import time

import pytest

from imgbuild.errors import DigestMismatch, ImageNotFound, InputError, StoreError
from imgbuild.home import home
from imgbuild.oci.model import Digest, Index, MediaType, Platform
from imgbuild.oci.store import REF_NAME, TEMP_MAX_AGE, Store, open_store
from tests.support.oci_images import make_image


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


def test_layout_files_are_standard(store):
    make_image(store, "app:v1")
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((store.root / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["mediaType"] == MediaType.OCI_INDEX
    assert index["manifests"][0]["annotations"] == {REF_NAME: "docker.io/library/app:v1"}


def test_open_store_lives_in_home(imgbuild_home):
    assert open_store(home()).root == imgbuild_home / "store"


def test_blob_roundtrip_and_digest_check(store):
    d = store.write_blob(b"hello")
    assert d == Digest.of(b"hello") and store.read_blob(d) == b"hello" and store.blob_size(d) == 5
    with pytest.raises(DigestMismatch):
        store.write_blob(b"other", expected="sha256:" + "0" * 64)
    assert list(store.tmp_dir.iterdir()) == []


def test_blob_writer_mismatch_stores_nothing(store):
    expected = "sha256:" + "a" * 64
    with pytest.raises(DigestMismatch):
        with store.blob_writer(expected) as w:
            w.write(b"x" * 10)
    assert not store.has_blob(expected) and list(store.tmp_dir.iterdir()) == []
    assert [p for p in (store.root / "blobs" / "sha256").iterdir()] == []


def test_blob_writer_error_in_block_removes_temp(store):
    with pytest.raises(RuntimeError):
        with store.blob_writer() as w:
            w.write(b"partial")
            raise RuntimeError("network went away")
    assert list(store.tmp_dir.iterdir()) == []


def test_blob_writer_size_check(store):
    with pytest.raises(StoreError, match="size mismatch"):
        with store.blob_writer(size=3) as w:
            w.write(b"four")


def test_read_blob_detects_corruption(store):
    d = store.write_blob(b"content")
    store.blob_path(d).write_bytes(b"tampered")
    with pytest.raises(DigestMismatch):
        store.read_blob(d)


def test_missing_blob_is_store_error(store):
    with pytest.raises(StoreError) as exc:
        store.open_blob("sha256:" + "b" * 64)
    assert exc.value.where == "sha256:" + "b" * 64


def test_ingest_file(store, tmp_path):
    f = tmp_path / "big"
    f.write_bytes(os.urandom(3 << 20))
    d = store.ingest_file(f)
    assert store.blob_size(d) == 3 << 20 and store.ingest_file(f, d) == d


def test_tag_resolve_forms(store):
    desc = make_image(store, "localhost:5000/team/app:v1")
    img = store.image("localhost:5000/team/app:v1")
    assert img.digest == desc.digest
    for ref in ("localhost:5000/team/app:v1", str(desc.digest), f"localhost:5000/team/app@{desc.digest}",
                desc.digest.hex[:8], img.id.hex[:12], str(img.id), "sha256:" + desc.digest.hex[:6]):
        assert store.resolve(ref).digest == desc.digest, ref
    with pytest.raises(ImageNotFound):
        store.resolve("localhost:5000/team/app:v2")


def test_short_name_normalises(store):
    desc = make_image(store, "app")
    assert store.resolve("docker.io/library/app:latest").digest == desc.digest
    assert store.tags()[0][0].normalized == "docker.io/library/app:latest"


def test_ambiguous_prefix(store):
    make_image(store, "a:1", {"x": b"1"})
    make_image(store, "b:1", {"x": b"2"})
    # a real 4-hex-digit collision needs ~2**16 images; the empty prefix matches both, which is the same path
    with pytest.raises(InputError, match="ambiguous"):
        store._by_prefix(store.entries(), "", "x")


def test_retag_replaces_and_untag(store):
    one = make_image(store, "app:v1", {"a": b"1"})
    two = make_image(store, "app:v1", {"a": b"2"})
    assert [e.digest for e in store.entries()] == [two.digest]
    store.tag("app:other", one)
    removed = store.untag("app:v1")
    assert removed.digest == two.digest
    with pytest.raises(ImageNotFound):
        store.untag("app:v1")


def test_tag_requires_all_blobs(store):
    desc = make_image(store, "app:v1")
    layer = store.image(desc).layers[0]
    store.blob_path(layer.digest).unlink()
    with pytest.raises(StoreError, match="incomplete"):
        store.tag("app:v2", desc)


def test_tag_with_digest_only_is_refused(store):
    desc = make_image(store, "app:v1")
    with pytest.raises(InputError):
        store.tag(f"app@{desc.digest}", desc)


def test_untagged_entries_and_remove_image(store):
    desc = make_image(store, None)
    assert store.entries()[0].digest == desc.digest and store.tags() == []
    store.tag("app:v1", desc)
    assert len(store.entries()) == 1  # the untagged entry was absorbed
    store.tag("app:v2", desc)
    assert len(store.remove_image(desc.digest)) == 2 and store.entries() == []


def test_gc_removes_only_unreachable(store):
    keep = make_image(store, "keep:1", {"k": b"keep"})
    drop = make_image(store, "drop:1", {"d": b"drop"})
    keep_blobs = {keep.digest, *(b.digest for b in store.image(keep).manifest.blobs())}
    drop_blobs = {drop.digest, *(b.digest for b in store.image(drop).manifest.blobs())} - keep_blobs
    store.untag("drop:1")
    removed, freed = store.gc()
    assert removed == len(drop_blobs) and freed > 0
    assert all(store.has_blob(d) for d in keep_blobs) and not any(store.has_blob(d) for d in drop_blobs)
    assert store.verify() == []


def test_gc_spares_fresh_blobs_while_an_import_runs(store):
    make_image(store, "keep:1")
    orphan = store.write_blob(b"being imported")  # written, not yet tagged: this process is an importer
    assert store.gc() == (0, 0) and store.has_blob(orphan)
    make_image(store, "keep:2")  # tagging ends the import
    with store.writing():  # an explicit import session spares fresh blobs too
        assert store.gc() == (0, 0)
    assert store.gc()[0] == 1 and not store.has_blob(orphan)


def test_gc_removes_stale_temp_files(store):
    make_image(store, "a:1")
    old, new = store.root / ".tmp" / "blob-old", store.root / ".tmp" / "blob-new"  # no owner: an older version's
    old.write_bytes(b"x" * 10)
    new.write_bytes(b"y")
    mine = store.tmp_dir / "blob-mine"  # this live process's own temp file, however old
    mine.write_bytes(b"z")
    past = time.time() - TEMP_MAX_AGE - 5
    for p in (old, mine):
        os.utime(p, (past, past))
    store.gc()
    assert not old.exists() and new.exists() and mine.exists()


def test_verify_and_repair(store):
    desc = make_image(store, "app:v1")
    layer = store.image(desc).layers[0]
    store.blob_path(layer.digest).write_bytes(b"rot")
    problems = store.verify()
    assert len(problems) == 1 and "corrupt" in problems[0] and layer.digest in problems[0]
    assert store.has_blob(layer.digest)
    repaired = store.verify(repair=True)
    assert "removed" in repaired[0] and any("missing blob" in p for p in repaired)
    assert not store.has_blob(layer.digest)


def test_index_selects_platform(store):
    amd = make_image(store, None, {"a": b"amd"}, platform=Platform("linux", "amd64"))
    arm = make_image(store, None, {"a": b"arm"}, platform=Platform("linux", "arm64"))
    from dataclasses import replace

    index = Index.build([replace(amd, platform=Platform("linux", "amd64")),
                         replace(arm, platform=Platform("linux", "arm64"))])
    store.tag("multi:1", store.put_manifest(index))
    img = store.image("multi:1", Platform("linux", "arm64"))
    assert img.digest == arm.digest and img.index is not None
    with pytest.raises(ImageNotFound, match="platforms"):
        store.image("multi:1", Platform("linux", "s390x"))
    assert store.resolve(arm.digest.hex[:10]).digest == arm.digest
    store.remove_image(amd.digest)
    store.remove_image(arm.digest)
    assert store.gc()[0] == 0  # both children are reachable through the index
    assert store.verify() == []


def test_corrupt_index_json(store):
    make_image(store, "a:1")
    (store.root / "index.json").write_text("{not json")
    with pytest.raises(StoreError, match="index.json"):
        store.resolve("a:1")
    assert any("index.json" in p for p in store.verify())


def test_lock_is_reentrant(store):
    with store.lock():
        with store.lock():
            make_image(store, "a:1")
    with store.writing(), store.writing():
        store.write_blob(b"z")
