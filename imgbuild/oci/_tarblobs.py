"""An archive file's members as blobs: the read side of oci-archive and docker-archive loading.

:func:`open_tar` gives a :class:`TarBlobs` for a tar file, plain or compressed (gzip,
bzip2, xz, zstd: decompressed once into a temp file in ``scratch``, removed on close,
and no further than the caller's ``policy`` allows: a decompression bomb stops there).
The member headers are read in one pass and every name is checked (no absolute paths,
no ``..``, links may not leave the archive); members named ``blobs/<alg>/<hex>`` are
blobs by that digest, others (docker-archive configs and layers) become blobs when the
loader names them (:meth:`TarBlobs.name_blob`). Each blob opened gets its own file
handle positioned at the member's data, so several threads read at once, and nothing
is held in memory but the small documents.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import os
import posixpath
import re
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator

import zstandard

from imgbuild.errors import InputError, StoreError, UnsafePathError
from imgbuild.oci.image import ReadStream
from imgbuild.oci.model import Digest

if TYPE_CHECKING:
    from imgbuild.rootfs.policy import UnpackPolicy

__all__ = ["TarBlobs", "open_tar", "safe_name", "DOC_MAX"]

DOC_MAX = 64 << 20  # the largest top-level document (index.json, manifest.json, a config) we read whole
_CHUNK = 1 << 20
_BLOB_NAME = re.compile(r"blobs/(sha256|sha512)/([a-f0-9]{64}|[a-f0-9]{128})")


def _zstd_open(path: Path) -> BinaryIO:
    return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), read_across_frames=True)


_OPENERS = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open), (b"\x28\xb5\x2f\xfd", _zstd_open))
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError)


def safe_name(name: str) -> str:
    """A member name as a clean relative path; UnsafePathError for absolute paths or '..'."""
    if name.startswith("/") or "\\" in name:
        raise UnsafePathError("archive member has an absolute or odd path", name)
    clean = posixpath.normpath(name)
    if clean == ".." or clean.startswith("../") or clean in (".", ""):
        raise UnsafePathError("archive member escapes the archive", name)
    return clean


class _Member(ReadStream):
    """The data of one tar member, read through its own handle on the archive file."""

    def __init__(self, path: Path, offset: int, size: int, where: str) -> None:
        self._fh = open(path, "rb")
        self._fh.seek(offset)
        self._left, self._where = size, where

    def read(self, n: int | None = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fh.read(n) if n else b""
        if n and not data:
            raise InputError("archive is truncated", self._where)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()
        super().close()


class TarBlobs:
    """The members of an uncompressed tar file, as a :class:`~imgbuild.oci.image.BlobSource`."""

    def __init__(self, path: Path, where: str) -> None:
        self.path, self.where = Path(path), where
        self.members: dict[str, tarfile.TarInfo] = {}
        self.links: dict[str, str] = {}
        self.by_digest: dict[str, str] = {}
        self._scan()

    def _scan(self) -> None:
        size = self.path.stat().st_size
        try:
            with tarfile.open(self.path, mode="r:") as tf:
                for member in tf:
                    self._add(member, size)
                end = tf.offset
        except tarfile.TarError as exc:
            raise InputError(f"not a readable tar archive: {exc}", self.where) from exc
        except _READ_ERRORS as exc:
            raise InputError(f"archive is truncated or unreadable: {exc}", self.where) from exc
        with open(self.path, "rb") as fh:
            fh.seek(end)
            tail = fh.read(512)
        if tail.strip(b"\0"):
            raise InputError(f"archive is truncated or corrupt at byte {end}", self.where)

    def _add(self, member: tarfile.TarInfo, size: int) -> None:
        name = safe_name(member.name)
        if member.issym():
            self.links[name] = safe_name(posixpath.join(posixpath.dirname(name), member.linkname))
        elif member.islnk():
            self.links[name] = safe_name(member.linkname)
        elif member.isfile():
            if member.sparse or member.offset_data + member.size > size:
                raise InputError("archive is truncated (or has a sparse member)", f"{self.where}: {name}")
            self.members[name] = member
            m = _BLOB_NAME.fullmatch(name)
            if m:
                self.by_digest[f"{m.group(1)}:{m.group(2)}"] = name

    def member(self, name: str) -> tarfile.TarInfo:
        """The file member ``name`` names (following links); InputError if the archive lacks it."""
        name = safe_name(name)
        for _ in range(10):
            if name in self.members:
                return self.members[name]
            if name not in self.links:
                break
            name = self.links[name]
        raise InputError(f"archive names {name!r} but does not contain it", self.where)

    def open_member(self, name: str) -> BinaryIO:
        """A member's data as a stream of its own."""
        m = self.member(name)
        try:
            return _Member(self.path, m.offset_data, m.size, f"{self.where}: {name}")  # type: ignore[return-value]
        except OSError as exc:
            raise InputError(f"cannot read the archive: {exc.strerror}", self.where) from exc

    def read_member(self, name: str) -> bytes:
        """A small member's whole data (documents: at most :data:`DOC_MAX` bytes)."""
        if self.member(name).size > DOC_MAX:
            raise InputError(f"archive {name} is implausibly large ({self.member(name).size} bytes)", name)
        with self.open_member(name) as fh:
            return fh.read()

    def name_blob(self, digest: str, name: str) -> None:
        """Make member ``name`` the blob ``digest`` (a docker-archive's config or layer)."""
        self.member(name)
        self.by_digest.setdefault(str(digest), name)

    def has_blob(self, digest: str) -> bool:
        """True if some member is the blob ``digest``."""
        return str(digest) in self.by_digest

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob's data (verified by whoever stores it); InputError if the archive lacks it."""
        if str(digest) not in self.by_digest:
            raise InputError(f"archive is incomplete: blob {digest} is missing", self.where)
        return self.open_member(self.by_digest[str(digest)])

    def read_blob(self, digest: str) -> bytes:
        """A small blob's whole data, verified against its digest."""
        if str(digest) not in self.by_digest:
            raise InputError(f"archive is incomplete: blob {digest} is missing", self.where)
        data = self.read_member(self.by_digest[str(digest)])
        Digest(digest).verify(data, f"{self.where}: {self.by_digest[str(digest)]}")
        return data

    def hash_member(self, name: str, algorithm: str = "sha256") -> Digest:
        """The digest of a member's data (read once)."""
        h = hashlib.new(algorithm)
        with self.open_member(name) as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        return Digest(f"{algorithm}:{h.hexdigest()}")


