"""Random multi-layer images for registry tests: big layers streamed to disk, never held in memory.

Layers are gzip streams (stored blocks, so they are fast to make) of random bytes:
skopeo detects them as gzip and copies them unchanged, and their digests are unique
per test run. ``make_random_image(store, ref, [100 << 20, 4096])`` writes the blobs,
a config and a manifest into the store and tags it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from pathlib import Path
from typing import Sequence

from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, Platform
from imgbuild.oci.store import Store

__all__ = ["random_gzip_blob", "make_random_image", "make_index"]

_CHUNK = 1 << 20


def random_gzip_blob(path: Path, size: int) -> tuple[Digest, Digest]:
    """Write a gzip stream of ``size`` random bytes to ``path``; return (blob digest, diffID)."""
    comp = zlib.compressobj(level=0, wbits=31)
    blob_hash, raw_hash = hashlib.sha256(), hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left:
            data = os.urandom(min(_CHUNK, left))
            left -= len(data)
            raw_hash.update(data)
            out = comp.compress(data)
            blob_hash.update(out)
            fh.write(out)
        out = comp.flush()
        blob_hash.update(out)
        fh.write(out)
    return Digest.from_hex(blob_hash.hexdigest()), Digest.from_hex(raw_hash.hexdigest())


def make_random_image(store: Store, ref: str | None, layer_sizes: Sequence[int], *,
                      platform: Platform | None = None, workdir: Path | None = None) -> Descriptor:
    """Build an image of random gzip layers of the given (uncompressed) sizes into ``store`` and tag it."""
    cfg = ImageConfig.new(platform or Platform.current(), created="2024-01-02T03:04:05Z")
    descs = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for i, size in enumerate(layer_sizes):
            path = Path(tmp) / f"layer{i}"
            digest, diff_id = random_gzip_blob(path, size)
            store.ingest_file(path, digest)
            descs.append(Descriptor(MediaType.OCI_LAYER_GZIP, digest, path.stat().st_size))
            cfg = cfg.with_layer(diff_id, {"created_by": f"random layer {i}"})
            path.unlink()
    desc = store.put_manifest(Manifest.build(store.put_config(cfg), descs))
    if ref:
        store.tag(ref, desc)
    return desc


def make_index(store: Store, ref: str, children: Sequence[Descriptor], platforms: Sequence[Platform]) -> Descriptor:
    """Write an OCI index of ``children`` (one per platform) into ``store`` and tag it ``ref``."""
    from dataclasses import replace

    index = Index.build([replace(c, platform=p, annotations={}) for c, p in zip(children, platforms)])
    desc = store.put_manifest(index)
    store.tag(ref, desc)
    return desc
