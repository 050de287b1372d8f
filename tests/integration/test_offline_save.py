"""save_images copies images from a real registry (and the store, and archives) into a servable registry/ dir."""

import pytest

from imgbuild.oci.regsave import Wanted, save_images
from imgbuild.errors import ImageNotFound, RegistryError
from imgbuild.oci.model import Platform
from imgbuild.oci.regdir import RegistryDir
from imgbuild.oci.store import Store
from imgbuild.reference import parse_reference
from tests.integration.offline_support import TestImage, pull_check, random_layer
from tests.support.registry import start_registry

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")


def test_shared_blobs_once_served_with_original_digests_and_rerun_copies_nothing(tmp_path, registry):
    base = random_layer(300_000)
    a = TestImage.single([base, random_layer(1000)], label="a")
    b = TestImage.single([base, random_layer(2000)], label="b")
    a.push(tmp_path, f"{registry.host}/library/nginx:1.25")
    b.push(tmp_path, f"{registry.host}/team/app:v1")
    rd = RegistryDir(tmp_path / "registry")
    refs = [f"{registry.host}/library/nginx:1.25", f"{registry.host}/team/app:v1"]

    report = save_images(refs, rd, jobs=4)
    assert [(s.repository, s.tag, s.digest, s.source) for s in report.saved] == [
        ("library/nginx", "1.25", a.digest, "registry"), ("team/app", "v1", b.digest, "registry")]
    unique_blobs = set(a.blobs) | set(b.blobs)
    blob_files = list((rd.v2 / "blobs").rglob("data"))
    assert len(blob_files) == len(unique_blobs) == 7  # base once
    assert report.blobs_copied == 5  # 3 layers + 2 configs; manifests are written, not copied
    assert rd.repositories() == ["library/nginx", "team/app"]

    again = save_images(refs, rd, jobs=4)
    assert again.saved == () and again.blobs_copied == 0 and again.skipped_existing == tuple(
        parse_reference(r).normalized for r in refs)

    srv = start_registry(tmp_path / "srv", storage=rd.root)
    try:
        assert pull_check(srv.host, "library/nginx:1.25", tmp_path / "p1") == a.digest
        assert pull_check(srv.host, "team/app:v1", tmp_path / "p2") == b.digest
    finally:
        srv.stop()


def test_index_one_platform_tags_the_child_all_platforms_keeps_the_index(tmp_path, registry):
    amd = TestImage.single([random_layer(5000)], AMD)
    arm = TestImage.single([random_layer(5000)], ARM)
    multi = TestImage.multi({AMD: amd, ARM: arm})
    multi.push(tmp_path, f"{registry.host}/lib/multi:v1")
    ref = f"{registry.host}/lib/multi:v1"

    one = RegistryDir(tmp_path / "one")
    save_images([ref], one, platform="linux/arm64")
    assert one.resolve("lib/multi", "v1") == arm.digest
    assert not one.has_blob(amd.top.layers[0].digest)

    both = RegistryDir(tmp_path / "both")
    save_images([ref], both, all_platforms=True)
    assert both.resolve("lib/multi", "v1") == multi.digest
    assert both.describe("lib/multi", "v1").platforms == ("linux/amd64", "linux/arm64")

    pinned = RegistryDir(tmp_path / "pinned")
    save_images([f"{registry.host}/lib/multi@{multi.digest}"], pinned, platform="linux/amd64")
    assert pinned.has_manifest("lib/multi", multi.digest) and pinned.has_manifest("lib/multi", amd.digest)
    assert not pinned.has_manifest("lib/multi", arm.digest)

    srv = start_registry(tmp_path / "srv", storage=tmp_path / "both")
    srv2 = start_registry(tmp_path / "srv2", storage=tmp_path / "pinned")
    try:
        assert pull_check(srv.host, "lib/multi:v1", tmp_path / "all", all_platforms=True) == multi.digest
        # a client asking by the index digest gets the index, then its platform's child
        assert pull_check(srv2.host, f"lib/multi@{multi.digest}", tmp_path / "pin") == amd.digest
    finally:
        srv.stop()
        srv2.stop()


def test_missing_images_fail_with_where_and_answer_or_are_skipped(tmp_path, registry):
    good = TestImage.single([random_layer(100)])
    good.push(tmp_path, f"{registry.host}/ok/img:v1")
    rd = RegistryDir(tmp_path / "registry")
    wanted = [Wanted(parse_reference(f"{registry.host}/ok/img:v1"), "manifests/a.yaml:3"),
              Wanted(parse_reference(f"{registry.host}/nope/img:v1"), "charts/x/values.yaml:12"),
              Wanted(parse_reference("127.0.0.1:1/down/img:v1"), "images/shim/list:2")]
    with pytest.raises(RegistryError) as info:
        save_images(wanted, rd)
    text = str(info.value)
    assert "2 images could not be saved" in text
    assert f"{registry.host}/nope/img:v1 (charts/x/values.yaml:12): no such image in the registry" in text
    assert "127.0.0.1:1/down/img:v1 (images/shim/list:2)" in text
    assert rd.repositories() == []  # nothing copied before every image was found

    report = save_images(wanted, rd, skip_missing=True)
    assert [s.repository for s in report.saved] == ["ok/img"]
    assert [(m.ref, m.where) for m in report.missing] == [
        (f"{registry.host}/nope/img:v1", "charts/x/values.yaml:12"), ("127.0.0.1:1/down/img:v1", "images/shim/list:2")]

    with pytest.raises(ImageNotFound):
        save_images(wanted[1:2], rd)


def test_local_store_and_archives_are_sources(tmp_path, registry):
    in_store = TestImage.single([random_layer(3000)], label="store")
    store = Store(tmp_path / "store")
    for digest, data in in_store.blobs.items():
        store.write_blob(data, digest)
    store.tag("example.com/only/local:v1", in_store.top.descriptor())

    archived = TestImage.single([random_layer(4000)], label="archive")
    tar = tmp_path / "app.tar"
    archived.docker_archive(tmp_path, tar, "example.com/arch/app:v2")
    rd = RegistryDir(tmp_path / "registry")
    wanted = [Wanted(parse_reference("example.com/only/local:v1"), "--images"),
              Wanted(parse_reference("example.com/arch/app:v2"), "images/skopeo/tar.txt:1", tar)]
    report = save_images(wanted, rd, store=store)
    by_repo = {s.repository: s for s in report.saved}
    assert by_repo["only/local"].source == "store" and by_repo["only/local"].digest == in_store.digest
    assert by_repo["arch/app"].source == "archive"
    assert list((rd.v2 / ".tmp").iterdir()) == []

    srv = start_registry(tmp_path / "srv", storage=rd.root)
    try:
        assert pull_check(srv.host, "only/local:v1", tmp_path / "p1") == in_store.digest
        digest = pull_check(srv.host, "arch/app:v2", tmp_path / "p2")
        assert digest == by_repo["arch/app"].digest
    finally:
        srv.stop()
