"""Save images from the store to oci-archive / docker-archive files, and load them back.

An **oci-archive** is a tar of an OCI image layout: ``oci-layout``, ``index.json``
(entries named by ``org.opencontainers.image.ref.name`` with the full reference)
and ``blobs/sha256/<hex>``, the blobs copied unchanged so digests survive.
A **docker-archive** is what ``docker load`` accepts: ``manifest.json``
(``Config``, ``RepoTags``, ``Layers``), ``repositories``, ``<hex>.json`` config
and ``<diffid-hex>.tar`` layers, always uncompressed (docker cannot read zstd),
so the file name is the diffID the config promises.

Both directions go through the one copy (:func:`imgbuild.oci.transfer.copy_each`):
saving an oci-archive copies the store's images into a sink that writes tar members
(blobs digest-checked as they pass); loading copies the images an archive holds
(:func:`open_archive`: oci-archive or docker-archive, plain or compressed, or an OCI
layout directory) into the store. Member names are checked (no absolute paths, no
``..``), blobs stream from the archive file into the store (digest-checked); a
member nothing names is skipped (never read, never kept), and a compressed archive
expands only as far as the caller's :class:`~imgbuild.rootfs.policy.UnpackPolicy`
allows. A
docker-archive becomes an OCI image: config bytes kept exactly (same IMAGE ID),
layers stored as they are, a new OCI manifest. A docker-archive is written by
converting layers, not by a copy. Archives are written to a temp file beside the
target and renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

import zstandard

from imgbuild.errors import DigestMismatch, ImgbuildError, InputError, InvalidReference, StoreError
from imgbuild.oci._tarblobs import TarBlobs, open_tar
from imgbuild.oci.image import BlobSource, Layout, LayoutImage, OnBytes, Source, is_index, open_layout
from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, MediaType
from imgbuild.oci.store import REF_NAME, Image, Store
from imgbuild.oci.transfer import StoreSink, copy_each
from imgbuild.oci.validate import HashingReader
from imgbuild.reference import Reference, parse_reference
from imgbuild.rootfs.policy import DEFAULT_POLICY, UnpackPolicy
from imgbuild.scratch import pid_prefix, sweep_pid_files

__all__ = ["FORMATS", "Loaded", "ArchiveEntry", "save", "load", "open_archive", "save_oci_archive",
           "save_docker_archive"]

FORMATS = ("oci-archive", "docker-archive")
CONTAINERD_NAME = "io.containerd.image.name"
_CHUNK = 1 << 20
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


@dataclass(frozen=True)
class Loaded:
    """One image a load brought into the store: its tags (empty if untagged) and descriptor."""

    names: tuple[str, ...]
    descriptor: Descriptor


@dataclass(frozen=True)
class ArchiveEntry:
    """One image an archive holds: the name it carries (None: untagged), its descriptor, and the image itself."""

    name: Reference | None
    descriptor: Descriptor
    source: Source


# ----------------------------------------------------------------------------------------- save


def save(store: Store, refs: Sequence[str], out: Path, format: str = "oci-archive") -> None:
    """Write the images ``refs`` to ``out`` as an ``oci-archive`` or ``docker-archive``."""
    if format not in FORMATS:
        raise InputError(f"unknown archive format {format!r}: expected {' or '.join(FORMATS)}")
    if not refs:
        raise InputError("save needs at least one image")
    (save_oci_archive if format == "oci-archive" else save_docker_archive)(store, refs, out)


def _named(store: Store, ref: str) -> tuple[str | None, Descriptor]:
    """The resolved descriptor of ``ref`` and the tag it was named by (None when given by ID or digest)."""
    desc = store.resolve(ref)
    try:
        parsed = parse_reference(ref)
    except InvalidReference:
        return None, desc
    name = desc.annotations.get(REF_NAME)
    return (name if name == parsed.normalized else None), desc


@contextlib.contextmanager
def _atomic_tar(out: Path) -> Iterator[tarfile.TarFile]:
    """A tar writer onto a temp file beside ``out``, renamed to ``out`` only when complete."""
    out = Path(out)
    try:
        sweep_pid_files(out.parent, f".{out.name}.tmp-")  # what a killed save of the same file left
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=pid_prefix(f".{out.name}.tmp-"))
    except OSError as exc:
        raise StoreError(f"cannot write archive: {exc.strerror}", str(out)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                yield tar
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StoreError(f"cannot write archive: {exc.strerror or exc}", str(out)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _add(tar: tarfile.TarFile, name: str, size: int, fileobj: BinaryIO | None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, mode, 0, kind
    info.uname = info.gname = ""
    tar.addfile(info, fileobj)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _add(tar, name, len(data), io.BytesIO(data))


def _local(store: Store, desc: Descriptor) -> Source:
    """The image or index ``desc``; an index missing platforms locally becomes this machine's image."""
    source = open_layout(store, desc)
    if is_index(source) and any(not store.has_blob(c.digest) for c in source.index.manifests):  # type: ignore[union-attr]
        return store.image(desc)
    return source


