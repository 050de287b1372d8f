"""Trees of images and directories for :mod:`imgbuild.rootfs.diff`, and the one-call :func:`diff`.

An image's tree is merged from per-layer member listings. A listing is made
by streaming the layer once (decompressed, every file hashed, the bytes
checked against the diffID) and is cached as
``<home>/cache/listings/<diffID hex>.json`` (the Home of the image's store, or
the one passed in; a store without a Home caches nothing), so diffing two releases
that share most layers reads only the layers that changed, and nothing is
ever extracted. A diff side names an image in the local store, or a
directory: an existing path starting with ``/``, ``.`` or ``~``, or any other
existing directory whose name is not an image in the store.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgbuild.fsutil import atomic_write
from imgbuild.rootfs.diff import (
    FileInfo, ImageDiff, compare_configs, compare_trees, listing_from_json, listing_to_json, merge_layers,
    tar_members, tree_from_dir,
)
from imgbuild.errors import DigestMismatch, ImageNotFound, InputError, InvalidReference, StoreError
from imgbuild.home import Home
from imgbuild.oci.model import Descriptor, Digest

__all__ = ["layer_listing", "listing_dir", "image_tree", "Source", "open_source", "diff"]


def listing_dir(home: Home) -> Path:
    """Where ``home`` caches layer listings (``<home>/cache/listings``)."""
    return home.cache / "listings"


def _home_of(image, home: Home | None) -> Home | None:
    """``home``, else the Home of the store ``image`` comes from (None if it has none)."""
    store = getattr(image, "store", None)
    return home if home is not None else getattr(store, "home", None)


def _read_listing(desc: Descriptor, image) -> tuple[list[FileInfo], str]:
    """Stream one layer into its member list; also the sha256 of its uncompressed bytes."""
    from imgbuild.oci.layer import open_layer
    from imgbuild.rootfs.unpack import HashingReader

    with image.open_layer(desc) as raw:
        reader = HashingReader(open_layer(raw, desc.media_type))
        try:
            members = tar_members(tarfile.open(fileobj=reader, mode="r|"))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"layer is not a readable tar: {exc}", str(desc.digest)) from exc
        reader.drain()
    return members, f"sha256:{reader.hash.hexdigest()}"


def _store_listing(path: Path, members: list[FileInfo]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, listing_to_json(members))
    except OSError:
        pass  # a cache: failing to keep it only costs time next run


def layer_listing(image, desc: Descriptor, diff_id: Digest, home: Home | None = None) -> list[FileInfo]:
    """The members of one layer (whiteouts as such), from the listing cache or by streaming the layer."""
    home = _home_of(image, home)
    path = listing_dir(home) / f"{diff_id.hex}.json" if home is not None else None
    if path is not None:
        try:
            return listing_from_json(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            pass
    members, actual = _read_listing(desc, image)
    if diff_id.algorithm == "sha256" and actual != diff_id:
        raise DigestMismatch(str(diff_id), actual, where=f"layer {desc.digest}")
    if path is not None:
        _store_listing(path, members)
    return members


def image_tree(image, home: Home | None = None) -> dict[str, FileInfo]:
    """The merged tree of ``image`` as a runtime would show it, without extracting (listings cached in ``home``)."""
    diff_ids = image.config.diff_ids
    if len(diff_ids) != len(image.layers):
        raise StoreError(f"image has {len(image.layers)} layers but {len(diff_ids)} diffIDs", str(image.digest))
    return merge_layers(layer_listing(image, desc, d, home) for desc, d in zip(image.layers, diff_ids))


@dataclass(frozen=True)
class Source:
    """One side of a diff: its display name, tree, and config document (None for a directory)."""

    name: str
    tree: dict[str, FileInfo]
    config: dict[str, Any] | None = None


def open_source(text: str, store) -> Source:
    """The image in ``store`` or the directory ``text`` names."""
    if text.startswith(("/", ".", "~")) and os.path.isdir(os.path.expanduser(text)):
        return Source(text, tree_from_dir(Path(os.path.expanduser(text))))
    try:
        img = store.image(text)
    except (ImageNotFound, InvalidReference):
        if os.path.isdir(text):
            return Source(text, tree_from_dir(Path(text)))
        raise
    return Source(text, image_tree(img), img.config.data)


def diff(a: str, b: str, *, store, owners: bool = True) -> ImageDiff:
    """Files added, removed and changed from ``a`` to ``b`` (images in ``store`` or directories), plus config changes."""
    sa, sb = open_source(a, store), open_source(b, store)
    config = compare_configs(sa.config, sb.config) if sa.config is not None and sb.config is not None else None
    return ImageDiff(a, b, compare_trees(sa.tree, sb.tree, owners=owners), config)
