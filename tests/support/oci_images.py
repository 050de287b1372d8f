"""Small real OCI images for tests: deterministic layers written into a store (or any OCI layout).

``make_image(store, "app:v1", {"etc/hello": b"hi"})`` writes one layer per dict
given, a config with labels/env/cmd, a manifest, and tags it. Because the store
is a plain OCI layout, ``Store(tmp_path / "layout")`` makes a layout skopeo reads.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

from imgbuild.oci.layer import Entry, write_layer
from imgbuild.oci.model import Descriptor, ImageConfig, Manifest, Platform
from imgbuild.oci.store import Store

__all__ = ["make_image"]


def make_image(
    store: Store,
    ref: str | None,
    *layers: Mapping[str, bytes],
    compression: str = "gzip",
    labels: Mapping[str, str] | None = None,
    env: Sequence[str] = ("PATH=/usr/bin",),
    cmd: Sequence[str] = ("sh",),
    created: str | None = "2024-01-02T03:04:05Z",
    platform: Platform | None = None,
    role: str | None = None,
) -> Descriptor:
    """Build a small image into ``store``, tag it ``ref`` (untagged if None) and return its manifest descriptor."""
    cfg = ImageConfig.new(platform or Platform.current(), created=created).with_changes(
        config={"Labels": dict(labels or {}) or None, "Env": list(env), "Cmd": list(cmd)})
    descs = []
    for files in layers or ({"etc/hello": b"hello\n"},):
        entries = [Entry(name, "bytes", data=data) for name, data in files.items()]
        buf = io.BytesIO()
        res = write_layer(entries, buf, compression=compression)
        store.write_blob(buf.getvalue(), res.digest)
        descs.append(res.descriptor({"io.imgbuild.layer.role": role} if role else None))
        cfg = cfg.with_layer(res.diff_id, {"created_by": f"test layer {len(descs)}"})
    manifest = Manifest.build(store.put_config(cfg), descs)
    desc = store.put_manifest(manifest)
    if ref:
        store.tag(ref, desc)
    else:
        store.add_untagged(desc)
    return desc
