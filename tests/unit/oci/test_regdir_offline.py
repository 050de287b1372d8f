"""offline's pure decisions: what to save from an ImageSet, what of an index to keep, how misses are reported."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from imgbuild.oci import regsave as offline
from imgbuild.builder.images import ArchiveImage, FoundImage, ImageSet, Source
from imgbuild.errors import ImageNotFound, InputError, RegistryError
from imgbuild.oci.image import LayoutIndex, child_images, is_index
from imgbuild.oci.model import Descriptor, Index, Platform
from imgbuild.oci.regdir import RegistryDir
from imgbuild.reference import parse_reference
from tests.unit.oci.test_regdir import make_image

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")


def _imageset():
    src = Source("manifests/a.yaml", 7, "manifest")
    return ImageSet(
        found=(FoundImage("docker.io/library/nginx:1.25", "nginx:1.25", (src,)),
               FoundImage("example.com/app:v3", "example.com/app:v3", (Source("images/shim/x", 2, "shim-list"),))),
        archives=(ArchiveImage("docker-archive", "images/skopeo/app.tar", "example.com/app:v3",
                               Source("images/skopeo/tar.txt", 1, "archive-list")),),
    )


def test_wanted_from_an_imageset_keeps_where_and_prefers_the_archive(tmp_path):
    wanted = offline.wanted_images(_imageset(), tmp_path)
    by_ref = {w.ref.normalized: w for w in wanted}
    assert by_ref["docker.io/library/nginx:1.25"].where == "manifests/a.yaml:7"
    app = by_ref["example.com/app:v3"]
    assert app.archive == tmp_path / "images/skopeo/app.tar" and app.where == "images/skopeo/tar.txt:1"
    with pytest.raises(InputError, match="context directory"):
        offline.wanted_images(_imageset())
    plain = offline.wanted_images(["nginx", "docker.io/library/nginx:latest"])
    assert [(w.ref.normalized, w.where) for w in plain] == [("docker.io/library/nginx:latest", "--images")]


def _index(tmp_path):
    rd = RegistryDir(tmp_path / "src")
    amd, _ = make_image(rd, [b"amd"], AMD)
    arm, _ = make_image(rd, [b"arm"], ARM)
    idx = Index.build([Descriptor(amd.media_type, amd.digest, amd.size, platform=AMD),
                       Descriptor(arm.media_type, arm.digest, arm.size, platform=ARM)])
    for doc in (amd, arm, idx):
        rd.write_blob(doc.raw)
    return idx, amd, arm, LayoutIndex(rd, idx.descriptor(), idx)


def _plan(ref, idx, source, plat=AMD, all_platforms=False):
    """What save_images would copy of ``source``: the top descriptor, the documents written, the blobs."""
    w = offline.Wanted(parse_reference(ref), "here:1")
    chosen, partial = offline._choose(source, w, plat, all_platforms)
    images = child_images(chosen)
    docs = [(i.descriptor, i.manifest.raw) for i in images]
    docs += [(chosen.descriptor, chosen.index.raw)] if is_index(chosen) else []
    blobs = [b for i in images for b in i.manifest.blobs()]
    return SimpleNamespace(target=chosen.descriptor, docs=docs, partial=partial, blobs=blobs)


def test_index_choices(tmp_path):
    idx, amd, arm, get = _index(tmp_path)
    one = _plan("r.io/multi:v1", idx, get, ARM)
    assert one.target.digest == arm.digest and [d.digest for d, _ in one.docs] == [arm.digest]
    assert not one.partial and {b.digest for b in one.blobs} == {b.digest for b in arm.blobs()}
    every = _plan("r.io/multi:v1", idx, get, all_platforms=True)
    assert every.target.digest == idx.digest and len(every.docs) == 3 and not every.partial
    pinned = _plan(f"r.io/multi@{idx.digest}", idx, get)
    assert pinned.target.digest == idx.digest and pinned.partial
    assert [d.digest for d, _ in pinned.docs] == [amd.digest, idx.digest]
    with pytest.raises(ImageNotFound, match="no image for platform linux/s390x"):
        _plan("r.io/multi:v1", idx, get, Platform("linux", "s390x"))
    with pytest.raises(RegistryError, match="pinned digest"):
        _plan("r.io/multi@sha256:" + "0" * 64, idx, get)


def test_misses_are_one_error_or_nothing():
    nf = offline.Missing("a:1", "x.yaml:1", "no such image", not_found=True)
    down = offline.Missing("b:1", "y.yaml:2", "cannot reach the registry")
    offline._fail_or_warn([nf, down], skip_missing=True)
    offline._fail_or_warn([], skip_missing=False)
    with pytest.raises(ImageNotFound) as info:
        offline._fail_or_warn([nf], skip_missing=False)
    assert "a:1 (x.yaml:1): no such image" in str(info.value) and info.value.exit_code == 2
    with pytest.raises(RegistryError) as info:
        offline._fail_or_warn([nf, down], skip_missing=False)
    assert "2 images could not be saved" in str(info.value) and info.value.missing == (nf, down)


def test_present_images_are_skipped_without_any_source(tmp_path):
    rd = RegistryDir(tmp_path)
    man, _ = make_image(rd, [b"x"])
    rd.put_manifest("library/nginx", "1.25", man.raw)
    # the registry host does not resolve: had it been asked, this would be a miss
    report = offline.save_images(["registry.invalid/library/nginx:1.25"], rd)
    assert report.skipped_existing == ("registry.invalid/library/nginx:1.25",) and report.saved == ()
    assert isinstance(offline.save_images([], Path(tmp_path)), offline.SaveReport)
