"""Temp space that carries its owner, so a clean-up removes exactly what no live process holds.

A process that needs temp files under a directory ``base`` (the store's ``.tmp/``)
gets its own ``base/<pid>-<random>/`` from :func:`owned_dir`, and holds an
exclusive ``flock`` on ``base/<pid>-<random>.lock`` for as long as it lives (the
kernel drops the lock when the process dies, however it dies; a ``kill -9``
included). The lock file is locked before it gets its final name, so every
visible ``*.lock`` belongs to a live process or to a dead one, never to one
being born. :func:`sweep` removes the directory of every owner whose lock it
can take (a dead one), whatever its age, and never one whose owner lives;
entries of another shape (temp files of older versions, a ``.locking`` file of
a process killed while starting) are removed once older than ``loose_max_age``.

A temp file that must live beside its destination (a saved archive) carries its
owner in its name instead (:func:`pid_prefix`), and the next writer of that
destination removes those whose process is gone (:func:`sweep_pid_files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import threading
import time
from pathlib import Path

from imgbuild.errors import StoreError
from imgbuild.fsutil import remove_tree

__all__ = ["owned_dir", "sweep", "pid_prefix", "sweep_pid_files", "pid_alive", "LOOSE_MAX_AGE"]

LOOSE_MAX_AGE = 3600  # seconds: debris without an owner lock is removed once this old
_LOCK = ".lock"
_GUARD = threading.Lock()
_OWNED: dict[str, tuple[Path, int]] = {}  # base -> (this process's directory, its lock fd, kept open)


def owned_dir(base: Path) -> Path:
    """This process's own 0700 directory under ``base``, created (with its held owner lock) on first use."""
    key = str(Path(base).absolute())
    with _GUARD:
        mine = _OWNED.get(key)
        if mine is not None and mine[0].is_dir():
            return mine[0]
        try:
            path, fd = _claim(Path(key))
        except OSError as exc:
            raise StoreError(f"cannot make a temp directory: {exc.strerror}", key) from exc
        if mine is not None:
            os.close(mine[1])
        _OWNED[key] = (path, fd)
        return path


def _claim(base: Path) -> tuple[Path, int]:
    """Make ``base/<pid>-<random>/`` and its lock, locked before the lock file takes its final name."""
    base.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{os.urandom(6).hex()}"
    starting = base / f"{name}.locking"
    fd = os.open(starting, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        (base / name).mkdir(mode=0o700)
        os.rename(starting, base / f"{name}{_LOCK}")
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(starting)
        raise
    return base / name, fd


def sweep(base: Path, *, loose_max_age: float = LOOSE_MAX_AGE, now: float | None = None) -> int:
    """Remove the temp space of dead owners under ``base`` (and old debris); return the bytes freed."""
    if not Path(base).is_dir():
        return 0
    now = time.time() if now is None else now
    freed = 0
    entries = sorted(Path(base).iterdir())
    names = {p.name for p in entries}
    for entry in entries:
        try:
            if entry.name.endswith(_LOCK):
                freed += _reap(entry, entry.with_name(entry.name[: -len(_LOCK)]))
            elif f"{entry.name}{_LOCK}" not in names and entry.lstat().st_mtime < now - loose_max_age:
                freed += remove_tree(entry)
        except FileNotFoundError:
            continue  # renamed into place or removed by another sweep meanwhile
    return freed


def _reap(lock: Path, owned: Path) -> int:
    """Remove ``owned`` and ``lock`` if no live process holds the lock; the bytes freed."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # its owner is alive
        freed = remove_tree(owned)
        os.unlink(lock)
        return freed
    finally:
        os.close(fd)


def pid_prefix(prefix: str) -> str:
    """``prefix`` followed by this process's id, so a later run can tell whether the file's writer lives."""
    return f"{prefix}{os.getpid()}-"


def sweep_pid_files(directory: Path, prefix: str) -> int:
    """Remove the files ``<prefix><pid>-*`` in ``directory`` whose process is gone; the bytes freed."""
    freed = 0
    for path in Path(directory).glob(glob.escape(prefix) + "*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            size = path.lstat().st_size
            path.unlink()
            freed += size
    return freed


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
