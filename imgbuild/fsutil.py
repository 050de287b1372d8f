"""Durable file writes: replace a file so a reader sees the old or the new content, never a part.

Every state file imgbuild keeps (index.json, registry links, credentials, mount
records, cache entries) goes through :func:`atomic_write`; blobs, which are
streamed and digest-checked, go through :mod:`imgbuild.oci._blobio`, which uses
:func:`fsync_dir` from here. Both raise ``OSError``: callers translate it into
their own error (or ignore it, for caches) where they know what the file is.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in the directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, tmp_dir: Path | None = None,
                 sync: bool = True, sync_dir: bool = False) -> None:
    """Write ``data`` to a temp file (in ``tmp_dir``, default beside ``path``), fsync it, rename it over ``path``.

    The temp file gets ``mode`` before any byte is written, so a secret is never readable by others; it is
    removed on any failure. ``sync_dir`` also makes the rename itself durable.
    """
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)
