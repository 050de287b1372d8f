"""Crafted images for hostile-input tests: a layer made from raw tar members, as an attacker would write it.

``raw_image(store, "evil:1", [member(...), ...])`` gzips a tar of the given members
(devices, setuid files, deep trees: things our own layer writer never makes), stores
it as the one layer of an image and tags it. ``bomb_image`` streams a layer of one file
of zeros (1,000:1 with gzip, far more with zstd) without holding it in memory;
``junk_archive`` adds a member of zeros no index names to a saved archive and gzips it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from pathlib import Path
from typing import Iterable

import zstandard

from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Manifest, MediaType, Platform
from imgbuild.oci.store import Store

__all__ = ["member", "deep_members", "nest_dirs", "raw_tar", "raw_image", "bomb_image", "junk_archive"]


def member(name: str, kind: str = "file", *, data: bytes = b"", mode: int = 0o644,
           dev: tuple[int, int] = (0, 0), link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    """A tar member: kind file, dir, chr, blk, sym or hard, with its mode (setuid bits too), device or link."""
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "chr": tarfile.CHRTYPE,
                 "blk": tarfile.BLKTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
    info.mode, info.mtime, info.size = mode, 1000, len(data) if kind == "file" else 0
    info.devmajor, info.devminor = dev
    info.linkname = link
    return info, data


def deep_members(depth: int, part: str = "d") -> list[tuple[tarfile.TarInfo, bytes]]:
    """``depth`` directories nested in one another."""
    return [member("/".join([part] * n), "dir", mode=0o755) for n in range(1, depth + 1)]


def nest_dirs(root: Path, depth: int, name: str = "d", leaf: bytes | None = None) -> None:
    """``depth`` directories nested under ``root`` (made by fd: deeper than PATH_MAX allows by name), and a
    file ``leaf`` holding ``leaf`` at the bottom if given."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        if leaf is not None:
            with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as fh:
                fh.write(leaf)
    finally:
        os.close(fd)


def raw_tar(members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """An uncompressed PAX tar of ``members``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def raw_image(store: Store, ref: str, members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> Descriptor:
    """Store a one-layer image whose gzip layer holds exactly ``members``; tag it ``ref``."""
    tar = raw_tar(members)
    blob = gzip.compress(tar, mtime=0)
    return _one_layer(store, ref, blob, MediaType.OCI_LAYER_GZIP, Digest.of(tar))


def bomb_image(store: Store, ref: str, size: int, compression: str = "gzip") -> tuple[Descriptor, int]:
    """Store a one-layer image whose layer is a file of ``size`` zero bytes; its descriptor and blob size."""
    if compression == "gzip":
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    else:
        comp = zstandard.ZstdCompressor(level=3).compressobj()
    info = tarfile.TarInfo("zeros")
    info.size, info.mode, info.mtime = size, 0o644, 1000
    head = info.tobuf(tarfile.PAX_FORMAT)
    tail = b"\0" * ((-size) % 512 + 1024)
    diff, out = hashlib.sha256(), io.BytesIO()
    for chunk in _chunks(head, size, tail):
        diff.update(chunk)
        out.write(comp.compress(chunk))
    out.write(comp.flush())
    media = MediaType.OCI_LAYER_GZIP if compression == "gzip" else MediaType.OCI_LAYER_ZSTD
    blob = out.getvalue()
    return _one_layer(store, ref, blob, media, Digest("sha256:" + diff.hexdigest())), len(blob)


def _chunks(head: bytes, size: int, tail: bytes):
    yield head
    zeros = bytes(1 << 20)
    while size > 0:
        yield zeros[: min(size, len(zeros))]
        size -= len(zeros)
    yield tail


def _one_layer(store: Store, ref: str, blob: bytes, media: str, diff_id: Digest) -> Descriptor:
    digest = store.write_blob(blob, str(Digest.of(blob)))
    cfg = ImageConfig.new(Platform.current(), created="2024-01-02T03:04:05Z").with_layer(str(diff_id))
    desc = store.put_manifest(Manifest.build(store.put_config(cfg), [Descriptor(media, digest, len(blob))]))
    store.tag(ref, desc)
    return desc


def junk_archive(plain: Path, out: Path, junk: int) -> Path:
    """``plain`` (a saved archive) plus ``junk`` zero bytes in a ``blobs/`` member no index names, gzipped to ``out``."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(out, "wb") as fh, tarfile.open(plain) as src, \
            tarfile.open(fileobj=_Deflating(fh, comp), mode="w|") as tar:
        for m in src:
            tar.addfile(m, src.extractfile(m) if m.isfile() else None)
        info = tarfile.TarInfo("blobs/sha256/" + "ab" * 32)
        info.size = junk
        tar.addfile(info, _Zeros(junk))
    with open(out, "ab") as fh:
        fh.write(comp.flush())
    return out


class _Deflating:
    """A write-only file that compresses into ``fh`` (the caller flushes ``comp`` at the end)."""

    def __init__(self, fh, comp) -> None:
        self.fh, self.comp = fh, comp

    def write(self, data: bytes) -> int:
        self.fh.write(self.comp.compress(data))
        return len(data)


class _Zeros(io.RawIOBase):
    """``size`` zero bytes as a stream."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n
