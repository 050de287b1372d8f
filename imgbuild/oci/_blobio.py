"""Atomic, digest-checked blob writes: the one sink behind the local store and the registry/ directory.

A blob is streamed into a temp file (in a directory on the destination's
filesystem, so the final rename is atomic) and hashed as it goes. On a clean
exit of the with-block it is checked against the size and digest it was
announced with, made world-readable (mkstemp's 0600 would hide it from a
registry run as another user), fsynced and renamed to where its digest says.
On any error, in the block or in those checks, the temp file is removed and
nothing is stored, so a reader never meets a half-written blob. What differs
between callers (locks, temp directory, what to do when the blob is already
there, whether to fsync the directory) stays with them, as parameters here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Iterator

from imgbuild.errors import DigestMismatch, StoreError
from imgbuild.fsutil import fsync_dir
from imgbuild.oci.model import Digest

__all__ = ["BlobReads", "BlobWriter", "OpenWriter", "atomic_blob", "fsync_dir", "stream_file", "write_bytes", "CHUNK"]

CHUNK = 1 << 20

OpenWriter = Callable[[str | None, int | None], ContextManager["BlobWriter"]]


class BlobWriter:
    """A file-like sink for one blob; ``digest`` and ``size`` are set when its with-block commits."""

    def __init__(self, fh: BinaryIO, algorithm: str) -> None:
        self._fh = fh
        self._hash = hashlib.new(algorithm)
        self.algorithm = algorithm
        self.size = 0
        self.digest: Digest | None = None

    def write(self, data: bytes) -> int:
        """Append ``data`` to the blob (hashing as it goes)."""
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        """The digest of what was written so far."""
        return f"{self.algorithm}:{self._hash.hexdigest()}"


@contextlib.contextmanager
def atomic_blob(tmp_dir: Path, dest_of: Callable[[Digest], Path], expected: str | None = None,
                size: int | None = None, *, on_existing: Callable[[Path], None] | None = None,
                sync_dir: bool = False) -> Iterator[BlobWriter]:
    """Stream one blob into ``dest_of(digest)``; commits on a clean exit, stores nothing on error or mismatch.

    With ``on_existing``, a blob already at its destination is kept (the new copy is
    dropped) and ``on_existing(dest)`` is called; without it the destination is
    replaced. ``sync_dir`` also fsyncs the destination's directory after the rename.
    """
    algorithm = Digest(expected).algorithm if expected else "sha256"
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="blob-")
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = BlobWriter(fh, algorithm)
            yield writer
            actual = _verified(writer, expected, size)
            os.fchmod(fh.fileno(), 0o644)
            fh.flush()
            os.fsync(fh.fileno())
        _place(Path(tmp), dest_of(actual), expected or actual, on_existing, sync_dir)
        writer.digest = actual
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _verified(writer: BlobWriter, expected: str | None, size: int | None) -> Digest:
    """The digest of what ``writer`` got, after checking it (and its size) against what was announced."""
    actual = Digest(writer.hexdigest())
    where = expected or actual
    if size is not None and writer.size != size:
        raise StoreError(f"size mismatch: expected {size} bytes, got {writer.size}", where)
    if expected and actual != expected:
        raise DigestMismatch(expected, actual, where)
    return actual


def _place(tmp: Path, dest: Path, where: str, on_existing: Callable[[Path], None] | None, sync_dir: bool) -> None:
    """Rename the verified temp file to ``dest`` (or keep an existing ``dest``, see :func:`atomic_blob`)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if on_existing is not None and dest.is_file():
            tmp.unlink()
            on_existing(dest)
        else:
            os.replace(tmp, dest)
            if sync_dir:
                fsync_dir(dest.parent)
    except OSError as exc:
        raise StoreError(f"cannot store blob: {exc.strerror}", where) from exc


def write_bytes(open_writer: OpenWriter, data: bytes, expected: str | None = None) -> Digest:
    """Store ``data`` through ``open_writer(expected, size)`` (a ``blob_writer`` method) and return its digest."""
    with open_writer(expected, len(data)) as w:
        w.write(data)
    assert w.digest is not None
    return w.digest


def stream_file(open_writer: OpenWriter, path: Path, expected: str | None = None) -> Digest:
    """Stream the file at ``path`` through ``open_writer(expected, None)`` and return its digest."""
    try:
        with open(path, "rb") as src, open_writer(expected, None) as w:
            while chunk := src.read(CHUNK):
                w.write(chunk)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", str(path)) from exc
    assert w.digest is not None
    return w.digest


class BlobReads:
    """The read side shared by the store and the registry/ directory; subclasses give ``blob_path``."""

    blob_home = "the store"  # how errors name where the blob was looked for

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        raise NotImplementedError

    def has_blob(self, digest: str) -> bool:
        """True if the blob is present."""
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        """The size of a stored blob; StoreError (where=digest) if absent."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise StoreError(f"blob not in {self.blob_home}", str(digest)) from exc

    def open_blob(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading (not re-verified; see :meth:`read_blob`)."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError as exc:
            raise StoreError(f"blob not in {self.blob_home}", str(digest)) from exc
        except OSError as exc:
            raise StoreError(f"cannot read blob: {exc.strerror}", str(digest)) from exc

    def read_blob(self, digest: str) -> bytes:
        """A whole stored blob, verified against its digest (for documents, not layers)."""
        with self.open_blob(digest) as fh:
            data = fh.read()
        Digest(digest).verify(data, where=f"blob {digest} in {self.blob_home}")
        return data
