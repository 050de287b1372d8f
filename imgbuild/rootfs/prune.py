"""Pruning of rootfs/'s caches under ``<home>/cache``: the second half of ``imgbuild store gc``.

Blob gc (:meth:`imgbuild.oci.store.Store.gc`) leaves the caches alone; this
module removes the entries of the caches rootfs/ keeps that nothing can use any
more, judged against a store (and the mount records of the Home it carries)
after its blobs were collected:

- ``layers/<diffID hex>/`` (unpacked layers, :mod:`imgbuild.rootfs.unpack`): removed
  when no image in the store has that diffID and no live mount uses it. A
  mount record names its lower directories (``lowers``); a live record
  without them (one being mounted, or an older record) protects every layer
  of its image, and if that image is no longer readable, every layer. A
  layer is removed only while gc holds its per-layer unpack lock (taken
  without waiting: a busy layer is skipped), after the mount records are read
  again under those locks, and by renaming it to ``.gc-<hex>-<random>``
  first, so a mount never sees half a layer; the renamed trees are deleted
  after the store lock is released. Temp trees of crashed unpacks and gc runs
  are removed too. Lock files stay (unlinking a flock file races its users).
- ``listings/<diffID hex>.json`` (:mod:`imgbuild.rootfs.difftree`): removed when no
  image in the store has that diffID (they are cheap to make again).

The build-step cache is builder/'s and pruned there
(:func:`imgbuild.builder.cache.prune_step_cache`), with the :class:`Pruned`
report and file helpers of this module. ``registry/`` (images bundled into a
build, keyed on context path, platform and image names, kept so rebuilds copy
nothing and keep their digest) and ``downloads/`` (files a user placed for
offline builds, keyed on their URL) are not keyed on anything the store knows,
so they are never pruned. A store without a Home has no caches to prune.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from imgbuild.errors import ImgbuildError, StoreError
from imgbuild.fsutil import remove_tree
from imgbuild.locks import try_exclusive
from imgbuild.oci.store import TEMP_MAX_AGE
from imgbuild.oci.model import Digest, Manifest
from imgbuild.oci.store import Store
from imgbuild.rootfs.records import load_records, mounted_points, staleness

__all__ = ["Pruned", "CACHES", "prune_caches", "used_diff_ids", "mount_protected", "prune_files", "stale_temp"]

CACHES = ("layers", "listings")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Pruned:
    """What pruning did to one cache: entries removed, bytes freed, entries skipped as busy, and why kept."""

    cache: str
    removed: int = 0
    bytes: int = 0
    busy: int = 0
    note: str = ""

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return asdict(self)


def _is_hex(name: str) -> bool:
    return len(name) == 64 and set(name) <= _HEX


def _image_diff_ids(store: Store, digest: str) -> set[str] | None:
    """The diffID hexes of the image (or every stored platform of the index) ``digest``; None if unreadable."""
    out: set[str] = set()
    stack = [digest]
    try:
        while stack:
            d = stack.pop()
            if not store.has_blob(d):
                if d == digest:
                    return None
                continue  # an index child of a platform that was never pulled
            doc = store.get_document(d)
            if isinstance(doc, Manifest):
                if not store.has_blob(doc.config.digest):
                    return None
                out.update(Digest(x).hex for x in store.get_config(doc.config).diff_ids)
            else:
                stack.extend(str(c.digest) for c in doc.manifests)
    except ImgbuildError:
        return None
    return out


def used_diff_ids(store: Store) -> set[str]:
    """The diffID hexes of every image in ``store``; StoreError if a tagged image cannot be read."""
    used: set[str] = set()
    for entry in store.entries():
        ids = _image_diff_ids(store, str(entry.digest))
        if ids is None and store.has_blob(entry.digest):
            raise StoreError("cannot read this image's layers; not pruning caches", str(entry.digest))
        used |= ids or set()
    return used


def mount_protected(store: Store, layer_root: Path) -> tuple[set[str], str]:
    """The layer hexes live mounts (of the store's Home) use, and why every layer must be kept ('' if not)."""
    records, _ = load_records(store.needs_home("pruning caches").mounts)
    table = mounted_points()
    keep: set[str] = set()
    for rec in records:
        if rec.mechanism == "copy" or staleness(rec, table):
            continue
        if rec.lowers:
            keep.update(Path(p).name for p in rec.lowers if Path(p).parent == layer_root)
            continue
        ids = _image_diff_ids(store, rec.digest)
        if ids is None:
            return keep, f"mount {rec.id} does not record its layers and its image {rec.digest} is gone"
        keep |= ids
    return keep, ""


def _rmtree(path: Path) -> int:
    """Delete a detached tree of any depth (making directories writable where needed); its size."""
    try:
        return remove_tree(path)
    except OSError as exc:
        raise StoreError(f"cannot remove cached layer: {exc.strerror}", str(path)) from exc


@dataclass(frozen=True)
class _Detached:
    """Layer trees renamed out of the cache (ready to delete) and the count of busy ones."""

    paths: tuple[Path, ...]
    busy: int
    note: str = ""


def _lock_path(root: Path, hexname: str) -> Path:
    return root / ".locks" / f"{hexname}.lock"


@contextmanager
def _locked(root: Path, names: list[str]) -> Iterator[list[str]]:
    """Hold the unpack lock of each of ``names`` that can be taken without waiting; yields those names."""
    with ExitStack() as stack:
        yield [n for n in names if stack.enter_context(try_exclusive(_lock_path(root, n)))]


def _detach_layers(store: Store, root: Path, used: set[str]) -> _Detached:
    """Rename unused layer dirs (and debris of crashed unpacks and gc runs) to ``.gc-*`` names."""
    keep, why = mount_protected(store, root)
    if why:
        return _Detached((), 0, f"kept every layer: {why}")
    keep |= used
    entries = sorted(root.iterdir()) if root.is_dir() else []
    names = [p.name for p in entries if _is_hex(p.name) and p.name not in keep and p.is_dir()]
    debris = {p.name[5:69] for p in entries if p.name.startswith(".tmp-") and _is_hex(p.name[5:69])}
    out: list[Path] = [p for p in entries if p.name.startswith(".gc-")]
    with _locked(root, sorted(set(names) | debris)) as locked:
        again, why = mount_protected(store, root)  # a mount may have started since the first look
        if why:
            return _Detached(tuple(out), 0, f"kept every layer: {why}")
        for name in locked:
            if name in names and name not in again:
                out.append(root / f".gc-{name}-{os.urandom(4).hex()}")
                os.rename(root / name, out[-1])
            for stale in root.glob(f".tmp-{name}-*"):
                out.append(root / f".gc-{name}-{os.urandom(4).hex()}")
                os.rename(stale, out[-1])
    return _Detached(tuple(out), len(set(names) - set(locked)))


def prune_files(cache: str, files: Iterable[Path], doomed: Callable[[Path], bool]) -> Pruned:
    """Unlink each of ``files`` for which ``doomed(path)`` holds; what was freed."""
    removed = freed = 0
    for path in files:
        try:
            if not doomed(path):
                continue
            size = path.lstat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot prune the {cache} cache: {exc.strerror}", str(path)) from exc
        removed, freed = removed + 1, freed + size
    return Pruned(cache, removed, freed)


def stale_temp(path: Path, now: float) -> bool:
    """True for an atomic-write temp file older than :data:`TEMP_MAX_AGE` (debris of a crashed writer)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.lstat().st_mtime < now - TEMP_MAX_AGE


def _prune_listings(root: Path, used: set[str], now: float) -> Pruned:
    def doomed(p: Path) -> bool:
        return stale_temp(p, now) or (p.suffix == ".json" and _is_hex(p.stem) and p.stem not in used)

    return prune_files("listings", sorted(root.iterdir()) if root.is_dir() else [], doomed)


def prune_caches(store: Store) -> tuple[Pruned, ...]:
    """Prune the unpacked-layer and listing caches of the store's Home against ``store``; () if it has no Home."""
    if store.home is None:
        return ()
    cache, now = store.home.cache, time.time()
    with store.lock():  # no image can be added or removed while we judge what is used
        used = used_diff_ids(store)
        detached = _detach_layers(store, cache / "layers", used)
        listings = _prune_listings(cache / "listings", used, now)
    freed = sum(_rmtree(p) for p in detached.paths)
    layers = Pruned("layers", sum(1 for p in detached.paths), freed, detached.busy, detached.note)
    return layers, listings
