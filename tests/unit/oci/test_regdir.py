"""RegistryDir writes docker distribution's filesystem layout: blobs once, links without newline, tags last."""

import os

import pytest

from imgbuild.errors import DigestMismatch, ImageNotFound, InvalidReference, StoreError
from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, Platform
from imgbuild.oci.regdir import RegistryDir, repository_name


def make_image(rd: RegistryDir | None, layers: list[bytes], plat: Platform = Platform("linux", "amd64")):
    """A manifest over random-ish layers; blobs written into ``rd`` when given."""
    cfg = ImageConfig.new(plat)
    descs = []
    for data in layers:
        cfg = cfg.with_layer(Digest.of(data))
        descs.append(Descriptor.for_bytes(MediaType.OCI_LAYER, data))
    man = Manifest.build(cfg.descriptor(), descs)
    if rd is not None:
        rd.write_blob(cfg.raw)
        for data in layers:
            rd.write_blob(data)
    return man, cfg


def v2(rd: RegistryDir):
    return rd.root / "docker/registry/v2"


def test_repository_name_drops_the_registry_host():
    assert repository_name("nginx") == "library/nginx"
    assert repository_name("docker.io/library/nginx:1.25") == "library/nginx"
    assert repository_name("quay.io/coreos/etcd@sha256:" + "a" * 64) == "coreos/etcd"
    assert repository_name("localhost:5000/a/b/c:v1") == "a/b/c"


def test_blob_layout_and_dedup(tmp_path):
    rd = RegistryDir(tmp_path)
    d = rd.write_blob(b"hello")
    assert rd.blob_path(d) == v2(rd) / "blobs/sha256" / d.hex[:2] / d.hex / "data"
    assert rd.blob_path(d).read_bytes() == b"hello" and rd.has_blob(d) and rd.blob_size(d) == 5
    assert rd.write_blob(b"hello") == d
    assert rd.read_blob(d) == b"hello"
    assert list((v2(rd) / ".tmp").iterdir()) == []


def test_blob_writer_verifies_and_leaves_nothing_on_mismatch(tmp_path):
    rd = RegistryDir(tmp_path)
    wrong = Digest.of(b"other")
    with pytest.raises(DigestMismatch):
        with rd.blob_writer(wrong) as w:
            w.write(b"hello")
    assert not rd.has_blob(wrong) and not rd.has_blob(Digest.of(b"hello"))
    with pytest.raises(StoreError, match="size mismatch"):
        with rd.blob_writer(Digest.of(b"abc"), size=4) as w:
            w.write(b"abc")
    assert list((v2(rd) / ".tmp").iterdir()) == []
    with rd.blob_writer(Digest.of(b"abc"), size=3) as w:
        w.write(b"a")
        w.write(b"bc")
    assert w.digest == Digest.of(b"abc") and w.size == 3 and rd.has_blob(w.digest)


def test_blob_writer_removes_temp_on_error(tmp_path):
    rd = RegistryDir(tmp_path)
    with pytest.raises(RuntimeError):
        with rd.blob_writer() as w:
            w.write(b"partial")
            raise RuntimeError("network died")
    assert list((v2(rd) / ".tmp").iterdir()) == []
    assert rd.total_size() == 0


def test_put_manifest_writes_the_distribution_layout(tmp_path):
    rd = RegistryDir(tmp_path)
    man, cfg = make_image(rd, [b"layer-one", b"layer-two"])
    digest = rd.put_manifest("library/nginx", "1.25", man.raw, man.media_type)
    assert digest == man.digest
    repo = v2(rd) / "repositories/library/nginx"
    for blob in (cfg.digest, *[l.digest for l in man.layers]):
        link = repo / "_layers/sha256" / blob.hex / "link"
        assert link.read_bytes() == str(blob).encode()  # no newline
    assert (repo / "_manifests/revisions/sha256" / digest.hex / "link").read_bytes() == str(digest).encode()
    assert (repo / "_manifests/tags/1.25/current/link").read_bytes() == str(digest).encode()
    assert (repo / "_manifests/tags/1.25/index/sha256" / digest.hex / "link").read_bytes() == str(digest).encode()
    assert rd.read_blob(digest) == man.raw
    assert rd.repositories() == ["library/nginx"] and rd.tags("library/nginx") == ["1.25"]
    assert rd.resolve("library/nginx", "1.25") == digest
    assert rd.get_manifest("library/nginx", "1.25") == (man.raw, MediaType.OCI_MANIFEST)
    assert rd.lookup("docker.io/library/nginx:1.25") == digest
    assert rd.lookup("nginx@" + digest) == digest
    assert rd.lookup("nginx:other") is None


def test_put_manifest_refuses_missing_blobs_and_writes_no_tag(tmp_path):
    rd = RegistryDir(tmp_path)
    man, _ = make_image(None, [b"x"])
    with pytest.raises(StoreError, match="not stored"):
        rd.put_manifest("app", "v1", man.raw, man.media_type)
    assert rd.tags("app") == [] and rd.repositories() == []
    with pytest.raises(ImageNotFound):
        rd.resolve("app", "v1")


