"""Crafted images for hostile-input tests: a layer made from raw tar members, as an attacker would write it.

``raw_image(store, "evil:1", [member(...), ...])`` gzips a tar of the given members
(devices, setuid files, deep trees: things our own layer writer never makes), stores
it as the one layer of an image and tags it.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Iterable

from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Manifest, MediaType, Platform
from imgbuild.oci.store import Store

__all__ = ["member", "deep_members", "raw_tar", "raw_image"]


def member(name: str, kind: str = "file", *, data: bytes = b"", mode: int = 0o644,
           dev: tuple[int, int] = (0, 0)) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member: kind file, dir, chr or blk, with its mode (setuid bits included) and device numbers."""
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "chr": tarfile.CHRTYPE,
                 "blk": tarfile.BLKTYPE}[kind]
    info.mode, info.mtime, info.size = mode, 1000, len(data) if kind == "file" else 0
    info.devmajor, info.devminor = dev
    return info, data


def deep_members(depth: int, part: str = "d") -> list[tuple[tarfile.TarInfo, bytes]]:
    """``depth`` directories nested in one another."""
    return [member("/".join([part] * n), "dir", mode=0o755) for n in range(1, depth + 1)]


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
    digest = store.write_blob(blob, str(Digest.of(blob)))
    cfg = ImageConfig.new(Platform.current(), created="2024-01-02T03:04:05Z").with_layer(str(Digest.of(tar)))
    layer = Descriptor(MediaType.OCI_LAYER_GZIP, digest, len(blob))
    desc = store.put_manifest(Manifest.build(store.put_config(cfg), [layer]))
    store.tag(ref, desc)
    return desc
