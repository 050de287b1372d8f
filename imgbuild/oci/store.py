"""The local image store: one OCI image layout, by default a Home's ``store/`` (:func:`open_store`).

A Store opened with :func:`open_store` carries its :class:`~imgbuild.home.Home`, and
everything that keeps files for the images in it (unpacked layers, listings, build-step
entries, mounts, registry credentials) takes their paths from that Home, never from
``$IMGBUILD_HOME``. A bare ``Store(path)`` (a scratch layout) has no Home: what needs one
says so (:meth:`Store.needs_home`).

The layout is the standard one (``oci-layout``, ``index.json``,
``blobs/<alg>/<hex>``), so skopeo, umoci or crane read it directly: a tag is an
``index.json`` entry annotated ``org.opencontainers.image.ref.name`` with the
full normalised reference (``docker.io/library/app:v1``); an entry without that
annotation is an untagged image kept alive (a loaded image that had no name).

Never half-written: a blob is streamed to a temp file under ``.tmp/<owner>/``
(:mod:`imgbuild.scratch`: each process's own directory, swept by gc once that
process is gone, however it died), hashed,
checked against the digest it was announced with, fsynced and renamed into
place; ``index.json`` is replaced the same way, so a reader (who takes no lock)
sees the old or the new state, never a partial one. Writers of ``index.json``
serialise on an exclusive ``flock`` of ``.lock`` (:meth:`Store.lock`).
A process that writes a blob holds a shared lock on ``.gc.lock`` from then
until it next tags (:meth:`Store.tag`, :meth:`Store.add_untagged`), or for the
span of a :meth:`Store.writing` block; :meth:`Store.gc` removes every
unreachable blob when no such importer exists, and only those older than an
hour while one does, so a concurrent gc never deletes an import in progress;
a blob an importer finds already stored and counts on is claimed the same way
(:meth:`Store.claim_blob`: made fresh under the lock, a lease until the tag).
(A process that imports in one thread while another thread tags should wrap
each import in :meth:`Store.writing`.)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from imgbuild.errors import ImageNotFound, InputError, InvalidReference, StoreError
from imgbuild.home import Home
from imgbuild.oci import _maintain
from imgbuild.fsutil import atomic_write
from imgbuild.oci._blobio import BlobReads, BlobWriter, atomic_blob, stream_file, write_bytes
from imgbuild.locks import exclusive_lock, shared_lock
from imgbuild.oci._maintain import TEMP_MAX_AGE
from imgbuild.oci.model import (
    REF_NAME, Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, Platform, parse_document,
)
from imgbuild.reference import Reference, parse_reference
from imgbuild.scratch import owned_dir

__all__ = ["Store", "BlobWriter", "Image", "open_store", "REF_NAME", "TEMP_MAX_AGE"]

_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_HEX = frozenset("0123456789abcdef")


class Store(BlobReads):
    """An OCI image layout used as imgbuild's local image store."""

    def __init__(self, root: Path, home: Home | None = None) -> None:
        self.root = Path(root)
        self.home = home

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def needs_home(self, what: str) -> Home:
        """The Home this store carries; StoreError naming ``what`` needs it if the store was opened without one."""
        if self.home is None:
            raise StoreError(f"{what} needs an imgbuild home: open the store with open_store(home)", str(self.root))
        return self.home

    # -- layout, locks, atomic files -------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        """This process's temp directory, inside the store (a rename into place is atomic) and owned (see gc)."""
        return owned_dir(self.root / ".tmp")

    def _ensure_layout(self) -> None:
        if (self.root / "oci-layout").is_file() and (self.root / "index.json").is_file():
            return
        try:
            for d in (self.root / "blobs" / "sha256", self.tmp_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store: {exc.strerror}", str(self.root)) from exc
        with self.lock():
            if not (self.root / "oci-layout").is_file():
                self._atomic_write(self.root / "oci-layout", _LAYOUT)
            if not (self.root / "index.json").is_file():
                self._write_index([])

    def lock(self):
        """Exclusive cross-process lock for writers of ``index.json`` (re-entrant per thread)."""
        return exclusive_lock(self.root / ".lock").hold()

    def writing(self):
        """Shared lock an importer holds from its first blob write to its tag, so gc spares its blobs."""
        return self._gc_lock().hold()

    def _gc_lock(self):
        return shared_lock(self.root / ".gc.lock")

    def _atomic_write(self, path: Path, data: bytes) -> None:
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data, tmp_dir=self.tmp_dir, sync_dir=True)
        except OSError as exc:
            raise StoreError(f"cannot write {path.name}: {exc.strerror}", str(path)) from exc

    # -- blobs ------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        d = Digest(digest)
        return self.root / "blobs" / d.algorithm / d.hex

    def write_blob(self, data: bytes, expected: str | None = None) -> Digest:
        """Store ``data`` as a blob (checked against ``expected`` if given) and return its digest."""
        return write_bytes(self.blob_writer, data, expected)

    @contextmanager
    def blob_writer(self, expected: str | None = None, size: int | None = None) -> Iterator[BlobWriter]:
        """Stream one blob in; commits on a clean exit, stores nothing on error or digest/size mismatch."""
        self._ensure_layout()
        if expected:
            Digest(expected)  # an invalid digest fails before we take the gc lock
        self._gc_lock().arm()  # until our next tag: a concurrent gc spares what we write now
        # a blob already stored is kept and touched: fresh again, a concurrent gc's grace period spares it
        with self.writing(), atomic_blob(self.tmp_dir, self.blob_path, expected, size,
                                         on_existing=os.utime, sync_dir=True) as writer:
            yield writer

    def ingest_file(self, path: Path, expected: str | None = None) -> Digest:
        """Stream a file into the store as a blob (skipped when ``expected`` is already stored, and claimed)."""
        if expected and self.claim_blob(expected):
            return Digest(expected)
        return stream_file(self.blob_writer, path, expected)

    def claim_blob(self, digest: str) -> bool:
        """True if the blob is stored; then leased to this importer until its next tag, so a concurrent gc spares it.

        The lease is containerd's idea done with what gc already honours: the caller joins the
        importers (the shared ``.gc.lock``, armed as :meth:`blob_writer` does) and the blob is made
        fresh under the store lock, so gc either sees it fresh and keeps it or has already removed it
        (then this returns False and the caller fetches it again).
        """
        if not self.has_blob(digest):
            return False
        self._gc_lock().arm()
        with self.lock():
            try:
                os.utime(self.blob_path(digest))
            except FileNotFoundError:
                return False
        return True

    # -- documents --------------------------------------------------------------------------------

    def put_manifest(self, doc: Manifest | Index) -> Descriptor:
        """Store a manifest or index under its exact bytes and return its descriptor."""
        self.write_blob(doc.raw, doc.digest)
        return doc.descriptor()

    def put_config(self, cfg: ImageConfig) -> Descriptor:
        """Store an image config under its exact bytes and return its descriptor."""
        self.write_blob(cfg.raw, cfg.digest)
        return cfg.descriptor()

    def get_document(self, digest: str) -> Manifest | Index:
        """Read and parse a stored manifest or index."""
        raw = self.read_blob(digest)
        try:
            return parse_document(raw)
        except InputError as exc:
            raise StoreError(f"stored manifest is unreadable: {exc.message}", str(digest)) from exc

    def get_config(self, desc: Descriptor) -> ImageConfig:
        """Read and parse a stored image config."""
        raw = self.read_blob(desc.digest)
        try:
            return ImageConfig.from_bytes(raw, desc.media_type or MediaType.OCI_CONFIG)
        except InputError as exc:
            raise StoreError(f"stored image config is unreadable: {exc.message}", str(desc.digest)) from exc

    def missing_blobs(self, desc: Descriptor) -> list[Digest]:
        """Blobs that ``desc`` needs and the store lacks (children of an index may be absent: other platforms)."""
        if not self.has_blob(desc.digest):
            return [desc.digest]
        doc = self.get_document(desc.digest)
        if isinstance(doc, Manifest):
            return [b.digest for b in doc.blobs() if not self.has_blob(b.digest)]
        missing: list[Digest] = []
        for child in doc.manifests:
            if self.has_blob(child.digest):
                missing += self.missing_blobs(child)
        return missing

    # -- index.json and tags ----------------------------------------------------------------------

    def entries(self) -> list[Descriptor]:
        """Every ``index.json`` entry, tagged or not, in file order."""
        path = self.root / "index.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot read index.json: {exc.strerror}", str(path)) from exc
        try:
            return list(Index.from_bytes(raw).manifests)
        except InputError as exc:
            raise StoreError(f"index.json is corrupt: {exc.message}", str(path)) from exc

    def _write_index(self, entries: list[Descriptor]) -> None:
        self._atomic_write(self.root / "index.json", Index.build(entries).raw)

    def tag(self, ref: str | Reference, desc: Descriptor) -> None:
        """Point the tag ``ref`` at ``desc`` (replacing the tag if it exists); every needed blob must be stored."""
        name = _tag_name(ref)
        self._ensure_layout()
        with self.lock():
            missing = self.missing_blobs(desc)
            if missing:
                raise StoreError(f"cannot tag an incomplete image: blob {missing[0]} is missing", name)
            keep = [e for e in self.entries()
                    if e.annotations.get(REF_NAME) != name and not (REF_NAME not in e.annotations and e.digest == desc.digest)]
            entry = Descriptor(desc.media_type, desc.digest, desc.size, {REF_NAME: name}, desc.platform, desc.urls)
            self._write_index([*keep, entry])
        self._gc_lock().disarm()

    def add_untagged(self, desc: Descriptor) -> None:
        """Keep an image with no tag alive (listed as ``<none>``) unless some entry already holds it."""
        self._ensure_layout()
        with self.lock():
            entries = self.entries()
            if not any(e.digest == desc.digest for e in entries):
                entry = Descriptor(desc.media_type, desc.digest, desc.size, {}, desc.platform, desc.urls)
                self._write_index([*entries, entry])
        self._gc_lock().disarm()

    def untag(self, ref: str | Reference) -> Descriptor:
        """Remove the tag ``ref`` and return what it pointed at (blobs stay until :meth:`gc`)."""
        name = _tag_name(ref)
        with self.lock():
            entries = self.entries()
            hit = [e for e in entries if e.annotations.get(REF_NAME) in (name, str(ref))]
            if not hit:
                raise ImageNotFound("no such image tag in the local store", name)
            self._write_index([e for e in entries if e not in hit])
            return hit[0]

    def remove_image(self, digest: str) -> list[Descriptor]:
        """Remove every ``index.json`` entry (all tags) pointing at ``digest``; return them."""
        with self.lock():
            entries = self.entries()
            hit = [e for e in entries if e.digest == digest]
            if hit:
                self._write_index([e for e in entries if e.digest != digest])
            return hit

    def tags(self) -> list[tuple[Reference, Descriptor]]:
        """Every tag with a parseable reference, in ``index.json`` order."""
        out = []
        for e in self.entries():
            name = e.annotations.get(REF_NAME)
            if name:
                try:
                    out.append((parse_reference(name), e))
                except InvalidReference:
                    continue
        return out

    # -- resolution ---------------------------------------------------------------------------------

    def resolve(self, ref: str | Reference) -> Descriptor:
        """Find an image by tag, by digest (``sha256:...``, ``name@sha256:...``) or by a unique ID prefix."""
        text = str(ref).strip()
        entries = self.entries()
        if isinstance(ref, str) and text.startswith(("sha256:", "sha512:")):
            try:
                digest = Digest(text)
            except InputError:
                return self._by_prefix(entries, text.split(":", 1)[1], text)
            return self._by_digest(entries, digest, text)
        try:
            parsed = ref if isinstance(ref, Reference) else parse_reference(text)
        except InvalidReference:
            parsed = None
        if parsed is not None and parsed.digest:
            return self._by_digest(entries, Digest(parsed.digest), text)
        if parsed is not None:
            for e in entries:
                if e.annotations.get(REF_NAME) in (parsed.normalized, text):
                    return e
        if len(text) >= 4 and set(text) <= _HEX:
            return self._by_prefix(entries, text, text)
        raise ImageNotFound("no such image in the local store", parsed.normalized if parsed else text)

    def _by_digest(self, entries: list[Descriptor], digest: Digest, where: str) -> Descriptor:
        for e in entries:
            if e.digest == digest:
                return e
        for desc, manifest in self._manifests(entries):
            if manifest.config.digest == digest:
                return desc
        if self.has_blob(digest):
            try:
                doc = self.get_document(digest)
            except StoreError:
                doc = None
            if doc is not None:
                return doc.descriptor()
        raise ImageNotFound("no such image in the local store", where)

    def _by_prefix(self, entries: list[Descriptor], prefix: str, where: str) -> Descriptor:
        found: dict[str, Descriptor] = {}
        for desc, manifest in self._manifests(entries):
            if desc.digest.hex.startswith(prefix) or manifest.config.digest.hex.startswith(prefix):
                found.setdefault(desc.digest, desc)
        for e in entries:
            if e.digest.hex.startswith(prefix):
                found.setdefault(e.digest, e)
        if len(found) > 1:
            raise InputError(f"ambiguous image ID prefix: {len(found)} images match", where)
        if not found:
            raise ImageNotFound("no such image in the local store", where)
        return next(iter(found.values()))

    def _manifests(self, descs: list[Descriptor]) -> Iterator[tuple[Descriptor, Manifest]]:
        """Each stored image manifest reachable from ``descs`` (through indexes), with its descriptor."""
        for desc in descs:
            if not self.has_blob(desc.digest):
                continue
            doc = self.get_document(desc.digest)
            if isinstance(doc, Manifest):
                yield desc, doc
            else:
                yield from self._manifests(list(doc.manifests))

    def image(self, ref: str | Reference | Descriptor, platform: Platform | None = None) -> "Image":
        """The image ``ref`` names; an index is narrowed to ``platform`` (default: this machine's)."""
        desc = ref if isinstance(ref, Descriptor) else self.resolve(ref)
        doc = self.get_document(desc.digest)
        index = None
        if isinstance(doc, Index):
            index, plat = doc, platform or Platform.current()
            child = doc.select(plat)
            if child is None or not self.has_blob(child.digest):
                have = ", ".join(str(p) for p in doc.platforms()) or "none"
                raise ImageNotFound(f"no {plat} image in the local store (platforms: {have})", str(ref))
            doc = self.get_document(child.digest)
            if not isinstance(doc, Manifest):
                raise StoreError("nested image indexes are not supported", str(child.digest))
        config = self.get_config(doc.config)
        if platform is not None and not platform.matches(config.platform):
            raise ImageNotFound(f"image is {config.platform}, not {platform}", str(ref))
        return Image(self, doc, config, index)

    # -- maintenance (see imgbuild.oci._maintain) ------------------------------------------------------

    def reachable(self) -> set[str]:
        """Every blob digest some ``index.json`` entry reaches (stored or not)."""
        return _maintain.reachable(self)

    def gc(self) -> tuple[int, int]:
        """Remove blobs no tag reaches and stale temp files; return (blobs removed, bytes freed)."""
        return _maintain.gc(self)

    def verify(self, repair: bool = False) -> list[str]:
        """Re-hash every blob and check every tag's blobs; return the problems (removing corrupt blobs if ``repair``)."""
        return _maintain.verify(self, repair)


