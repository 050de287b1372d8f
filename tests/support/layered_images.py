"""Multi-layer test images with deletions: files, dirs, links, modes, whiteouts and opaque dirs.

``make_layered_image(store, "app:v1", {"etc/a": b"x"}, {"etc/a": None})`` writes
one layer per mapping. A value is: ``bytes`` (a 0644 file), ``None`` (a whiteout
of that path, or an opaque marker when the key ends with ``/``: "etc/" hides what
lower layers have in etc), or an :class:`~imgbuild.oci.layer.Entry` (any kind,
mode or owner; its arcname is replaced by the key). Layers are deterministic.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence, Union

from imgbuild.oci.layer import Entry, opaque_entry, whiteout_entry, write_layer
from imgbuild.oci.model import Descriptor, ImageConfig, Manifest, Platform
from imgbuild.oci.store import Store

__all__ = ["make_layered_image", "Spec", "d", "sym", "f"]

Spec = Mapping[str, Union[bytes, None, Entry]]


def d(mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory entry (arcname filled in from the key)."""
    return Entry("", "dir", mode=mode, uid=uid, gid=gid)


def sym(target: str) -> Entry:
    """A symlink entry pointing at ``target``."""
    return Entry("", "symlink", linkname=target, mode=0o777)


def f(data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    """A file entry with content, mode and owner."""
    return Entry("", "bytes", data=data, mode=mode, uid=uid, gid=gid)


def _entries(spec: Spec) -> list[Entry]:
    out = []
    for key, value in spec.items():
        if value is None:
            out.append(opaque_entry(key.rstrip("/")) if key.endswith("/") else whiteout_entry(key))
        elif isinstance(value, Entry):
            out.append(Entry(key, value.kind, value.source, value.data, value.linkname, value.mode, value.uid,
                             value.gid, value.mtime, value.devmajor, value.devminor))
        else:
            out.append(Entry(key, "bytes", data=value))
    return out


def make_layered_image(
    store: Store, ref: str | None, *layers: Spec, compression: str = "zstd",
    labels: Mapping[str, str] | None = None, env: Sequence[str] = ("PATH=/usr/bin",),
    cmd: Sequence[str] = ("sh",), platform: Platform | None = None, created: str = "2024-01-02T03:04:05Z",
) -> Descriptor:
    """Write an image with one layer per spec into ``store``, tag it ``ref`` and return its manifest descriptor."""
    cfg = ImageConfig.new(platform or Platform.current(), created=created).with_changes(
        config={"Labels": dict(labels or {}) or None, "Env": list(env), "Cmd": list(cmd)})
    descs = []
    for n, spec in enumerate(layers, 1):
        buf = io.BytesIO()
        res = write_layer(_entries(spec), buf, compression=compression)
        store.write_blob(buf.getvalue(), res.digest)
        descs.append(res.descriptor())
        cfg = cfg.with_layer(res.diff_id, {"created_by": f"test layer {n}"})
    desc = store.put_manifest(Manifest.build(store.put_config(cfg), descs))
    if ref:
        store.tag(ref, desc)
    else:
        store.add_untagged(desc)
    return desc
