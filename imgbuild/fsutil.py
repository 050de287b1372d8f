"""Durable file writes: replace a file so a reader sees the old or the new content, never a part.

Every state file imgbuild keeps (index.json, registry links, credentials, mount
records, cache entries) goes through :func:`atomic_write`; blobs, which are
streamed and digest-checked, go through :mod:`imgbuild.oci._blobio`, which uses
:func:`fsync_dir` from here. Both raise ``OSError``: callers translate it into
their own error (or ignore it, for caches) where they know what the file is.
:func:`remove_tree` deletes a tree of any depth without recursion and without
following a symlink; :func:`private_dir` makes a directory only its owner can enter.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "remove_tree", "private_dir"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing and make it 0700, whatever the umask or its earlier mode."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def remove_tree(path: Path) -> int:
    """Delete ``path`` and everything below it; return the bytes of regular files freed (hard links once).

    Works at any depth with one open directory at a time (no recursion, no path longer than a name),
    never follows a symlink, makes directories writable where it must, and treats an entry that
    vanished meanwhile as removed. A missing ``path`` frees 0 bytes.
    """
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        os.unlink(path)
        return top.st_size if stat.S_ISREG(top.st_mode) else 0
    seen: set[tuple[int, int, int]] = set()
    fd = _open_dir(path, None)
    stack: list[tuple[str, list[str]]] = [("", _empty_files(fd, seen))]
    try:
        while True:
            name, subdirs = stack[-1]
            if subdirs:
                child = subdirs.pop()
                try:
                    cfd = _open_dir(child, fd)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                os.close(fd)
                fd = cfd
                stack.append((child, _empty_files(fd, seen)))
                continue
            stack.pop()
            if not stack:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            _rmdir(name, fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)
    return sum(size for _dev, _ino, size in seen)


def _rmdir(name: str, fd: int) -> None:
    """Remove the empty directory ``name`` of the open directory ``fd`` (made writable if it must be)."""
    try:
        os.rmdir(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    except PermissionError:
        os.fchmod(fd, 0o700)
        os.rmdir(name, dir_fd=fd)


def _open_dir(name: str | Path, dir_fd: int | None) -> int:
    """Open a directory without following a symlink, making it readable and searchable first if it is not."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _empty_files(fd: int, seen: set) -> list[str]:
    """Unlink every non-directory in the open directory ``fd`` (regular files noted in ``seen``); its subdirectories."""
    subdirs: list[str] = []
    with os.scandir(fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        if is_dir:
            subdirs.append(name)
            continue
        try:
            st = os.lstat(name, dir_fd=fd)
            if stat.S_ISREG(st.st_mode):
                seen.add((st.st_dev, st.st_ino, st.st_size))
            try:
                os.unlink(name, dir_fd=fd)
            except PermissionError:  # a directory without write permission (imgbuild not running as root)
                os.fchmod(fd, 0o700)
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            continue
    return subdirs
