"""The build-step layer cache: an unchanged COPY costs a hash of file metadata, not a tar.

A layer's content is fully determined by its entries (path, kind, mode, owner,
link target, file content), the compression and the fixed mtime. The key
hashes exactly those, with each file's content stood in for by its stat stamp
(size, mtime_ns, ctime_ns, inode, device) as git and make do: a touched file
misses the cache and is re-tarred, which gives the same digest anyway, because
layers are deterministic. A value is the :class:`~imgbuild.oci.layer.LayerResult`
whose blob is in the store; a hit whose blob was garbage-collected is a miss.
Entries live in ``<home>/cache/build-steps/<xx>/<key>.json`` (:func:`step_cache_dir`), written
atomically; :func:`prune_step_cache` removes those whose blob is gone (``imgbuild store gc``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Iterable

from imgbuild.fsutil import atomic_write
from imgbuild.home import Home
from imgbuild.oci.layer import LayerResult
from imgbuild.oci.model import Digest
from imgbuild.rootfs.prune import Pruned, prune_files, stale_temp

__all__ = ["StepCache", "step_key", "step_cache_dir", "prune_step_cache"]

_VERSION = "imgbuild-step-v1"


def step_key(stamps: Iterable[tuple], compression: str, epoch: int) -> str:
    """The cache key of one layer: sha256 over its entries' stamps, compression and epoch."""
    h = hashlib.sha256()
    h.update(f"{_VERSION}\0{compression}\0{epoch}\n".encode())
    for stamp in stamps:
        h.update(json.dumps(stamp, separators=(",", ":"), default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


class StepCache:
    """Layer results by step key, under one directory; ``enabled=False`` makes every lookup miss."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, store) -> LayerResult | None:
        """The cached result for ``key`` if its blob is still in ``store``, else None."""
        if not self.enabled:
            return None
        try:
            data = json.loads(self._path(key).read_text())
            result = LayerResult(Digest(data["diff_id"]), Digest(data["digest"]), int(data["size"]),
                                 str(data["media_type"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        except Exception:  # an invalid digest in a damaged entry: treat as a miss
            return None
        return result if store.claim_blob(result.digest) else None  # leased: a concurrent gc spares it

    def put(self, key: str, result: LayerResult) -> None:
        """Remember ``result`` for ``key`` (atomically; a failure to write only costs a future miss)."""
        if not self.enabled:
            return
        path = self._path(key)
        data = json.dumps({"diff_id": result.diff_id, "digest": result.digest, "size": result.size,
                           "media_type": result.media_type}).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError:
            return


def step_cache_dir(home: Home) -> Path:
    """Where ``home`` keeps build-step entries (``<home>/cache/build-steps``)."""
    return home.cache / "build-steps"


def _entry_gone(store, path: Path) -> bool:
    """True if a build-step entry is unreadable or names a blob the store no longer has."""
    try:
        return not store.has_blob(Digest(json.loads(path.read_bytes())["digest"]))
    except FileNotFoundError:
        raise
    except Exception:  # damaged JSON or digest: the cache treats it as a miss already
        return True


def prune_step_cache(store) -> Pruned | None:
    """Remove the build-step entries of the store's Home whose blob ``store`` lacks; None if it has no Home."""
    if store.home is None:
        return None
    root, now = step_cache_dir(store.home), time.time()

    def doomed(p: Path) -> bool:
        return stale_temp(p, now) or (p.suffix == ".json" and not p.name.startswith(".") and _entry_gone(store, p))

    with store.lock():  # no image can be added or removed while we judge what is used
        files = sorted(f for d in root.iterdir() if d.is_dir() for f in d.iterdir()) if root.is_dir() else []
        return prune_files("build-steps", files, doomed)
