"""Save images from the store to oci-archive / docker-archive files, and load them back.

An **oci-archive** is a tar of an OCI image layout: ``oci-layout``, ``index.json``
(entries named by ``org.opencontainers.image.ref.name`` with the full reference)
and ``blobs/sha256/<hex>``, the blobs copied unchanged so digests survive.
A **docker-archive** is what ``docker load`` accepts: ``manifest.json``
(``Config``, ``RepoTags``, ``Layers``), ``repositories``, ``<hex>.json`` config
and ``<diffid-hex>.tar`` layers, always uncompressed (docker cannot read zstd),
so the file name is the diffID the config promises.

:func:`load` reads both (plain or gzip-compressed tars) and a plain OCI layout
directory. Archives are read as one stream: member names are checked (no
absolute paths, no ``..``), every blob streams into the store through
:meth:`Store.blob_writer` (digest-checked where the name is a digest), and no
blob is held in memory. A docker-archive becomes an OCI image: config bytes
kept exactly (same IMAGE ID), layers stored as they are, a new OCI manifest.
Archives are written to a temp file beside the target and renamed into place.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import tarfile
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import zstandard

from imgbuild.errors import DigestMismatch, ImgbuildError, InputError, InvalidReference, StoreError, UnsafePathError
from imgbuild.oci.model import Descriptor, Digest, Index, Manifest, MediaType
from imgbuild.oci.store import REF_NAME, Image, Store
from imgbuild.reference import Reference, parse_reference

__all__ = ["FORMATS", "Loaded", "save", "load", "save_oci_archive", "save_docker_archive"]

FORMATS = ("oci-archive", "docker-archive")
CONTAINERD_NAME = "io.containerd.image.name"
_CHUNK = 1 << 20
_TOP_DOCS = frozenset({"oci-layout", "index.json", "manifest.json", "repositories"})
_BLOB_NAME = re.compile(r"blobs/(sha256|sha512)/([a-f0-9]{64}|[a-f0-9]{128})")
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


@dataclass(frozen=True)
class Loaded:
    """One image a load brought into the store: its tags (empty if untagged) and descriptor."""

    names: tuple[str, ...]
    descriptor: Descriptor


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


@contextmanager
def _atomic_tar(out: Path) -> Iterator[tarfile.TarFile]:
    """A tar writer onto a temp file beside ``out``, renamed to ``out`` only when complete."""
    out = Path(out)
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.tmp-")
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


def _complete(store: Store, desc: Descriptor) -> Descriptor:
    """``desc``, or, for an index with platforms missing locally, the manifest of this machine's platform."""
    doc = store.get_document(desc.digest)
    if isinstance(doc, Index) and any(not store.has_blob(c.digest) for c in doc.manifests):
        return store.image(desc).manifest.descriptor()
    return desc


def _blobs_of(store: Store, desc: Descriptor) -> list[Descriptor]:
    """``desc`` and every blob under it."""
    doc = store.get_document(desc.digest)
    if isinstance(doc, Manifest):
        return [desc, *doc.blobs()]
    out = [desc]
    for child in doc.manifests:
        out += _blobs_of(store, child)
    return out


def save_oci_archive(store: Store, refs: Sequence[str], out: Path) -> None:
    """Write ``refs`` as a tar of an OCI layout; tags become ref.name annotations with the full reference."""
    entries: list[Descriptor] = []
    blobs: dict[str, Descriptor] = {}
    for ref in refs:
        name, desc = _named(store, ref)
        desc = _complete(store, desc)
        entry = Descriptor(desc.media_type, desc.digest, desc.size, {REF_NAME: name} if name else {}, desc.platform)
        if entry not in entries:
            entries.append(entry)
        for b in _blobs_of(store, desc):
            blobs.setdefault(b.digest, b)
    with _atomic_tar(out) as tar:
        _add_bytes(tar, "oci-layout", _LAYOUT)
        for d in ("blobs", "blobs/sha256"):
            _add(tar, d, 0, None, 0o755, tarfile.DIRTYPE)
        for digest in sorted(blobs):
            d = Digest(digest)
            with store.open_blob(d) as fh:
                _add(tar, f"blobs/{d.algorithm}/{d.hex}", store.blob_size(d), fh)
        _add_bytes(tar, "index.json", Index.build(entries).raw)


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
            with store.open_blob(desc.digest) as fh:
                _add(tar, name, desc.size, fh)
            written.add(name)
        return name
    from imgbuild.oci.layer import open_layer

    with tempfile.TemporaryFile(dir=store.tmp_dir) as spool:
        h, size = (expected or Digest.of(b"")).hasher(), 0
        try:
            with store.open_blob(desc.digest) as raw:
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


