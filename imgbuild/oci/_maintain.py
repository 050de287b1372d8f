"""Store maintenance: what is reachable, garbage collection, and verification of every blob.

Kept apart from :mod:`imgbuild.oci.store` so the store module stays about reading
and writing; :class:`~imgbuild.oci.store.Store` exposes these as ``reachable``,
``gc`` and ``verify``. gc and repair run under the store's writer lock.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from imgbuild.errors import DigestMismatch, StoreError
from imgbuild.locks import try_exclusive
from imgbuild.oci.model import REF_NAME, Manifest
from imgbuild.scratch import sweep

if TYPE_CHECKING:
    from imgbuild.oci.store import Store

__all__ = ["reachable", "gc", "verify", "TEMP_MAX_AGE"]

TEMP_MAX_AGE = 3600  # seconds: temp files older than this are debris of a crashed writer
_CHUNK = 1 << 20


def reachable(store: Store) -> set[str]:
    """Every blob digest some ``index.json`` entry reaches (stored or not)."""
    seen: set[str] = set()
    stack = list(store.entries())
    while stack:
        desc = stack.pop()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        if not store.has_blob(desc.digest):
            continue
        doc = store.get_document(desc.digest)  # an unreadable document aborts gc: better than losing data
        if isinstance(doc, Manifest):
            seen.update(b.digest for b in doc.blobs())
        else:
            stack.extend(doc.manifests)
    return seen


def _blob_files(store: Store) -> Iterator[tuple[str, Path]]:
    blobs = store.root / "blobs"
    if not blobs.is_dir():
        return
    for alg_dir in sorted(p for p in blobs.iterdir() if p.is_dir()):
        for f in sorted(alg_dir.iterdir()):
            yield f"{alg_dir.name}:{f.name}", f


def gc(store: Store) -> tuple[int, int]:
    """Remove blobs no tag reaches and the temp files of writers that are gone; return (blobs removed, bytes freed)."""
    removed = freed = 0
    now = time.time()
    with store.lock():
        live = reachable(store)
        with try_exclusive(store.root / ".gc.lock") as quiet:
            cutoff = None if quiet else now - TEMP_MAX_AGE  # importers active: spare fresh blobs
            for digest, path in _blob_files(store):
                if digest in live or not path.is_file():
                    continue
                st = path.stat()
                if cutoff is not None and st.st_mtime > cutoff:
                    continue
                path.unlink(missing_ok=True)
                removed, freed = removed + 1, freed + st.st_size
        freed += _remove_stale_temp(store, now)
    return removed, freed


def _remove_stale_temp(store: Store, now: float) -> int:
    """Remove the temp files of every writer that is gone (killed or crashed), whatever their age."""
    try:
        return sweep(store.root / ".tmp", loose_max_age=TEMP_MAX_AGE, now=now)
    except OSError as exc:
        raise StoreError(f"cannot remove temp files: {exc.strerror}", str(store.root / ".tmp")) from exc


def verify(store: Store, repair: bool = False) -> list[str]:
    """Re-hash every blob and check every tag's blobs; return the problems (removing corrupt blobs if ``repair``)."""
    problems: list[str] = []
    files = list(_blob_files(store))
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda item: _check_blob(*item), files))
    for (digest, path), problem in zip(files, results):
        if problem:
            problems.append(f"{digest}: {problem}" + ("; removed" if repair else ""))
            if repair:
                with store.lock():
                    path.unlink(missing_ok=True)
    try:
        entries = store.entries()
    except StoreError as exc:
        return [*problems, str(exc)]
    for e in entries:
        label = e.annotations.get(REF_NAME) or e.digest
        try:
            missing = store.missing_blobs(e)
        except (StoreError, DigestMismatch) as exc:
            problems.append(f"{label}: {exc}")
            continue
        problems += [f"{label}: missing blob {m}" for m in missing]
    return problems


def _check_blob(digest: str, path: Path) -> str | None:
    """Why the file at ``path`` is not the blob ``digest``, or None if it is."""
    alg, _, hexpart = digest.partition(":")
    if alg not in ("sha256", "sha512") or path.is_dir():
        return "unexpected entry in blobs/"
    try:
        h = hashlib.new(alg)
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        return None  # removed by a concurrent gc: nothing wrong
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return None if h.hexdigest() == hexpart else f"corrupt: content hashes to {alg}:{h.hexdigest()}"
