"""Cross-process file locks (the image store, the unpacked-layer cache), re-entrant within one process.

``flock`` locks belong to an open file description, so two ``open()`` calls of
the same lock file in one process would deadlock each other. This module keeps
one lock object per path per process: :class:`ExclusiveLock` is re-entrant per
thread (nested holders count depth), :class:`SharedLock` is shared by every
thread of the process and released when the last holder leaves.
:func:`try_exclusive` takes a one-off exclusive lock without waiting.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from imgbuild.errors import StoreError

__all__ = ["ExclusiveLock", "SharedLock", "exclusive_lock", "shared_lock", "try_exclusive"]

_REGISTRY: dict[tuple[str, str], object] = {}
_REGISTRY_GUARD = threading.Lock()


def _open_locked(path: Path, flags: int) -> int | None:
    """Open ``path`` and flock it with ``flags``; None if LOCK_NB and it is taken."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open lock file: {exc.strerror}", str(path)) from exc
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock: {exc.strerror}", str(path)) from exc
    return fd


def _close(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class ExclusiveLock:
    """An exclusive flock, re-entrant for the thread that holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock (waiting for other processes and threads)."""
        with self._rlock:
            if self._depth == 0:
                self._fd = _open_locked(self.path, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    _close(self._fd)
                    self._fd = None


class SharedLock:
    """A shared flock held by this process while any thread is inside :meth:`hold` or it is armed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()
        self._count = 0
        self._sticky = False
        self._fd: int | None = None

    def arm(self) -> None:
        """Take one sticky hold (if not already armed) that lasts until :meth:`disarm`."""
        with self._guard:
            if self._sticky:
                return
            if self._count == 0:
                self._fd = _open_locked(self.path, fcntl.LOCK_SH)
            self._count += 1
            self._sticky = True

    def disarm(self) -> None:
        """Drop the sticky hold taken by :meth:`arm`, if any."""
        with self._guard:
            if not self._sticky:
                return
            self._sticky = False
            self._count -= 1
            if self._count == 0 and self._fd is not None:
                _close(self._fd)
                self._fd = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the shared lock (waiting only while some process holds it exclusively)."""
        with self._guard:
            if self._count == 0:
                self._fd = _open_locked(self.path, fcntl.LOCK_SH)
            self._count += 1
        try:
            yield
        finally:
            with self._guard:
                self._count -= 1
                if self._count == 0 and self._fd is not None:
                    _close(self._fd)
                    self._fd = None


@contextmanager
def try_exclusive(path: Path) -> Iterator[bool]:
    """Take an exclusive lock on ``path`` if nobody (this process included) holds it; yields whether it did."""
    fd = _open_locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            _close(fd)


def _get(kind: str, path: Path, factory):
    key = (kind, str(path.absolute()))
    with _REGISTRY_GUARD:
        lock = _REGISTRY.get(key)
        if lock is None:
            lock = _REGISTRY[key] = factory(path)
        return lock


def exclusive_lock(path: Path) -> ExclusiveLock:
    """The one :class:`ExclusiveLock` of this process for ``path``."""
    return _get("ex", path, ExclusiveLock)


def shared_lock(path: Path) -> SharedLock:
    """The one :class:`SharedLock` of this process for ``path``."""
    return _get("sh", path, SharedLock)