def _tag_name(ref: str | Reference) -> str:
    r = ref if isinstance(ref, Reference) else parse_reference(str(ref))
    if r.tag is None:
        raise InputError("a tag needs a name with a tag, not only a digest", r.normalized)
    return Reference(r.registry, r.repository, r.tag).normalized


@dataclass(frozen=True)
class Image:
    """A read-only image value in a store: manifest, config, and the index it was chosen from."""

    store: Store
    manifest: Manifest
    config: ImageConfig
    index: Index | None = field(default=None)

    @property
    def digest(self) -> Digest:
        """The manifest digest (the IMAGE ID shown is the config digest's first 12 hex digits)."""
        return self.manifest.digest

    @property
    def id(self) -> Digest:
        """The image ID: the config digest, as docker counts it."""
        return self.manifest.config.digest

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        """The layer descriptors, base first."""
        return self.manifest.layers

    def open_layer(self, desc: Descriptor) -> BinaryIO:
        """The raw (compressed) blob stream of one layer."""
        return self.store.open_blob(desc.digest)

    @property
    def descriptor(self) -> Descriptor:
        """The manifest's descriptor, with its platform when the image was picked from an index."""
        child = next((d for d in self.index.manifests if d.digest == self.digest), None) if self.index else None
        return Descriptor(self.manifest.media_type, self.digest, self.manifest.size,
                          platform=child.platform if child else None)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """The stored bytes of the config or a layer (the :class:`imgbuild.oci.image.Image` protocol)."""
        return self.store.open_blob(desc.digest)

    def size(self) -> int:
        """Config plus layers, compressed sizes."""
        return self.manifest.config.size + sum(d.size for d in self.manifest.layers)


def open_store(home: Home) -> Store:
    """The image store of ``home``, carrying that Home for its caches, mounts and credentials."""
    return Store(home.store, home=home)