def test_shared_blobs_are_stored_once(tmp_path):
    rd = RegistryDir(tmp_path)
    base = os.urandom(4096)
    a, _ = make_image(rd, [base, b"app-a"])
    b, _ = make_image(rd, [base, b"app-b"])
    rd.put_manifest("team/a", "v1", a.raw)
    rd.put_manifest("team/b", "v1", b.raw)
    blobs = list((v2(rd) / "blobs").rglob("data"))
    # base, app-a, app-b, 2 configs, 2 manifests
    assert len(blobs) == 7
    assert rd.total_size() == sum(p.stat().st_size for p in blobs)
    assert rd.repositories() == ["team/a", "team/b"]


def test_index_needs_its_children_and_lists_platforms(tmp_path):
    rd = RegistryDir(tmp_path)
    amd, _ = make_image(rd, [b"amd"], Platform("linux", "amd64"))
    arm, _ = make_image(rd, [b"arm"], Platform("linux", "arm64", "v8"))
    idx = Index.build([
        Descriptor(amd.media_type, amd.digest, amd.size, platform=Platform("linux", "amd64")),
        Descriptor(arm.media_type, arm.digest, arm.size, platform=Platform("linux", "arm64", "v8")),
    ])
    with pytest.raises(StoreError, match="child manifest"):
        rd.put_manifest("multi", "v1", idx.raw)
    rd.put_manifest("multi", None, amd.raw)
    rd.put_manifest("multi", None, arm.raw)
    assert rd.tags("multi") == []
    rd.put_manifest("multi", "v1", idx.raw)
    info = rd.describe("multi", "v1")
    assert info.digest == idx.digest and info.media_type == MediaType.OCI_INDEX
    assert info.platforms == ("linux/amd64", "linux/arm64/v8") and info.missing == ()
    expected = idx.size + amd.size + arm.size + sum(b.size for m in (amd, arm) for b in m.blobs())
    assert info.size == expected


def test_describe_reports_missing_content(tmp_path):
    rd = RegistryDir(tmp_path)
    man, _ = make_image(rd, [b"gone"])
    rd.put_manifest("app", "v1", man.raw)
    rd.blob_path(man.layers[0].digest).unlink()
    info = rd.describe("app", "v1")
    assert info.missing == (str(man.layers[0].digest),)
    assert info.platforms == ("linux/amd64",)
    assert rd.lookup("app:v1") is None


def test_retag_moves_current_and_keeps_index(tmp_path):
    rd = RegistryDir(tmp_path)
    one, _ = make_image(rd, [b"1"])
    two, _ = make_image(rd, [b"2"])
    rd.put_manifest("app", "v1", one.raw)
    rd.put_manifest("app", "v1", two.raw)
    assert rd.resolve("app", "v1") == two.digest
    tagdir = v2(rd) / "repositories/app/_manifests/tags/v1/index/sha256"
    assert {p.name for p in tagdir.iterdir()} == {one.digest.hex, two.digest.hex}


@pytest.mark.parametrize("repo", ["../evil", "a/../../b", "UPPER", "/abs", "a//b", "host.io:5000/x", ""])
def test_bad_repository_names_are_refused(tmp_path, repo):
    rd = RegistryDir(tmp_path)
    man, _ = make_image(rd, [b"x"])
    with pytest.raises(InvalidReference):
        rd.put_manifest(repo, "v1", man.raw)


@pytest.mark.parametrize("tag", ["../x", "a/b", ".hidden", ""])
def test_bad_tags_are_refused(tmp_path, tag):
    rd = RegistryDir(tmp_path)
    man, _ = make_image(rd, [b"x"])
    with pytest.raises(InvalidReference):
        rd.put_manifest("app", tag, man.raw)


def test_empty_dir_lists_nothing(tmp_path):
    rd = RegistryDir(tmp_path / "none")
    assert rd.repositories() == [] and rd.listing() == [] and rd.total_size() == 0


def test_files_are_world_readable_for_a_registry_run_as_another_user(tmp_path):
    rd = RegistryDir(tmp_path)
    man, _ = make_image(rd, [b"x"])
    rd.put_manifest("app", "v1", man.raw)
    for p in (v2(rd)).rglob("*"):
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o644, p


def test_partial_index_keeps_one_platform(tmp_path):
    rd = RegistryDir(tmp_path)
    amd, _ = make_image(rd, [b"amd"], Platform("linux", "amd64"))
    arm, _ = make_image(None, [b"arm"], Platform("linux", "arm64"))
    idx = Index.build([
        Descriptor(amd.media_type, amd.digest, amd.size, platform=Platform("linux", "amd64")),
        Descriptor(arm.media_type, arm.digest, arm.size, platform=Platform("linux", "arm64")),
    ])
    rd.put_manifest("multi", None, amd.raw)
    with pytest.raises(StoreError):
        rd.put_manifest("multi", "v1", idx.raw)
    rd.put_manifest("multi", "v1", idx.raw, partial=True)
    assert rd.missing("multi", idx.digest) == []
    assert rd.describe("multi", "v1").platforms == ("linux/amd64",)
    assert rd.lookup("localhost/multi@" + idx.digest) == idx.digest
    with pytest.raises(StoreError):
        rd.put_manifest("other", "v1", idx.raw, partial=True)


def test_cleanup_tmp_removes_leftovers(tmp_path):
    rd = RegistryDir(tmp_path)
    (rd.scratch_dir() / "blob-x").write_bytes(b"partial")
    (rd.scratch_dir() / "archives-y" / "a0").mkdir(parents=True)
    assert rd.cleanup_tmp() == 2 and list(rd.scratch_dir().iterdir()) == []
