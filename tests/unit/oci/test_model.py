"""The OCI model keeps exact bytes, derives new values, and validates what it reads."""

import json

import pytest

from imgbuild.errors import DigestMismatch, InputError
from imgbuild.oci.model import (
    Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, Platform, parse_document,
)

A = "sha256:" + "a" * 64


def test_digest_validation_and_verify():
    d = Digest.of(b"hello")
    assert d.algorithm == "sha256" and len(d.hex) == 64
    d.verify(b"hello")
    with pytest.raises(DigestMismatch):
        d.verify(b"other")
    with pytest.raises(InputError):
        Digest("md5:abc")


def test_manifest_keeps_exact_bytes():
    raw = json.dumps({"schemaVersion": 2, "mediaType": MediaType.OCI_MANIFEST,
                      "config": {"mediaType": MediaType.OCI_CONFIG, "digest": A, "size": 2},
                      "layers": []}, indent=3).encode()
    m = Manifest.from_bytes(raw)
    assert m.raw == raw and m.digest == Digest.of(raw) and m.layers == ()


def test_build_is_deterministic_and_round_trips():
    cfg = ImageConfig.new(Platform("linux", "amd64"), created="1970-01-01T00:00:00Z")
    layer = Descriptor(MediaType.OCI_LAYER_ZSTD, Digest(A), 10, {"io.imgbuild.layer.role": "rootfs"})
    m1 = Manifest.build(cfg.descriptor(), [layer])
    m2 = Manifest.build(cfg.descriptor(), [layer])
    assert m1.raw == m2.raw
    again = parse_document(m1.raw)
    assert isinstance(again, Manifest) and again.layers[0].annotations["io.imgbuild.layer.role"] == "rootfs"
    assert m1.with_annotations({"k": "v"}).annotations == {"k": "v"}


def test_config_changes_return_new_values():
    cfg = ImageConfig.new(Platform("linux", "arm64"))
    cfg2 = cfg.with_layer(A, {"created_by": "COPY . ."}).with_changes(config={"Labels": {"a": "b"}, "Env": ["X=1"]})
    assert cfg.diff_ids == [] and cfg2.diff_ids == [A]
    assert cfg2.labels == {"a": "b"} and cfg2.env_map == {"X": "1"} and cfg2.platform.architecture == "arm64"
    assert cfg2.with_changes(config={"Labels": None}).labels == {}
    assert cfg2.with_history({"created_by": "ENV"}).history[-1]["empty_layer"] is True


def test_index_selects_platform():
    amd = Descriptor(MediaType.OCI_MANIFEST, Digest(A), 1, platform=Platform("linux", "amd64"))
    arm = Descriptor(MediaType.OCI_MANIFEST, Digest("sha256:" + "b" * 64), 1, platform=Platform("linux", "arm64", "v8"))
    idx = Index.build([amd, arm])
    assert isinstance(parse_document(idx.raw), Index)
    assert idx.select(Platform.parse("linux/arm64")) == arm
    assert idx.select(Platform.parse("amd64")) == amd
    assert idx.select(Platform.parse("linux/s390x")) is None


def test_invalid_documents():
    with pytest.raises(InputError):
        parse_document(b"not json")
    with pytest.raises(InputError):
        Manifest.from_bytes(b'{"schemaVersion": 1}')
    with pytest.raises(InputError):
        Platform.parse("a/b/c/d")