@dataclass
class _Scan:
    """What one pass over an archive found: small top-level documents, blob digests by member name, links."""

    docs: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, tuple[Digest, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def blob(self, name: str, where: str) -> tuple[Digest, int]:
        """The blob stored for archive member ``name`` (following links)."""
        name = _safe_name(name)
        for _ in range(10):
            if name in self.blobs:
                return self.blobs[name]
            if name not in self.links:
                break
            name = self.links[name]
        raise InputError(f"archive names {name!r} but does not contain it", where)


def _safe_name(name: str) -> str:
    """A member name as a clean relative path; raises UnsafePathError for absolute paths or '..'."""
    if name.startswith("/") or "\\" in name:
        raise UnsafePathError("archive member has an absolute or odd path", name)
    clean = posixpath.normpath(name)
    if clean == ".." or clean.startswith("../") or clean in (".", ""):
        raise UnsafePathError("archive member escapes the archive", name)
    return clean


def load(store: Store, path: Path) -> list[Loaded]:
    """Load every image of an oci-archive, docker-archive (tar or tar.gz) or OCI layout directory."""
    path = Path(path)
    with store.writing():
        if path.is_dir():
            return _load_layout_dir(store, path)
        if not path.is_file():
            raise InputError("no such archive file", str(path))
        scan = _scan_archive(store, path)
        if "index.json" in scan.docs and "oci-layout" in scan.docs:
            return _register_oci(store, scan.docs["index.json"], str(path))
        if "manifest.json" in scan.docs:
            return _register_docker(store, scan, str(path))
        if "index.json" in scan.docs:
            return _register_oci(store, scan.docs["index.json"], str(path))
    raise InputError("not an oci-archive or docker-archive: no index.json or manifest.json", str(path))


def _scan_archive(store: Store, path: Path) -> _Scan:
    scan = _Scan()
    try:
        with tarfile.open(path, mode="r|*", bufsize=_CHUNK) as tf:
            for member in tf:
                _scan_member(store, tf, member, scan)
    except tarfile.TarError as exc:
        raise InputError(f"not a readable tar archive: {exc}", str(path)) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"archive is truncated or unreadable: {exc}", str(path)) from exc
    return scan


def _scan_member(store: Store, tf: tarfile.TarFile, member: tarfile.TarInfo, scan: _Scan) -> None:
    name = _safe_name(member.name)
    if member.issym():
        scan.links[name] = _safe_name(posixpath.join(posixpath.dirname(name), member.linkname))
    elif member.islnk():
        scan.links[name] = _safe_name(member.linkname)
    elif not member.isfile():
        return
    elif name in _TOP_DOCS:
        if member.size > 64 << 20:
            raise InputError(f"archive {name} is implausibly large ({member.size} bytes)", name)
        scan.docs[name] = tf.extractfile(member).read()
    else:
        m = _BLOB_NAME.fullmatch(name)
        expected = f"{m.group(1)}:{m.group(2)}" if m else None
        if expected and store.has_blob(expected):
            scan.blobs[name] = (Digest(expected), member.size)
            return
        src = tf.extractfile(member)
        with store.blob_writer(expected, member.size) as w:
            while chunk := src.read(_CHUNK):
                w.write(chunk)
        scan.blobs[name] = (w.digest, w.size)


def _entry_ref(entry: Descriptor) -> Reference | None:
    """The reference an index entry names, or None (a bare tag like ``v1`` names no repository)."""
    name = entry.annotations.get(CONTAINERD_NAME) or entry.annotations.get(REF_NAME)
    if not name or ("/" not in name and ":" not in name):
        return None
    try:
        return parse_reference(name)
    except InvalidReference:
        return None


