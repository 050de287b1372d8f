"""Small streaming plumbing for the layer writer: ordered worker stages, hashing sinks, write batching.

The layer writer reads files on the calling thread, hashes and compresses on a
second, and hashes and writes the compressed output on a third. hashlib, zstd,
zlib and file I/O all release the GIL on large buffers, so these overlap, and
bounded queues keep memory at a few MiB whatever the layer size. Items passed
between stages must be immutable (or never touched again by the producer).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any, BinaryIO, Callable

from imgbuild.oci.model import Digest

__all__ = ["Stage", "HashingWriter", "Batcher", "Forward"]

_STOP = object()


class Stage:
    """A thread applying ``fn`` to items in the order they are put; errors surface on put() and close()."""

    def __init__(self, fn: Callable[[Any], object], depth: int = 8, name: str = "layer-stage") -> None:
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:  # after a failure keep draining so producers never block
                try:
                    self._fn(item)
                except BaseException as exc:  # re-raised on the producer's thread
                    self._error = exc

    def put(self, item: Any) -> None:
        """Queue ``item`` (blocks while the stage is ``depth`` items behind); raises the stage's error."""
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every queued item is processed; raise the stage's error if it had one."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop the stage, discarding its error (the caller is already failing)."""
        self._queue.put(_STOP)
        self._thread.join()


class HashingWriter:
    """A sink that sha256-hashes and counts what passes through to ``out`` (if any)."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        """Hash, count and pass on ``data``."""
        self.hash.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        """Flush ``out`` if it can be."""
        if self.out is not None and hasattr(self.out, "flush"):
            self.out.flush()

    def digest(self) -> Digest:
        """The sha256 digest of everything written so far."""
        return Digest.from_hex(self.hash.hexdigest())


class Forward:
    """A file-like ``write`` that hands immutable copies of what it is given to ``put``."""

    def __init__(self, put: Callable[[bytes], None]) -> None:
        self._put = put

    def write(self, data) -> int:
        """Pass ``data`` on (copied only if it is mutable)."""
        self._put(data if isinstance(data, bytes) else bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the stage owns the data now."""

    def discard(self) -> None:
        """Drop what is written from now on (what a failed writer's compressor still flushes)."""
        self._put = _drop


def _drop(_: bytes) -> None:
    return None


class Batcher:
    """Groups small writes (tar headers, padding, small files) into ~1 MiB items for ``put``.

    Large ``bytes`` writes go through as they are; they must not be mutated afterwards.
    """

    def __init__(self, put: Callable[[Any], None], size: int = 1 << 20) -> None:
        self._put = put
        self._size = size
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        """Queue ``data``, batching it with neighbours when it is small."""
        if len(data) >= 1 << 16 and isinstance(data, bytes):
            self.flush()
            self._put(data)
        else:
            self._buf += data
            if len(self._buf) >= self._size:
                self.flush()
        return len(data)

    def flush(self) -> None:
        """Hand over what is batched (the buffer object itself, then start a new one)."""
        if self._buf:
            self._put(self._buf)
            self._buf = bytearray()
