"""Safe application of one layer tar to a directory (the engine behind ``layer.extract_layer``).

Every path is resolved component by component from a file descriptor of the
destination with ``O_NOFOLLOW``, so no entry can be written through a symlink,
whether the symlink came from an earlier layer or from this one; ``..`` never
survives name cleaning, and absolute names are taken relative to the
destination. Symlinks are created as links and never followed; hardlinks must
point at something already inside the tree. An existing entry is removed
before it is replaced (a layer may turn a directory into a file), files are
created with ``O_CREAT|O_EXCL|O_NOFOLLOW``, and directory metadata is applied
last, deepest first, so creating children does not undo it. Device nodes are
made only when asked (and as root), setuid/setgid bits kept only when asked. OCI whiteouts
(``.wh.<name>``, ``.wh..wh..opq``) are applied, or stored as overlayfs
whiteouts (char device 0/0, ``trusted.overlay.opaque=y``) for mounting.
An entry nested deeper than :data:`MAX_DEPTH` or longer than :data:`MAX_PATH`
is refused, so no layer makes a tree that later tools cannot walk or remove.
"""

from __future__ import annotations

import errno
import gzip
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path

from imgbuild.errors import InputError, MountError, StoreError, UnsafePathError

__all__ = ["Extractor", "clean_member_name", "MAX_DEPTH", "MAX_PATH"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_WH = ".wh."
_WH_META = ".wh..wh."
_WH_OPQ = ".wh..wh..opq"
MAX_DEPTH = 512      # path components of one entry: real trees stay far below; tools and kernels choke far above
MAX_PATH = 4000      # bytes of one entry's path inside the layer (PATH_MAX is 4096 with the cache prefix)


def clean_member_name(name: str) -> str:
    """A tar member name made relative and normalised; UnsafePathError if it climbs out with ``..``."""
    norm = posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")
    if ".." in name.replace("\\", "/").split("/") and _escapes(name):
        raise UnsafePathError("layer entry escapes the destination with '..'", where=name)
    return "" if norm == "." else norm


def _check_depth(name: str) -> None:
    """UnsafePathError if a (clean) entry path is nested deeper or longer than imgbuild unpacks."""
    depth, size = name.count("/") + 1, len(name.encode("utf-8", "surrogateescape"))
    if depth > MAX_DEPTH or size > MAX_PATH:
        short = name if len(name) <= 80 else f"{name[:40]}...{name[-30:]}"
        raise UnsafePathError(f"layer entry is {depth} directories deep and {size} bytes long; imgbuild unpacks "
                              f"at most {MAX_DEPTH} levels and {MAX_PATH} bytes", where=short)


def _escapes(name: str) -> bool:
    """True if resolving ``..`` lexically would leave the root at any point."""
    depth = 0
    for part in name.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class Extractor:
    """Applies tar members one by one to ``dest``; use as a context manager, then it finishes dirs."""

    def __init__(self, dest: Path, *, whiteouts: bool = True, devices: bool = False, overlay: bool = False,
                 setid: bool = False) -> None:
        self.dest = Path(dest)
        self.setid = setid  # keep setuid/setgid bits of non-directories (else dropped, as rootless runtimes do)
        self.whiteouts = whiteouts or overlay
        self.overlay = overlay
        self.is_root = os.geteuid() == 0
        self.devices = devices and self.is_root
        self.made: set[str] = set()       # paths this layer created fresh
        self.kept: set[str] = set()       # existing dirs this layer declared, and ancestors of made paths
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self._cache: tuple[str, int] | None = None
        try:
            self.dest.mkdir(parents=True, exist_ok=True)
            self.root_fd = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"cannot open extraction directory: {exc.strerror}", where=str(dest)) from exc

    def __enter__(self) -> "Extractor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish_dirs()
        finally:
            self._drop_cache()
            os.close(self.root_fd)

    # ------------------------------------------------------------------ dispatch

    def apply(self, member: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        """Apply one member (its data is read from ``tf`` for regular files)."""
        name = clean_member_name(member.name)
        if not name:
            return
        _check_depth(name)
        parent, base = posixpath.split(name)
        try:
            if self.whiteouts and base.startswith(_WH):
                self._whiteout(member.name, parent, base)
                return
            pfd = self._parent_fd(parent, member.name)
            self._apply_kind(member, tf, name, pfd, base)
        except gzip.BadGzipFile:
            raise  # the layer is corrupt, not the destination
        except OSError as exc:
            raise StoreError(f"cannot extract layer entry: {exc.strerror or exc}", where=member.name) from exc

    def _apply_kind(self, m: tarfile.TarInfo, tf: tarfile.TarFile, name: str, pfd: int, base: str) -> None:
        if m.isdir():
            if self._clear(pfd, base, keep_dir=True):
                self._mark_kept(name)
            else:
                os.mkdir(base, 0o700, dir_fd=pfd)
                self._mark_made(name)
            self.dirs.append((name, m))
            return
        if m.islnk():
            self._hardlink(m, name, pfd, base)
            return
        if m.ischr() or m.isblk():
            if not self.devices:
                return
            self._clear(pfd, base)
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        else:
            self._clear(pfd, base)
            if m.issym():
                os.symlink(m.linkname, base, dir_fd=pfd)
            elif m.isfifo():
                os.mkfifo(base, 0o600, dir_fd=pfd)
            elif m.isreg():
                self._file(m, tf, pfd, base)
                self._mark_made(name)
                return
            else:
                raise InputError(f"unsupported tar entry type {m.type!r}", where=m.name)
        self._meta_path(m, pfd, base)
        self._mark_made(name)

    # ------------------------------------------------------------------ kinds

    def _file(self, m: tarfile.TarInfo, tf: tarfile.TarFile, pfd: int, base: str) -> None:
        fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        with open(fd, "wb", buffering=_CHUNK) as out:
            src = tf.extractfile(m)
            if src is not None:
                shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            self._meta_fd(m, fd)

    def _hardlink(self, m: tarfile.TarInfo, name: str, pfd: int, base: str) -> None:
        target = clean_member_name(m.linkname)
        if target == name:
            return
        tparent, tbase = posixpath.split(target)
        tfd = self._open_existing(tparent)
        try:
            st = os.lstat(tbase, dir_fd=tfd) if tfd is not None and tbase else None
        except FileNotFoundError:
            st = None
        try:
            if st is None or stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(
                    f"hardlink target {m.linkname!r} is outside the tree, not extracted yet, or a directory",
                    where=m.name)
            self._clear(pfd, base)
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            if tfd is not None:
                os.close(tfd)
        self._mark_made(name)

    def _whiteout(self, where: str, parent: str, base: str) -> None:
        if base == _WH_OPQ:
            if self.overlay:
                self._need_root("an overlay opaque directory", where)
                os.setxattr(self._parent_fd(parent, where), "trusted.overlay.opaque", b"y")
                return
            pfd = os.dup(self._parent_fd(parent, where))
            self._drop_cache()  # pruning may remove directories the cache points into
            try:
                self._prune(pfd, parent)
            finally:
                os.close(pfd)
            return
        if base.startswith(_WH_META):
            return  # aufs metadata (.wh..wh.plnk and friends): nothing to apply
        victim = base[len(_WH):]
        if not victim or victim in (".", ".."):
            raise UnsafePathError("whiteout names no entry", where=where)
        if self.overlay:
            self._need_root("an overlay whiteout", where)
            pfd = self._parent_fd(parent, where)
            self._clear(pfd, victim)
            os.mknod(victim, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
            return
        pfd = self._open_existing(parent, where=where)
        if pfd is not None:
            try:
                self._clear(pfd, victim)
            finally:
                os.close(pfd)

    def _prune(self, dfd: int, rel: str) -> None:
        """Remove what lower layers put in directory ``rel`` (open as ``dfd``), keeping this layer's entries."""
        for child in os.listdir(dfd):
            crel = posixpath.join(rel, child) if rel else child
            if crel in self.made:
                continue
            if crel in self.kept:
                cfd = os.open(child, _DIR_FLAGS, dir_fd=dfd)
                try:
                    self._prune(cfd, crel)
                finally:
                    os.close(cfd)
                continue
            self._clear(dfd, child)

    # ------------------------------------------------------------------ paths

    def _parent_fd(self, parent: str, where: str) -> int:
        """An fd of directory ``parent`` (created if missing), reached without following any symlink."""
        if not parent:
            return self.root_fd
        if self._cache and self._cache[0] == parent:
            return self._cache[1]
        fd, rest = self.root_fd, parent
        if self._cache and parent.startswith(self._cache[0] + "/"):  # one level down (a tar lists parents first)
            fd, rest = os.dup(self._cache[1]), parent[len(self._cache[0]) + 1:]
        self._drop_cache()
        for comp in rest.split("/"):
            nfd = self._open_dir(fd, comp, where, create=True)
            if fd != self.root_fd:
                os.close(fd)
            fd = nfd
        self._mark_kept(parent)
        self._cache = (parent, fd)
        return fd

    def _open_existing(self, parent: str, where: str | None = None) -> int | None:
        """A new fd of existing directory ``parent`` (no symlinks followed), or None if it does not exist."""
        fd = os.dup(self.root_fd)
        for comp in parent.split("/") if parent else []:
            try:
                nfd = self._open_dir(fd, comp, where or parent, create=False)
            except FileNotFoundError:
                os.close(fd)
                return None
            except UnsafePathError:
                os.close(fd)
                if where is None:
                    return None
                raise
            os.close(fd)
            fd = nfd
        return fd

    def _open_dir(self, fd: int, comp: str, where: str, *, create: bool) -> int:
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(comp, 0o755, dir_fd=fd)
            return os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if stat.S_ISLNK(os.lstat(comp, dir_fd=fd).st_mode):
                raise UnsafePathError(f"layer entry path runs through the symlink {comp!r}", where=where) from exc
            raise InputError(f"layer entry path runs through {comp!r}, which is not a directory", where=where) from exc

    def _clear(self, pfd: int, base: str, keep_dir: bool = False) -> bool:
        """Remove ``base`` in ``pfd`` if present; returns True if it is a directory that was kept."""
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self._drop_cache_keeping(pfd)
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)
        return False

    def _drop_cache(self) -> None:
        if self._cache:
            os.close(self._cache[1])
            self._cache = None

    def _drop_cache_keeping(self, pfd: int) -> None:
        """Forget the cached parent unless it is ``pfd`` itself (which the caller still uses)."""
        if self._cache and self._cache[1] != pfd:
            self._drop_cache()

    def _mark_made(self, name: str) -> None:
        self.made.add(name)
        self._mark_kept(posixpath.dirname(name))

    def _mark_kept(self, name: str) -> None:
        while name and name not in self.kept:
            self.kept.add(name)
            name = posixpath.dirname(name)

    # ------------------------------------------------------------------ metadata

    def _need_root(self, what: str, where: str) -> None:
        if not self.is_root:
            raise MountError(f"storing {what} needs root", where=where)

    def _mode(self, m: tarfile.TarInfo) -> int:
        """The permission bits to give an entry: setuid/setgid dropped from non-directories unless ``setid``."""
        mode = stat.S_IMODE(m.mode)
        return mode if self.setid or m.isdir() else mode & ~(stat.S_ISUID | stat.S_ISGID)

    def _meta_fd(self, m: tarfile.TarInfo, fd: int) -> None:
        """Owner (as root), xattrs (as root), mode and mtime of an open file or directory."""
        if self.is_root:
            os.fchown(fd, m.uid, m.gid)
            for key, value in m.pax_headers.items():
                if key.startswith("SCHILY.xattr."):
                    _setxattr(fd, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"))
        os.fchmod(fd, self._mode(m))
        ns = int(m.mtime * 1_000_000_000)
        os.utime(fd, ns=(ns, ns))

    def _meta_path(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        """Owner, mode and mtime of a symlink, fifo or device, never following a link."""
        if self.is_root:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not m.issym():
            os.chmod(base, self._mode(m), dir_fd=pfd)
        ns = int(m.mtime * 1_000_000_000)
        os.utime(base, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    def _finish_dirs(self) -> None:
        """Apply directory owner/mode/mtime, deepest first; dirs replaced or gone since are skipped."""
        self._drop_cache()
        for name, m in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            parent, base = posixpath.split(name)
            pfd = self._open_existing(parent)
            if pfd is None:
                continue
            try:
                fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            except OSError:
                continue  # replaced by a non-directory later in the layer
            finally:
                os.close(pfd)
            try:
                self._meta_fd(m, fd)
            except OSError as exc:
                raise StoreError(f"cannot set directory metadata: {exc.strerror}", where=m.name) from exc
            finally:
                os.close(fd)


def _setxattr(fd: int, key: str, value: bytes) -> None:
    try:
        os.setxattr(fd, key, value)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
