"""One read-only image type for every place an image lives, and one sink type for every place it can go.

As go-containerregistry's ``pkg/v1``: an :class:`Image` is a manifest (exact bytes and
parsed), its config (exact bytes and parsed), its layer descriptors, and a way to open
any of its blobs as a stream; an :class:`ImageIndex` is an index and the child images
it can give. The local store (:class:`imgbuild.oci.store.Image`), a registry
(:mod:`imgbuild.oci.remote`), an oci-/docker-archive (:mod:`imgbuild.oci.archive`) and
an OCI layout directory (:class:`Layout` here) all give these, so a copy is written
once (:func:`imgbuild.oci.transfer.copy`) and checked once (:mod:`imgbuild.oci.validate`).

A :class:`Sink` is where a copy writes: it says whether it has a blob, takes a blob from a
re-openable stream (a registry upload may start over), stores child manifests, and
finally takes the top manifest or index with the name to give it. The store, a registry
repository, the registry/ directory and an archive being written are sinks.

:class:`LayoutImage` / :class:`LayoutIndex` read any :class:`BlobSource` laid out as an
OCI layout's blobs (a :class:`Layout` directory, the store, an archive's members).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Protocol, Union

from imgbuild.errors import ImageNotFound, InputError, StoreError
from imgbuild.oci._blobio import BlobReads
from imgbuild.oci.model import INDEX_MEDIA_TYPES, Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, parse_document
from imgbuild.reference import Reference

__all__ = [
    "Image", "ImageIndex", "Source", "Sink", "BlobSource", "OnBytes",
    "LayoutImage", "LayoutIndex", "Layout", "open_layout", "is_index", "child_images", "ReadStream",
]

OnBytes = Callable[[int], None]


class Image(Protocol):
    """A read-only image: manifest, config, layer descriptors, and its blobs as streams."""

    @property
    def descriptor(self) -> Descriptor:
        """How the image was reached: its manifest's media type, digest, size (and platform, from an index)."""

    @property
    def manifest(self) -> Manifest:
        """The manifest, parsed, with its exact bytes in ``.raw``."""

    @property
    def config(self) -> ImageConfig:
        """The config, parsed, with its exact bytes in ``.raw``."""

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        """The layer descriptors, base first."""

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """The config's or a layer's bytes as stored (compressed layers stay compressed); caller closes it."""


class ImageIndex(Protocol):
    """A read-only image index (or Docker manifest list) and the child images it can give."""

    @property
    def descriptor(self) -> Descriptor:
        """The index's media type, digest and size."""

    @property
    def index(self) -> Index:
        """The index, parsed, with its exact bytes in ``.raw``."""

    def image(self, desc: Descriptor) -> Image:
        """The child image ``desc`` (one of ``index.manifests``); ImageNotFound if this source lacks it."""

    def images(self) -> list[Image]:
        """The child images this source holds, in index order (a layout may carry only some platforms)."""


Source = Union[Image, ImageIndex]


