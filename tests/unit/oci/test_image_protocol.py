"""Every place an image lives reads as the same Image / ImageIndex, and validate_image checks each alike."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from dataclasses import replace

import pytest
import zstandard

from imgbuild.oci import archive
from imgbuild.oci.image import Layout, LayoutImage, child_images, is_index, open_layout
from imgbuild.oci.model import Descriptor, Digest, Manifest, MediaType, Platform
from imgbuild.oci.registry import RegistryClient
from imgbuild.oci.remote import RemoteIndex, open_remote
from imgbuild.oci.store import Store
from imgbuild.oci.transfer import push
from imgbuild.oci.validate import validate_image, validate_index
from imgbuild.reference import parse_reference
from tests.support.images import make_index
from tests.support.oci_images import make_image

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")


@pytest.fixture
def store(tmp_path) -> Store:
    """A store with a zstd image, a gzip image, and an index over both platforms."""
    st = Store(tmp_path / "store")
    make_image(st, "localhost:5000/app:v1", {"etc/a": b"a" * 3000}, {"etc/b": b"b"}, compression="zstd")
    make_image(st, "localhost:5000/tool:v1", {"bin/t": b"tool"}, compression="gzip")
    amd = make_image(st, None, {"x": b"amd"}, platform=AMD)
    arm = make_image(st, None, {"x": b"arm"}, platform=ARM)
    make_index(st, "localhost:5000/multi:v1", [amd, arm], [AMD, ARM])
    return st


def _sources(store: Store, tmp_path) -> dict[str, list]:
    """The same images read from the store, an OCI layout, an oci-archive and a docker-archive."""
    refs = ["localhost:5000/app:v1", "localhost:5000/tool:v1"]
    out = {"store": [store.image(r) for r in refs],
           "layout": [Layout(store.root).source(store.resolve(r)) for r in refs]}
    for fmt in archive.FORMATS:
        path = tmp_path / f"{fmt}.tar"
        archive.save(store, refs, path, fmt)
        with archive.open_archive(path, tmp_path / "scratch") as entries:
            out[fmt] = [e.source for e in entries]
            out[fmt + " problems"] = [validate_image(e.source) for e in entries]
    return out


def test_every_local_implementation_is_a_valid_image(store, tmp_path):
    sources = _sources(store, tmp_path)
    for kind in ("store", "layout"):
        for image in sources[kind]:
            assert validate_image(image) == [], kind
            assert image.manifest.raw == store.read_blob(image.descriptor.digest)
            assert [d.digest for d in image.layers] == [d.digest for d in image.manifest.layers]
    for fmt in archive.FORMATS:
        assert sources[fmt + " problems"] == [[], []], fmt
    # the docker-archive kept the config bytes (same IMAGE ID) and uncompressed the layers
    assert {i.config.digest for i in sources["store"]} == {i.config.digest for i in sources["docker-archive"]}
    assert {d.media_type for i in sources["docker-archive"] for d in i.layers} == {MediaType.OCI_LAYER}


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress,
                                      lambda d: zstandard.ZstdCompressor().compress(d[:5000]) +
                                      zstandard.ZstdCompressor().compress(d[5000:])])
def test_a_compressed_archive_reads_as_the_plain_one(store, tmp_path, compress):
    plain = tmp_path / "a.tar"
    archive.save(store, ["localhost:5000/app:v1"], plain, "docker-archive")
    packed = tmp_path / "a.tar.x"
    packed.write_bytes(compress(plain.read_bytes()))  # zstd: two frames, as pzstd writes
    with archive.open_archive(packed, tmp_path / "scratch") as entries:
        assert [validate_image(e.source) for e in entries] == [[]]
        assert entries[0].source.config.raw == store.image("localhost:5000/app:v1").config.raw
    assert list((tmp_path / "scratch").iterdir()) == []  # the decompressed copy is gone


def test_an_index_reads_as_an_image_index_with_its_children(store):
    index = open_layout(store, store.resolve("localhost:5000/multi:v1"))
    assert is_index(index) and validate_index(index) == []
    children = child_images(index)
    assert [c.config.platform for c in children] == [AMD, ARM]
    assert [c.descriptor.platform for c in children] == [AMD, ARM]
    picked = store.image("localhost:5000/multi:v1", ARM)  # the store's own Image keeps the index's platform
    assert picked.descriptor.platform == ARM and validate_image(picked) == []


class _Blobs(dict):
    """A BlobSource in memory."""

    def has_blob(self, digest):
        return str(digest) in self

    def open_blob(self, digest):
        return io.BytesIO(self[str(digest)])

    def read_blob(self, digest):
        return self[str(digest)]


def _copy_of(image) -> tuple[_Blobs, LayoutImage]:
    blobs = _Blobs({str(d.digest): image.open_blob(d).read() for d in image.manifest.blobs()})
    return blobs, LayoutImage(blobs, image.descriptor, image.manifest, image.config)


def test_validate_names_each_kind_of_damage(store):
    image = store.image("localhost:5000/app:v1")
    blobs, good = _copy_of(image)
    assert validate_image(good) == []
    layer = image.layers[0]
    blobs[str(layer.digest)] = blobs[str(image.layers[1].digest)]  # a valid layer, not this one
    assert {p.split(":")[0] for p in validate_image(good)} == {"layer 0"}
    assert any("layer 0: digest" in p for p in validate_image(good))
    blobs[str(layer.digest)] = b"\x28\xb5\x2f\xfd garbage"
    assert any(p.startswith("layer 0") and "cannot read it" in p for p in validate_image(good))
    blobs, good = _copy_of(image)
    wrong = replace(good, descriptor=replace(good.descriptor, size=good.descriptor.size + 1,
                                             media_type=MediaType.DOCKER_MANIFEST))
    problems = validate_image(wrong)
    assert any("manifest:" in p and "bytes" in p for p in problems) and any("descriptor says" in p for p in problems)
    bad_diff = good.config.with_changes(rootfs={"type": "layers", "diff_ids": [str(Digest.of(b"x"))] * 2})
    blobs[str(bad_diff.digest)] = bad_diff.raw
    manifest = Manifest.build(bad_diff.descriptor(), image.layers)
    lying = LayoutImage(blobs, manifest.descriptor(), manifest, bad_diff)
    assert sum("diff_id" in p for p in validate_image(lying)) == 2
    assert validate_image(lying, layers=False) == []
    odd = Manifest.build(bad_diff.descriptor(), [Descriptor("text/plain", layer.digest, layer.size)])
    assert any("unknown media type" in p for p in validate_image(LayoutImage(blobs, odd.descriptor(), odd, bad_diff)))


@pytest.mark.registry
def test_a_registry_image_is_a_valid_image_too(store, registry):
    for ref in ("app:v1", "multi:v1"):
        push(f"localhost:5000/{ref}", f"{registry.host}/t/{ref}", store=store)
    with RegistryClient(registry.host) as client:
        remote = open_remote(client, parse_reference(f"{registry.host}/t/app:v1"))
        local = store.image("localhost:5000/app:v1")
        assert validate_image(remote) == [] and remote.config.raw == local.config.raw
        assert remote.descriptor == replace(local.descriptor, platform=None)
        index = open_remote(client, parse_reference(f"{registry.host}/t/multi:v1"))
        assert isinstance(index, RemoteIndex) and validate_index(index) == []
        assert [c.descriptor.platform for c in index.images()] == [AMD, ARM]
