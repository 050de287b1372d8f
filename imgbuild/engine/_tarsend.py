"""A tar stream of chosen paths of a scanned tree, hashing what it reads, optionally zstd-compressed.

The stream is written by hand (PAX headers from :mod:`tarfile`, file content
copied in 1 MiB reads, small members batched into one chunk), so nothing runs
on a thread of its own: the executor's stdin feeder pulls the generator.
Owners are numeric (the host extracts with ``--numeric-owner``); hard links
are sent as separate files. Each regular file read for the stream is hashed on
the way unless another stream already hashes it (:class:`DigestCache`), so a
first send costs no extra pass over the tree. A member whose size changed
while it was read is an error: the tree must not change while it ships.
"""

from __future__ import annotations

import os
import tarfile
from typing import Callable, Iterator, Sequence

import xxhash

from imgbuild.engine._manifest import DigestCache, Entry
from imgbuild.errors import InputError

__all__ = ["tar_members", "zstd_chunks", "tar_size"]

_CHUNK = 1 << 20
_BATCH = 256 << 10
_KIND = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "c": tarfile.CHRTYPE,
         "b": tarfile.BLKTYPE, "p": tarfile.FIFOTYPE}


def tar_size(entries: dict[str, Entry], names: Sequence[str]) -> int:
    """An estimate of the stream's size: 1 KiB of header per member plus content rounded to 512."""
    return sum(1024 + ((entries[n].size + 511) // 512) * 512 for n in names) + 1024


def _header(rel: str, e: Entry) -> bytes:
    info = tarfile.TarInfo(rel + ("/" if e.type == "d" else ""))
    info.type = _KIND[e.type]
    info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
    info.uname = info.gname = ""
    info.size = e.size if e.type == "f" else 0
    info.linkname = e.link
    if e.type in ("c", "b"):
        info.devmajor, info.devminor = os.major(e.rdev), os.minor(e.rdev)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_members(entries: dict[str, Entry], names: Sequence[str], cache: DigestCache,
                tail: Callable[[], list[tuple[str, bytes]]]) -> Iterator[bytes]:
    """The tar of ``names`` (in order) from ``entries``, then the in-memory files ``tail()`` returns."""
    buf = bytearray()
    for rel in names:
        e = entries[rel]
        buf += _header(rel, e)
        if e.type != "f" or e.size == 0:
            if e.type == "f" and e.key and cache.claim(e.key):
                cache.put(e.key, xxhash.xxh3_128().hexdigest())
        else:
            if len(buf) + e.size > _BATCH:
                yield bytes(buf)
                buf.clear()
            for piece in _content(rel, e, cache):
                if len(piece) >= _BATCH:
                    if buf:
                        yield bytes(buf)
                        buf.clear()
                    yield piece
                else:
                    buf += piece
        if len(buf) >= _BATCH:
            yield bytes(buf)
            buf.clear()
    for name, data in tail():
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        info.uname = info.gname = ""
        buf += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + _pad(len(data))
    buf += b"\0" * 1024
    yield bytes(buf)


def _pad(size: int) -> bytes:
    return b"\0" * (-size % 512)


def _content(rel: str, e: Entry, cache: DigestCache) -> Iterator[bytes]:
    """A regular file's bytes padded to 512, hashed on the way when this stream claimed it."""
    h = xxhash.xxh3_128() if (not e.hash and cache.claim(e.key)) else None
    digest = None
    left = e.size
    try:
        with open(e.src, "rb", buffering=0) as fh:
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                if h is not None:
                    h.update(chunk)
                yield chunk
            if left or fh.read(1):
                raise InputError(f"{e.src} changed size while it was being sent ({rel})")
        digest = h.hexdigest() if h is not None else None
    except OSError as exc:
        raise InputError(f"cannot read {e.src} to send it: {exc.strerror}") from exc
    finally:
        if h is not None:
            cache.put(e.key, digest)  # None when cut short: the digest is computed elsewhere
    yield _pad(e.size)


def zstd_chunks(chunks: Iterator[bytes], level: int = 1) -> Iterator[bytes]:
    """``chunks`` compressed as one zstd frame (multi-threaded; the zstandard module releases the GIL)."""
    import zstandard

    comp = zstandard.ZstdCompressor(level=level, threads=-1).compressobj()
    for chunk in chunks:
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()