def _decompressed(path: Path, scratch: Path, where: str, policy: UnpackPolicy | None = None) -> Path | None:
    """A temp file in ``scratch`` with ``path`` decompressed, as far as ``policy`` allows; None if not compressed."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    opener = next((o for magic, o in _OPENERS if head.startswith(magic)), None)
    if opener is None:
        return None
    try:
        fd, tmp = tempfile.mkstemp(dir=scratch, prefix="archive-")
    except OSError as exc:
        raise StoreError(f"cannot make a temp file: {exc.strerror}", str(scratch)) from exc
    try:
        size = path.stat().st_size
        limit = policy.allowance(size) if policy else 0
        written = 0
        with os.fdopen(fd, "wb") as out, opener(path) as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
                if limit and written > limit:
                    raise InputError(policy.refusal(size).replace("layer", "archive", 1), where)
    except _READ_ERRORS as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"archive is truncated or unreadable: {exc}", where) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _check_archive_file(path: Path, where: str) -> None:
    """InputError saying why ``path`` cannot be an archive: missing, not a regular file, or empty."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError("no such archive file", where) from None
    except OSError as exc:
        raise InputError(f"cannot read the archive: {exc.strerror}", where) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError("not an archive: a device, pipe or socket, not a regular file", where)
    if st.st_size == 0:
        raise InputError("the archive is empty", where)


@contextlib.contextmanager
def open_tar(path: Path, scratch: Path, policy: UnpackPolicy | None = None) -> Iterator[TarBlobs]:
    """The archive at ``path`` as :class:`TarBlobs` (a compressed one decompressed into ``scratch`` first).

    ``policy`` (:class:`~imgbuild.rootfs.policy.UnpackPolicy`) bounds how far a compressed archive may expand.
    """
    where = str(path)
    _check_archive_file(Path(path), where)
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot make a scratch directory: {exc.strerror}", str(scratch)) from exc
    plain = _decompressed(Path(path), scratch, where, policy)
    try:
        yield TarBlobs(plain or Path(path), where)
    finally:
        if plain is not None:
            plain.unlink(missing_ok=True)
