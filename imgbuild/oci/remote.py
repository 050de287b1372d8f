"""A registry's images as :class:`~imgbuild.oci.image.Image` / ``ImageIndex``, and a repository as a ``Sink``.

:func:`open_remote` fetches a reference's manifest (exact bytes, digest checked) and
gives a :class:`RemoteImage` or a :class:`RemoteIndex`; nothing else is fetched until
asked: an index's child manifests when :meth:`RemoteIndex.image` is called, the config
when :attr:`RemoteImage.config` is first read, blobs as resumable streams
(:meth:`~imgbuild.oci.registry.RegistryClient.open_blob`) when a copy reads them.
:func:`for_platform` narrows an index to one platform's image, as a pull does.

:class:`RegistrySink` writes into one repository: a blob the repository has is
skipped, one another repository of the same registry holds is mounted, the others are
uploaded (resumably, see :mod:`imgbuild.oci._upload`); child manifests go up by
digest and the top one under the destination's tag (or its digest).
"""

from __future__ import annotations

from functools import cached_property
from typing import BinaryIO, Callable, Mapping

from imgbuild.errors import ImageNotFound, RegistryError
from imgbuild.oci.image import OnBytes
from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, Platform, parse_document
from imgbuild.oci.registry import RegistryClient
from imgbuild.reference import Reference

__all__ = ["RemoteImage", "RemoteIndex", "RegistrySink", "open_remote", "for_platform", "CONFIG_MAX"]

#: The largest config a registry may hand us; configs are small JSON documents.
CONFIG_MAX = 64 << 20


class RemoteImage:
    """An image in a registry: its manifest is here, its config and blobs are fetched on use."""

    def __init__(self, client: RegistryClient, ref: Reference, descriptor: Descriptor, manifest: Manifest) -> None:
        self.client, self.ref = client, ref
        self.descriptor, self.manifest = descriptor, manifest

    def __repr__(self) -> str:
        return f"RemoteImage({self.ref.normalized!r}, {self.descriptor.digest})"

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        """The layer descriptors, base first."""
        return self.manifest.layers

    @cached_property
    def config(self) -> ImageConfig:
        """The config, fetched once and digest-checked."""
        desc = self.manifest.config
        if desc.size > CONFIG_MAX:
            raise RegistryError(f"image config of {desc.size} bytes is implausibly large", self.ref.normalized)
        with self.open_blob(desc) as fh:
            raw = fh.read()
        desc.digest.verify(raw, f"config of {self.ref.normalized}")
        return ImageConfig.from_bytes(raw, desc.media_type or MediaType.OCI_CONFIG)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """The blob as a stream that resumes after a dropped connection."""
        return self.client.open_blob(self.ref.repository, desc)


class RemoteIndex:
    """An index in a registry: child manifests are fetched when asked for."""

    def __init__(self, client: RegistryClient, ref: Reference, descriptor: Descriptor, index: Index) -> None:
        self.client, self.ref = client, ref
        self.descriptor, self.index = descriptor, index

    def __repr__(self) -> str:
        return f"RemoteIndex({self.ref.normalized!r}, {self.descriptor.digest})"

    def image(self, desc: Descriptor) -> RemoteImage:
        """The child image ``desc`` (its manifest fetched now, digest checked)."""
        raw, media_type = self.client.get_manifest(self.ref.with_digest(str(desc.digest)))
        doc = parse_document(raw, media_type)
        if isinstance(doc, Index):
            raise RegistryError("nested image indexes are not supported", self.ref.normalized)
        return RemoteImage(self.client, self.ref, Descriptor(media_type, Digest.of(raw), len(raw),
                                                             platform=desc.platform), doc)

    def images(self) -> list[RemoteImage]:
        """Every child image (a registry holds them all)."""
        return [self.image(d) for d in self.index.manifests]


def open_remote(client: RegistryClient, ref: Reference) -> RemoteImage | RemoteIndex:
    """The image or index ``ref`` names (its manifest fetched now, digest checked)."""
    raw, media_type = client.get_manifest(ref)
    desc = Descriptor(media_type, Digest.of(raw), len(raw))
    doc = parse_document(raw, media_type)
    if isinstance(doc, Index):
        return RemoteIndex(client, ref, desc, doc)
    return RemoteImage(client, ref, desc, doc)


def for_platform(index: RemoteIndex, platform: Platform | None) -> RemoteImage:
    """The child of ``index`` for ``platform`` (default: this machine); ImageNotFound naming what it has."""
    plat = platform or Platform.current()
    child = index.index.select(plat)
    if child is None:
        have = ", ".join(str(p) for p in index.index.platforms()) or "none"
        raise ImageNotFound(f"no image for platform {plat} (the index has: {have})", index.ref.normalized)
    return index.image(child)


class RegistrySink:
    """One repository of a registry as a copy's sink (``mount_from``: digest -> a repository holding it)."""

    def __init__(self, client: RegistryClient, target: Reference, mount_from: Mapping[str, str] | None = None) -> None:
        self.client, self.target = client, target
        self.mount_from = dict(mount_from or {})

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the repository has the blob (one HEAD)."""
        return self.client.has_blob(self.target.repository, str(desc.digest))

    def put_blob(self, desc: Descriptor, open_blob: Callable[[], BinaryIO], on_bytes: OnBytes) -> str:
        """Mount the blob from another repository (``mounted``) or upload it (``pushed``)."""
        return self.client.push_blob(self.target.repository, desc, open_blob, check_exists=False,
                                     mount_from=self.mount_from.get(str(desc.digest)), on_bytes=on_bytes)

    def put_manifest(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """PUT a child manifest by digest."""
        self.client.put_manifest(self.target.repository, str(desc.digest), raw, desc.media_type)

    def tag(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """PUT the top manifest under the target's tag (by digest when the target names none)."""
        target = name or self.target
        tag = target.tag if target.tag and not target.digest else str(desc.digest)
        self.client.put_manifest(self.target.repository, tag, raw, desc.media_type)