class Sink(Protocol):
    """Where a copy writes: blobs first, then child manifests, then the top document and its name."""

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the blob is already there (the copy then skips it, outcome ``exists``)."""

    def put_blob(self, desc: Descriptor, open_blob: Callable[[], BinaryIO], on_bytes: OnBytes) -> str:
        """Store the blob read from ``open_blob()`` (which may be called again to start over), verified
        against ``desc``; report bytes to ``on_bytes``; return the outcome (``pushed``, ``mounted``...)."""

    def put_manifest(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Store a child manifest by digest, where ``name``'s image will live."""

    def tag(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Store the top manifest or index and point ``name`` at it (None: keep it by digest); the last write."""


class BlobSource(Protocol):
    """Blobs by digest, as an OCI layout holds them."""

    def has_blob(self, digest: str) -> bool:
        """True if the blob is present."""

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob as a stream (not re-verified)."""

    def read_blob(self, digest: str) -> bytes:
        """The whole blob, verified against its digest (for documents)."""


class ReadStream(io.RawIOBase):
    """A read-only, unseekable stream whose subclass gives ``read(n)``; ``readinto`` and the rest follow."""

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        """Fill ``buf`` from one ``read``."""
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def is_index(source: Source) -> bool:
    """True if ``source`` is an :class:`ImageIndex` (by its descriptor's media type)."""
    return source.descriptor.media_type in INDEX_MEDIA_TYPES


def child_images(source: Source) -> list[Image]:
    """The images a copy of ``source`` writes: the image itself, or the children an index holds."""
    return source.images() if is_index(source) else [source]  # type: ignore[union-attr,list-item]


def _document(blobs: BlobSource, desc: Descriptor, where: str) -> Manifest | Index:
    try:
        return parse_document(blobs.read_blob(desc.digest), desc.media_type or None)
    except InputError as exc:
        raise StoreError(f"unreadable manifest: {exc.message}", where) from exc


@dataclass(frozen=True)
class LayoutImage:
    """An :class:`Image` whose blobs are in a :class:`BlobSource` (a layout, the store, an archive)."""

    blobs: BlobSource
    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        """The layer descriptors, base first."""
        return self.manifest.layers

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """The blob's stored bytes."""
        return self.blobs.open_blob(desc.digest)


@dataclass(frozen=True)
class LayoutIndex:
    """An :class:`ImageIndex` whose children are in a :class:`BlobSource`; absent children are other platforms."""

    blobs: BlobSource
    descriptor: Descriptor
    index: Index

    def image(self, desc: Descriptor) -> LayoutImage:
        """The child image ``desc``; ImageNotFound if its manifest is not here."""
        if not self.blobs.has_blob(desc.digest):
            raise ImageNotFound(f"the index lists {desc.digest} ({desc.platform}) but it is not here",
                                str(self.descriptor.digest))
        image = open_layout(self.blobs, desc)
        if not isinstance(image, LayoutImage):
            raise StoreError("nested image indexes are not supported", str(desc.digest))
        return image

    def images(self) -> list[LayoutImage]:
        """The children whose manifests are here, in index order."""
        return [self.image(d) for d in self.index.manifests if self.blobs.has_blob(d.digest)]


def open_layout(blobs: BlobSource, desc: Descriptor) -> LayoutImage | LayoutIndex:
    """The image or index ``desc`` names in ``blobs`` (its document read and digest-checked now)."""
    doc = _document(blobs, desc, str(desc.digest))
    top = Descriptor(doc.media_type, desc.digest, desc.size, platform=desc.platform)
    if isinstance(doc, Index):
        return LayoutIndex(blobs, top, doc)
    raw = blobs.read_blob(doc.config.digest)
    try:
        config = ImageConfig.from_bytes(raw, doc.config.media_type or MediaType.OCI_CONFIG)
    except InputError as exc:
        raise StoreError(f"unreadable image config: {exc.message}", str(doc.config.digest)) from exc
    return LayoutImage(blobs, top, doc, config)


class Layout(BlobReads):
    """An OCI image layout directory, read only: ``index.json`` entries and ``blobs/<alg>/<hex>``."""

    blob_home = "the OCI layout"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        d = Digest(digest)
        return self.root / "blobs" / d.algorithm / d.hex

    def open_blob(self, digest: str) -> BinaryIO:
        """A blob of the layout; InputError if the layout lacks it (an incomplete copy of an image)."""
        if not self.has_blob(digest):
            raise InputError(f"the layout is incomplete: blob {digest} is missing", str(self.root))
        return super().open_blob(digest)

    def entries(self) -> list[Descriptor]:
        """The ``index.json`` entries; InputError if there is no readable, valid one."""
        try:
            raw = (self.root / "index.json").read_bytes()
        except OSError as exc:
            raise InputError("not an OCI layout: no readable index.json", str(self.root)) from exc
        try:
            return list(Index.from_bytes(raw).manifests)
        except InputError as exc:
            raise InputError(f"index.json is invalid: {exc.message}", str(self.root)) from exc

    def source(self, desc: Descriptor) -> LayoutImage | LayoutIndex:
        """The image or index an entry names."""
        return open_layout(self, desc)