def _register_oci(store: Store, index_raw: bytes, where: str) -> list[Loaded]:
    """Tag (or keep untagged) every entry of an OCI ``index.json`` whose blobs are now in the store."""
    try:
        entries = Index.from_bytes(index_raw).manifests
    except InputError as exc:
        raise InputError(f"index.json is invalid: {exc.message}", where) from exc
    loaded: dict[str, list[str]] = {}
    descs: dict[str, Descriptor] = {}
    for entry in entries:
        missing = store.missing_blobs(entry)
        if missing:
            raise InputError(f"archive is incomplete: blob {missing[0]} is missing", where)
        ref = _entry_ref(entry)
        if ref is not None and ref.tag:
            store.tag(ref, entry)
        else:
            store.add_untagged(entry)
        descs.setdefault(entry.digest, entry)
        loaded.setdefault(entry.digest, [])
        if ref is not None and ref.tag:
            loaded[entry.digest].append(ref.normalized)
    return [Loaded(tuple(names), descs[d]) for d, names in loaded.items()]


def _load_layout_dir(store: Store, root: Path) -> list[Loaded]:
    """Copy the images of an OCI layout directory into the store."""
    try:
        index_raw = (root / "index.json").read_bytes()
    except OSError as exc:
        raise InputError("not an OCI layout: no readable index.json", str(root)) from exc
    try:
        stack = list(Index.from_bytes(index_raw).manifests)
    except InputError as exc:
        raise InputError(f"index.json is invalid: {exc.message}", str(root)) from exc
    while stack:
        desc = stack.pop()
        src = root / "blobs" / desc.digest.algorithm / desc.digest.hex
        if not src.is_file():
            continue  # a platform the layout does not carry; missing_blobs() judges completeness
        store.ingest_file(src, desc.digest)
        if desc.media_type in (MediaType.OCI_INDEX, MediaType.DOCKER_LIST, MediaType.OCI_MANIFEST,
                               MediaType.DOCKER_MANIFEST) or not desc.media_type:
            doc = store.get_document(desc.digest)
            stack.extend(doc.blobs() if isinstance(doc, Manifest) else doc.manifests)
    return _register_oci(store, index_raw, str(root))


def _layer_media_type(store: Store, digest: Digest) -> str:
    with store.open_blob(digest) as fh:
        head = fh.read(4)
    if head.startswith(b"\x1f\x8b"):
        return MediaType.OCI_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return MediaType.OCI_LAYER_ZSTD
    return MediaType.OCI_LAYER


def _register_docker(store: Store, scan: _Scan, where: str) -> list[Loaded]:
    """Turn each ``manifest.json`` item into an OCI image in the store and tag it with its RepoTags."""
    try:
        items = json.loads(scan.docs["manifest.json"])
        assert isinstance(items, list)
    except (ValueError, AssertionError) as exc:
        raise InputError("manifest.json is not a JSON list", where) from exc
    out = []
    for item in items:
        try:
            config_name, layer_names = item["Config"], list(item.get("Layers") or [])
        except (KeyError, TypeError) as exc:
            raise InputError("manifest.json item lacks Config", where) from exc
        cdigest, csize = scan.blob(config_name, where)
        config = store.get_config(Descriptor(MediaType.OCI_CONFIG, cdigest, csize))
        layers = []
        for i, lname in enumerate(layer_names):
            digest, size = scan.blob(lname, where)
            mt = _layer_media_type(store, digest)
            ids = config.diff_ids
            if mt == MediaType.OCI_LAYER and i < len(ids) and ids[i] != digest:
                raise DigestMismatch(str(ids[i]), str(digest), f"{where}: layer {lname} (diffID)")
            layers.append(Descriptor(mt, digest, size))
        desc = store.put_manifest(Manifest.build(Descriptor(MediaType.OCI_CONFIG, cdigest, csize), layers))
        names = []
        for tag in item.get("RepoTags") or []:
            ref = parse_reference(tag)
            store.tag(ref, desc)
            names.append(ref.normalized)
        if not names:
            store.add_untagged(desc)
        out.append(Loaded(tuple(names), desc))
    return out
