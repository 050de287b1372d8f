"""The registry/ directory: docker distribution's filesystem storage layout, written directly.

A cluster image carries the container images its cluster needs as a directory a
stock registry (``docker-registry serve`` with ``storage.filesystem.rootdirectory``
pointing at it) serves unchanged. :class:`RegistryDir` writes that layout without
running a registry::

    <root>/docker/registry/v2/blobs/sha256/<xx>/<hex>/data
    <root>/docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
    <root>/docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
    <root>/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
    <root>/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link

A link file holds ``sha256:<hex>`` with no newline. Each blob is stored once however
many repositories use it. Blobs are written by the local store's own code (``_blobio``: temp
file under ``v2/.tmp``, digest verified, fsync, rename), so :func:`imgbuild.oci.transfer.copy` can
stream blobs straight into a RegistryDir (through ``RegistryDirSink``). Manifests are stored
byte for byte (digests stay the originals); a tag link is written last, so a crash
never leaves a tag pointing at content that is not there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from imgbuild.errors import ImageNotFound, InputError, InvalidReference, StoreError
from imgbuild.fsutil import atomic_write
from imgbuild.oci._blobio import BlobReads, BlobWriter, atomic_blob, stream_file, write_bytes
from imgbuild.oci.model import Digest, Index, Manifest, Platform, parse_document
from imgbuild.reference import Reference, parse_reference

__all__ = ["RegistryDir", "TagInfo", "RegistryListing", "repository_name", "list_registry_dir"]


def repository_name(ref: str | Reference) -> str:
    """The repository an image is stored under: its path without the registry host (as sealos does)."""
    r = ref if isinstance(ref, Reference) else parse_reference(ref)
    return r.repository


def _check_repository(name: str) -> str:
    """Validate a repository path through the reference grammar (no '..', no uppercase, no host)."""
    try:
        parsed = parse_reference(f"registry.invalid/{name}", default_tag=False)
    except InvalidReference as exc:
        raise InvalidReference(f"invalid repository name {name!r}", name) from exc
    if parsed.repository != name or parsed.tag or parsed.digest:
        raise InvalidReference(f"invalid repository name {name!r}", name)
    return name


def _check_tag(repository: str, tag: str) -> str:
    """Validate a tag through the reference grammar."""
    try:
        parse_reference(f"registry.invalid/{repository}").with_tag(tag)
    except InvalidReference as exc:
        raise InvalidReference(f"invalid tag {tag!r}", repository) from exc
    return tag


def _write_atomic(path: Path, data: bytes, tmpdir: Path, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` (0644, readable by a registry run as another user) through ``tmpdir``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, tmp_dir=tmpdir, sync=sync)


@dataclass(frozen=True)
class TagInfo:
    """One tag of a repository: what it points at and how big the image is."""

    repository: str
    tag: str
    digest: Digest
    media_type: str
    size: int
    platforms: tuple[str, ...] = ()
    missing: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """As a JSON-ready dict."""
        return {"repository": self.repository, "tag": self.tag, "digest": str(self.digest),
                "mediaType": self.media_type, "size": self.size, "platforms": list(self.platforms),
                "missing": list(self.missing)}


class RegistryDir(BlobReads):
    """A docker distribution filesystem storage tree rooted at ``root`` (the ``registry/`` directory)."""

    blob_home = "the registry directory"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.v2 = self.root / "docker" / "registry" / "v2"

    # ---- paths ---------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """Where the data of ``digest`` lives (whether or not it exists)."""
        d = Digest(digest)
        return self.v2 / "blobs" / d.algorithm / d.hex[:2] / d.hex / "data"

    def _repo(self, repository: str) -> Path:
        return self.v2 / "repositories" / _check_repository(repository)

    def scratch_dir(self) -> Path:
        """The directory for temp files (``v2/.tmp``: same filesystem, outside what a registry reads)."""
        tmp = self.v2 / ".tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create registry directory: {exc.strerror}", str(self.root)) from exc
        return tmp

    # ---- blobs (the blob-writing side shared with Store) ---------------------------------------------
    @contextlib.contextmanager
    def blob_writer(self, expected: str | None = None, size: int | None = None) -> Iterator[BlobWriter]:
        """Stream a blob in; on clean exit verify digest (and size), fsync and rename into place."""
        with atomic_blob(self.scratch_dir(), self.blob_path, expected, size) as writer:
            yield writer

    def write_blob(self, data: bytes, expected: str | None = None) -> Digest:
        """Store ``data`` (verified against ``expected`` if given) and return its digest."""
        digest = Digest(expected) if expected else Digest.of(data)
        if self.has_blob(digest):
            digest.verify(data, where=str(digest))
            return digest
        return write_bytes(self.blob_writer, data, expected)

    def ingest_file(self, path: Path, expected: str | None = None) -> Digest:
        """Stream the file at ``path`` in as a blob."""
        return stream_file(self.blob_writer, path, expected)

    # ---- links ---------------------------------------------------------------------------------
    def _link(self, path: Path, digest: Digest) -> None:
        if path.is_file() and path.read_bytes() == str(digest).encode():
            return
        _write_atomic(path, str(digest).encode(), self.scratch_dir())

    def _read_link(self, path: Path) -> Digest | None:
        try:
            return Digest(path.read_text().strip())
        except FileNotFoundError:
            return None
        except (OSError, InputError) as exc:
            raise StoreError(f"unreadable link file: {exc}", str(path)) from exc

    def link_blob(self, repository: str, digest: str) -> None:
        """Make a stored blob visible in ``repository`` (its ``_layers`` link)."""
        d = Digest(digest)
        if not self.has_blob(d):
            raise StoreError("cannot link a blob that is not stored", f"{repository}@{d}")
        self._link(self._repo(repository) / "_layers" / d.algorithm / d.hex / "link", d)

    def has_layer_link(self, repository: str, digest: str) -> bool:
        """True if ``repository`` links the blob ``digest``."""
        d = Digest(digest)
        return (self._repo(repository) / "_layers" / d.algorithm / d.hex / "link").is_file()

    # ---- manifests -----------------------------------------------------------------------------
    def _revision_link(self, repository: str, digest: Digest) -> Path:
        return self._repo(repository) / "_manifests" / "revisions" / digest.algorithm / digest.hex / "link"

    def has_manifest(self, repository: str, digest: str) -> bool:
        """True if ``repository`` holds the manifest ``digest`` and its blob is stored."""
        d = Digest(digest)
        return self._revision_link(repository, d).is_file() and self.has_blob(d)

    def put_manifest(self, repository: str, tag: str | None, raw: bytes, media_type: str | None = None, *,
                     partial: bool = False) -> Digest:
        """Store a manifest or index byte for byte in ``repository``, tag it (if ``tag``) and return its digest.

        Every blob an image manifest references must already be stored (they get ``_layers``
        links); every child of an index must already be a revision of ``repository`` — or, with
        ``partial``, at least one (an index kept for its digest with only this platform's image).
        """
        _check_repository(repository)
        if tag is not None:
            _check_tag(repository, tag)
        doc = parse_document(raw, media_type)
        if isinstance(doc, Manifest):
            for blob in doc.blobs():
                self.link_blob(repository, blob.digest)
        else:
            absent = [c.digest for c in doc.manifests if not self.has_manifest(repository, c.digest)]
            if absent and (not partial or len(absent) == len(doc.manifests)):
                raise StoreError("index child manifest not stored", f"{repository}@{absent[0]}")
        digest = self.write_blob(raw)
        self._link(self._revision_link(repository, digest), digest)
        if tag is not None:
            self.tag(repository, tag, digest)
        return digest

    def tag(self, repository: str, tag: str, digest: str) -> None:
        """Point ``repository:tag`` at a manifest already stored in it (index link first, current last)."""
        d = Digest(digest)
        _check_tag(repository, tag)
        if not self.has_manifest(repository, d):
            raise StoreError("cannot tag a manifest that is not stored", f"{repository}@{d}")
        tagdir = self._repo(repository) / "_manifests" / "tags" / tag
        self._link(tagdir / "index" / d.algorithm / d.hex / "link", d)
        self._link(tagdir / "current" / "link", d)

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The exact bytes and media type of a manifest, by tag or digest; ImageNotFound if absent."""
        digest = Digest(reference) if ":" in reference else self.resolve(repository, reference)
        if not self.has_manifest(repository, digest):
            raise ImageNotFound("manifest not in registry directory", f"{repository}@{digest}")
        raw = self.read_blob(digest)
        return raw, parse_document(raw).media_type

    # ---- listing -------------------------------------------------------------------------------
    def repositories(self) -> list[str]:
        """Every repository that has at least one manifest revision, sorted."""
        base = self.v2 / "repositories"
        if not base.is_dir():
            return []
        found = []
        for dirpath, dirnames, _ in os.walk(base):
            if "_manifests" in dirnames:
                found.append(Path(dirpath).relative_to(base).as_posix())
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(found)

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository`` that point somewhere, sorted."""
        tagdir = self._repo(repository) / "_manifests" / "tags"
        if not tagdir.is_dir():
            return []
        return sorted(t.name for t in tagdir.iterdir() if (t / "current" / "link").is_file())

    def resolve(self, repository: str, tag: str) -> Digest:
        """The manifest digest ``repository:tag`` points at; ImageNotFound if there is no such tag."""
        _check_tag(repository, tag)
        d = self._read_link(self._repo(repository) / "_manifests" / "tags" / tag / "current" / "link")
        if d is None:
            raise ImageNotFound("no such tag in registry directory", f"{repository}:{tag}")
        return d

    def lookup(self, ref: str | Reference) -> Digest | None:
        """The digest stored for an image reference (by its digest or tag) if complete here, else None."""
        r = ref if isinstance(ref, Reference) else parse_reference(ref)
        repo = repository_name(r)
        try:
            digest = Digest(r.digest) if r.digest else self.resolve(repo, r.tag or "latest")
        except ImageNotFound:
            return None
        if r.digest and r.tag and self._tag_target(repo, r.tag) != digest:
            return None
        return digest if not self.missing(repo, digest) else None

    def _tag_target(self, repository: str, tag: str) -> Digest | None:
        return self._read_link(self._repo(repository) / "_manifests" / "tags" / tag / "current" / "link")

    def missing(self, repository: str, digest: str) -> list[str]:
        """What a stored image lacks: absent manifests or blobs reachable from ``digest`` (empty = complete).

        An index counts as complete when the children it has revisions for are (a partial index
        keeps only some platforms on purpose); with no child at all, every child is missing.
        """
        d = Digest(digest)
        if not self.has_manifest(repository, d):
            return [str(d)]
        doc = parse_document(self.read_blob(d))
        if isinstance(doc, Index):
            present = [c.digest for c in doc.manifests if self._revision_link(repository, c.digest).is_file()]
            if not present:
                return [str(c.digest) for c in doc.manifests]
            return [m for child in present for m in self.missing(repository, child)]
        return [str(b.digest) for b in doc.blobs()
                if not (self.has_blob(b.digest) and self.has_layer_link(repository, b.digest))]

    def describe(self, repository: str, tag: str) -> TagInfo:
        """Size (unique blobs + manifests), platforms and completeness of ``repository:tag``."""
        digest = self.resolve(repository, tag)
        raw, media_type = self.get_manifest(repository, digest)
        doc = parse_document(raw, media_type)
        sizes: dict[str, int] = {str(digest): len(raw)}
        platforms: list[str] = []
        children = [(c.digest, c.platform) for c in doc.manifests] if isinstance(doc, Index) else [(digest, None)]
        for child, plat in children:
            if child != digest:
                if not self.has_manifest(repository, child):
                    continue
                sizes[str(child)] = self.blob_size(child)
            man = parse_document(self.read_blob(child))
            if isinstance(man, Manifest):
                sizes.update({str(b.digest): b.size for b in man.blobs()})
                if plat is not None and plat.os != "unknown":
                    platforms.append(str(plat))
                elif plat is None:
                    platforms.extend(self._config_platform(man))
        return TagInfo(repository, tag, digest, media_type, sum(sizes.values()), tuple(platforms),
                       tuple(self.missing(repository, digest)))

    def _config_platform(self, man: Manifest) -> list[str]:
        if not self.has_blob(man.config.digest):
            return []
        try:
            data = json.loads(self.read_blob(man.config.digest))
            return [str(Platform(data.get("os", ""), data.get("architecture", ""), data.get("variant")))]
        except (ValueError, StoreError, AttributeError):
            return []

    def listing(self) -> list[TagInfo]:
        """Every tag of every repository, described."""
        return [self.describe(repo, tag) for repo in self.repositories() for tag in self.tags(repo)]

    def total_size(self) -> int:
        """Bytes of all stored blobs (each counted once)."""
        base = self.v2 / "blobs"
        if not base.is_dir():
            return 0
        return sum(p.stat().st_size for p in base.rglob("data") if p.is_file())

    def cleanup_tmp(self) -> int:
        """Remove leftover temp files from interrupted writes (none may be running); return how many."""
        tmp = self.v2 / ".tmp"
        if not tmp.is_dir():
            return 0
        n = 0
        for p in tmp.iterdir():
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                n += 1
        return n


@dataclass(frozen=True)
class RegistryListing:
    """What a registry/ directory holds: its root, one :class:`TagInfo` per tag, and its size on disk."""

    root: Path
    images: list[TagInfo]
    total_size: int

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return {"root": str(self.root), "images": [t.to_dict() for t in self.images], "totalSize": self.total_size}


def list_registry_dir(directory: Path | str) -> RegistryListing:
    """The tags of an existing registry/ directory (an empty directory is a new, empty registry)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("registry directory does not exist", str(directory))
    rd = RegistryDir(directory)
    if not rd.v2.is_dir() and any(directory.iterdir()):  # other content is a mistake, not a registry
        raise InputError("not a registry directory: no docker/registry/v2 inside", str(directory))
    return RegistryListing(rd.root, rd.listing(), rd.total_size())