class _OciArchiveSink:
    """An oci-archive being written, as a copy's sink: each blob once as a member, digest-checked as it passes."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.entries: list[Descriptor] = []
        self._written: set[str] = set()
        self._lock = threading.Lock()

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the archive already holds the blob."""
        return str(desc.digest) in self._written

    def put_blob(self, desc: Descriptor, open_blob: Callable[[], BinaryIO], on_bytes: OnBytes) -> str:
        """Add the blob as ``blobs/<alg>/<hex>`` (one at a time), checking its digest."""
        with self._lock, open_blob() as fh:
            reader = HashingReader(fh, desc.digest.algorithm)
            _add(self.tar, f"blobs/{desc.digest.algorithm}/{desc.digest.hex}", desc.size, reader)  # type: ignore[arg-type]
            if reader.digest() != desc.digest:
                raise DigestMismatch(desc.digest, reader.digest(), f"blob {desc.digest} in the store")
            self._written.add(str(desc.digest))
        on_bytes(desc.size)
        return "saved"

    def put_manifest(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Add a child manifest as a blob."""
        with self._lock:
            if str(desc.digest) not in self._written:
                _add_bytes(self.tar, f"blobs/{desc.digest.algorithm}/{desc.digest.hex}", raw)
                self._written.add(str(desc.digest))

    def tag(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Add the top document and an ``index.json`` entry naming it."""
        self.put_manifest(desc, raw, name)
        entry = Descriptor(desc.media_type, desc.digest, desc.size, {REF_NAME: name.normalized} if name else {},
                           desc.platform)
        if entry not in self.entries:
            self.entries.append(entry)


def save_oci_archive(store: Store, refs: Sequence[str], out: Path) -> None:
    """Write ``refs`` as a tar of an OCI layout; tags become ref.name annotations with the full reference."""
    sources = []
    for ref in refs:
        name, desc = _named(store, ref)
        sources.append((_local(store, desc), parse_reference(name) if name else None))
    with _atomic_tar(out) as tar:
        _add_bytes(tar, "oci-layout", _LAYOUT)
        for d in ("blobs", "blobs/sha256"):
            _add(tar, d, 0, None, 0o755, tarfile.DIRTYPE)
        sink = _OciArchiveSink(tar)
        copy_each(sources, sink, jobs=1, verb="save")
        _add_bytes(tar, "index.json", Index.build(sink.entries).raw)


def save_docker_archive(store: Store, refs: Sequence[str], out: Path) -> None:
    """Write ``refs`` as a docker-archive (``docker load`` format) with uncompressed layers."""
    images: dict[str, tuple[Image, list[str]]] = {}
    for ref in refs:
        name, desc = _named(store, ref)
        img = store.image(desc)
        tags = images.setdefault(img.id, (img, []))[1]
        if name and name not in tags:
            tags.append(name)
    written: set[str] = set()
    items, repositories = [], {}
    with _atomic_tar(out) as tar:
        for img, names in images.values():
            layer_files = [_docker_layer(store, img, i, tar, written) for i in range(len(img.layers))]
            config_name = f"{img.id.hex}.json"
            if config_name not in written:
                _add_bytes(tar, config_name, img.config.raw)
                written.add(config_name)
            familiar = [parse_reference(n).familiar for n in names]
            items.append({"Config": config_name, "RepoTags": familiar, "Layers": layer_files})
            for n in names:
                r = parse_reference(n)
                repo = Reference(r.registry, r.repository).familiar
                if layer_files:
                    repositories.setdefault(repo, {})[r.tag] = layer_files[-1].removesuffix(".tar")
        _add_bytes(tar, "manifest.json", json.dumps(items, separators=(",", ":")).encode())
        _add_bytes(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


def _docker_layer(store: Store, img: Image, i: int, tar: tarfile.TarFile, written: set[str]) -> str:
    """Add layer ``i`` of ``img`` as ``<diffid-hex>.tar`` (decompressing if needed); return its name."""
    desc = img.layers[i]
    diff_ids = img.config.diff_ids
    expected = diff_ids[i] if i < len(diff_ids) else None
    if desc.media_type in (MediaType.OCI_LAYER, "application/vnd.docker.image.rootfs.diff.tar"):
        name = f"{desc.digest.hex}.tar"
        if name not in written:
            with img.open_blob(desc) as fh:
                _add(tar, name, desc.size, fh)
            written.add(name)
        return name
    from imgbuild.oci.layer import open_layer

    with tempfile.TemporaryFile(dir=store.tmp_dir) as spool:
        h, size = (expected or Digest.of(b"")).hasher(), 0
        try:
            with img.open_blob(desc) as raw:
                src = open_layer(raw, desc.media_type)
                while chunk := src.read(_CHUNK):
                    spool.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError, ImgbuildError) as exc:
            raise StoreError(f"cannot decompress layer: {exc}", str(desc.digest)) from exc
        diff_id = f"{h.name}:{h.hexdigest()}"
        if expected and diff_id != expected:
            raise DigestMismatch(expected, diff_id, f"layer {i} of {img.digest} (diffID)")
        name = f"{diff_id.split(':', 1)[1]}.tar"
        if name not in written:
            spool.seek(0)
            _add(tar, name, size, spool)
            written.add(name)
        return name


# ----------------------------------------------------------------------------------------- load


def load(store: Store, path: Path, policy: UnpackPolicy | None = None) -> list[Loaded]:
    """Load every image of an oci-archive, docker-archive (tar or tar.gz) or OCI layout directory.

    A compressed archive expands at most as far as ``policy`` allows (default: :data:`DEFAULT_POLICY`).
    """
    with store.writing(), open_archive(Path(path), store.tmp_dir, policy or DEFAULT_POLICY) as entries:
        copied = copy_each([(e.source, e.name) for e in entries], StoreSink(store), verb="load")
    loaded: dict[str, tuple[Descriptor, list[str]]] = {}
    for entry, result in zip(entries, copied.results):
        names = loaded.setdefault(str(result.digest), (entry.descriptor, []))[1]  # type: ignore[union-attr]
        if entry.name is not None and entry.name.normalized not in names:
            names.append(entry.name.normalized)
    return [Loaded(tuple(names), desc) for desc, names in loaded.values()]


@contextlib.contextmanager
def open_archive(path: Path, scratch: Path, policy: UnpackPolicy | None = None) -> Iterator[list[ArchiveEntry]]:
    """The images an oci-archive, docker-archive or OCI layout directory holds, readable inside the block.

    A compressed archive is decompressed into ``scratch`` first (removed on exit), no further than
    ``policy`` allows; members no image uses are skipped. An entry named by a bare tag (``v1``) or
    by nothing is untagged.
    """
    if Path(path).is_dir():
        layout = Layout(path)
        yield _oci_entries(layout, layout.entries(), str(path))
        return
    with open_tar(Path(path), scratch, policy) as blobs:
        if "index.json" in blobs.members and ("oci-layout" in blobs.members or "manifest.json" not in blobs.members):
            entries = _oci_entries(blobs, _index_entries(blobs), blobs.where)
        elif "manifest.json" in blobs.members:
            entries = _docker_entries(blobs)
        else:
            raise InputError("not an oci-archive or docker-archive: no index.json or manifest.json", str(path))
        yield entries


def _entry_ref(entry: Descriptor) -> Reference | None:
    """The tagged reference an index entry names, or None (a bare tag like ``v1`` names no repository)."""
    name = entry.annotations.get(CONTAINERD_NAME) or entry.annotations.get(REF_NAME)
    if not name or ("/" not in name and ":" not in name):
        return None
    try:
        ref = parse_reference(name)
    except InvalidReference:
        return None
    return ref if ref.tag else None


def _index_entries(blobs: TarBlobs) -> tuple[Descriptor, ...]:
    try:
        return Index.from_bytes(blobs.read_member("index.json")).manifests
    except InputError as exc:
        raise InputError(f"index.json is invalid: {exc.message}", blobs.where) from exc


def _oci_entries(blobs: BlobSource, entries: Sequence[Descriptor], where: str) -> list[ArchiveEntry]:
    """The images ``index.json`` entries name (each entry's manifest read and checked now)."""
    out = []
    for entry in entries:
        if not blobs.has_blob(entry.digest):
            raise InputError(f"archive is incomplete: blob {entry.digest} is missing", where)
        out.append(ArchiveEntry(_entry_ref(entry), entry, open_layout(blobs, entry)))
    return out


def _docker_entries(blobs: TarBlobs) -> list[ArchiveEntry]:
    """Each ``manifest.json`` item as an OCI image (config kept, layers as they are), once per RepoTag."""
    try:
        items = json.loads(blobs.read_member("manifest.json"))
        assert isinstance(items, list)
    except (ValueError, AssertionError) as exc:
        raise InputError("manifest.json is not a JSON list", blobs.where) from exc
    out = []
    for item in items:
        try:
            config_name, layer_names = item["Config"], list(item.get("Layers") or [])
        except (KeyError, TypeError) as exc:
            raise InputError("manifest.json item lacks Config", blobs.where) from exc
        image = _docker_image(blobs, config_name, layer_names)
        names = [parse_reference(t) for t in item.get("RepoTags") or []]
        out += [ArchiveEntry(n, image.descriptor, image) for n in names or [None]]
    return out


def _docker_image(blobs: TarBlobs, config_name: str, layer_names: list[str]) -> LayoutImage:
    raw = blobs.read_member(config_name)
    try:
        config = ImageConfig.from_bytes(raw, MediaType.OCI_CONFIG)
    except InputError as exc:
        raise InputError(f"image config {config_name} is invalid: {exc.message}", blobs.where) from exc
    blobs.name_blob(config.digest, config_name)
    layers = [_docker_layer_desc(blobs, name, config.diff_ids[i] if i < len(config.diff_ids) else None)
              for i, name in enumerate(layer_names)]
    manifest = Manifest.build(config.descriptor(), layers)
    return LayoutImage(blobs, manifest.descriptor(), manifest, config)


def _docker_layer_desc(blobs: TarBlobs, name: str, diff_id: Digest | None) -> Descriptor:
    """A layer member's descriptor: media type by its magic bytes; an uncompressed layer's digest is its diffID."""
    with blobs.open_member(name) as fh:
        head = fh.read(4)
    media_type = (MediaType.OCI_LAYER_GZIP if head.startswith(b"\x1f\x8b") else
                  MediaType.OCI_LAYER_ZSTD if head.startswith(b"\x28\xb5\x2f\xfd") else MediaType.OCI_LAYER)
    digest = diff_id if media_type == MediaType.OCI_LAYER and diff_id else blobs.hash_member(name)
    blobs.name_blob(digest, name)
    return Descriptor(media_type, digest, blobs.member(name).size)
