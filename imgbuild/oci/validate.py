"""Check that an image is what its descriptors say, whatever it comes from (as go-containerregistry's ``validate``).

:func:`validate_image` reads a whole :class:`~imgbuild.oci.image.Image` through its
own interface and lists every problem: the manifest's digest and size against the
descriptor it was reached by, the config blob against the manifest's config
descriptor and against the parsed config, each layer blob's digest and size, each
layer's uncompressed digest against the config's ``diff_ids``, and whether the media
types belong together (an OCI manifest with OCI config and layers, a Docker one with
Docker's). :func:`validate_index` does the same for an index and each child it holds.
An empty list means valid. Layers are streamed, never held in memory.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import BinaryIO

import zstandard

from imgbuild.errors import ImgbuildError
from imgbuild.oci.image import Image, ImageIndex
from imgbuild.oci.layer import open_layer
from imgbuild.oci.model import LAYER_MEDIA_TYPES, Descriptor, Digest, MediaType

__all__ = ["validate_image", "validate_index", "HashingReader"]

_CHUNK = 1 << 20
_OCI = {MediaType.OCI_MANIFEST: MediaType.OCI_CONFIG, MediaType.DOCKER_MANIFEST: MediaType.DOCKER_CONFIG}
_DOCKER_LAYERS = frozenset({MediaType.DOCKER_LAYER_GZIP, MediaType.DOCKER_LAYER_FOREIGN,
                            "application/vnd.docker.image.rootfs.diff.tar"})


def validate_image(image: Image, *, layers: bool = True) -> list[str]:
    """Every way ``image`` differs from its descriptors (empty: valid); ``layers=False`` skips the layer reads."""
    problems = _manifest_problems(image) + _config_problems(image)
    if layers:
        diff_ids = image.config.diff_ids
        for i, desc in enumerate(image.layers):
            problems += _layer_problems(image, desc, diff_ids[i] if i < len(diff_ids) else None, i)
    return problems


def validate_index(index: ImageIndex, *, layers: bool = True) -> list[str]:
    """Every problem of the index document and of each child image it holds (empty: valid)."""
    problems = _bytes_problems("index", index.descriptor, index.index.raw)
    if index.descriptor.media_type != index.index.media_type:
        problems.append(f"index: descriptor says {index.descriptor.media_type}, document is {index.index.media_type}")
    listed = {d.digest: d for d in index.index.manifests}
    for child in index.images():
        want = listed.get(child.descriptor.digest)
        if want is None:
            problems.append(f"index: child {child.descriptor.digest} is not listed")
            continue
        problems += [f"child {str(want.digest)[:19]}: {p}" for p in validate_image(child, layers=layers)]
    return problems


def _bytes_problems(what: str, desc: Descriptor, raw: bytes) -> list[str]:
    out = []
    if Digest.of(raw) != desc.digest:
        out.append(f"{what}: digest {Digest.of(raw)} but the descriptor says {desc.digest}")
    if len(raw) != desc.size:
        out.append(f"{what}: {len(raw)} bytes but the descriptor says {desc.size}")
    return out


def _manifest_problems(image: Image) -> list[str]:
    manifest = image.manifest
    out = _bytes_problems("manifest", image.descriptor, manifest.raw)
    if image.descriptor.media_type != manifest.media_type:
        out.append(f"manifest: descriptor says {image.descriptor.media_type}, document is {manifest.media_type}")
    if tuple(image.layers) != tuple(manifest.layers):
        out.append("layers: the image's layer list is not the manifest's")
    if len(image.config.diff_ids) != len(manifest.layers):
        out.append(f"config: {len(image.config.diff_ids)} diff_ids for {len(manifest.layers)} layers")
    docker = manifest.media_type == MediaType.DOCKER_MANIFEST
    for i, layer in enumerate(manifest.layers):
        if layer.media_type not in LAYER_MEDIA_TYPES | _DOCKER_LAYERS:
            out.append(f"layer {i}: unknown media type {layer.media_type}")
        elif docker != (layer.media_type in _DOCKER_LAYERS) and layer.media_type != MediaType.OCI_LAYER_ZSTD:
            out.append(f"layer {i}: {layer.media_type} in a {manifest.media_type}")
    return out


def _config_problems(image: Image) -> list[str]:
    desc = image.manifest.config
    out = []
    expected = _OCI.get(image.manifest.media_type)
    if expected and desc.media_type != expected:
        out.append(f"config: media type {desc.media_type} in a {image.manifest.media_type}")
    try:
        with image.open_blob(desc) as fh:
            raw = fh.read()
    except ImgbuildError as exc:
        return out + [f"config: cannot read it: {exc}"]
    out += _bytes_problems("config", desc, raw)
    if raw != image.config.raw:
        out.append("config: the parsed config is not the config blob")
    return out


class HashingReader:
    """A reader that hashes and counts what passes through it (``digest()`` when done)."""

    def __init__(self, fh: BinaryIO, algorithm: str = "sha256") -> None:
        self._fh, self.hash, self.size = fh, hashlib.new(algorithm), 0

    def read(self, n: int = -1) -> bytes:
        """Read from the wrapped stream, hashing what comes."""
        data = self._fh.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever the decompressor left unread."""
        while self.read(_CHUNK):
            pass

    def digest(self) -> Digest:
        """The digest of what was read so far."""
        return Digest(f"{self.hash.name}:{self.hash.hexdigest()}")


def _layer_problems(image: Image, desc: Descriptor, diff_id: Digest | None, i: int) -> list[str]:
    try:
        with image.open_blob(desc) as fh:
            raw = HashingReader(fh, desc.digest.algorithm)
            plain = hashlib.new(diff_id.algorithm if diff_id else "sha256")
            stream = open_layer(raw, desc.media_type)  # type: ignore[arg-type]
            while chunk := stream.read(_CHUNK):
                plain.update(chunk)
            raw.drain()
    except (ImgbuildError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        return [f"layer {i} ({desc.digest}): cannot read it: {exc}"]
    out = []
    if raw.digest() != desc.digest:
        out.append(f"layer {i}: digest {raw.digest()} but the manifest says {desc.digest}")
    if raw.size != desc.size:
        out.append(f"layer {i}: {raw.size} bytes but the manifest says {desc.size}")
    got = f"{plain.name}:{plain.hexdigest()}"
    if diff_id is not None and got != diff_id:
        out.append(f"layer {i}: uncompressed digest {got} but the config's diff_id is {diff_id}")
    return out
