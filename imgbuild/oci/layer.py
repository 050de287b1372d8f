"""Layer tars: a deterministic, streaming writer and a safe reader/extractor.

:func:`write_layer` turns :class:`Entry` values into a reproducible PAX tar
(entries in tree order, fixed mtime, numeric owners, no atime/ctime, PAX
records only where ustar cannot hold a value) and streams it through zstd
(multi-threaded) or gzip, hashing the uncompressed tar (diffID) and the
compressed blob (digest) in the same single pass; a layer is never held in
memory. :func:`extract_layer` applies a layer to a directory without ever
following a symlink or leaving the tree (see :mod:`imgbuild.oci._extract`),
and applies OCI whiteouts. :func:`open_layer` and :func:`iter_layer_members`
read layers for diff and inspect.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import posixpath
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping

import zstandard

from imgbuild.errors import BuildError, ContextError, ImgbuildError, InputError, UnsafePathError
from imgbuild.oci._pipeline import Batcher, Forward, HashingWriter, Stage
from imgbuild.oci.model import Descriptor, Digest, MediaType

__all__ = [
    "Entry", "LayerResult", "entries_from_tree", "write_layer", "open_layer", "extract_layer",
    "extract_tar", "iter_layer_members", "whiteout_entry", "opaque_entry", "tree_key", "WHITEOUT_PREFIX", "WHITEOUT_OPAQUE",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
CHUNK = 1 << 20
_KINDS = frozenset({"file", "dir", "symlink", "hardlink", "bytes", "fifo", "chardev", "blockdev"})
_TAR_TYPES = {"file": tarfile.REGTYPE, "bytes": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
              "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
              "chardev": tarfile.CHRTYPE, "blockdev": tarfile.BLKTYPE}
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile)
_COMPRESSIONS = ("zstd", "gzip", "none", "", None)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Entry:
    """One tar entry to write: a file streamed from disk, literal bytes, a directory or a link."""

    arcname: str
    kind: str
    source: Path | None = None
    data: bytes | None = None
    linkname: str | None = None
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int | None = None
    devmajor: int = 0
    devminor: int = 0


def whiteout_entry(path: str) -> Entry:
    """An OCI whiteout entry that deletes ``path`` of lower layers."""
    parent, name = posixpath.split(_clean_arcname(path))
    return Entry(posixpath.join(parent, WHITEOUT_PREFIX + name), "bytes", data=b"", mode=0o600)


def opaque_entry(directory: str) -> Entry:
    """An OCI opaque-whiteout entry that hides everything lower layers have in ``directory``."""
    return Entry(posixpath.join(_clean_arcname(directory), WHITEOUT_OPAQUE), "bytes", data=b"", mode=0o600)


def tree_key(arcname: str) -> tuple[str, ...]:
    """Sort key giving tree order (a dir right before its contents), like ``tar --sort=name``."""
    return tuple(arcname.split("/"))


def _clean_arcname(name: str) -> str:
    """``name`` relative, normalised, '/'-separated; ``..`` is refused."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError("layer entry name contains '..'", where=name)
    return "/".join(parts)


@dataclass(frozen=True)
class LayerResult:
    """What :func:`write_layer` produced: both digests, the blob size and its media type."""

    diff_id: Digest
    digest: Digest
    size: int
    media_type: str

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> Descriptor:
        """The manifest descriptor of this layer blob."""
        return Descriptor(self.media_type, self.digest, self.size, dict(annotations or {}))


# --------------------------------------------------------------------------- tree walking


def entries_from_tree(root: Path, dest: str = "", *, include: Callable[[str], bool] | None = None,
                      uid: int = 0, gid: int = 0, mode: int | None = None) -> list[Entry]:
    """Entries for everything under ``root`` (symlinks kept as links), mapped under ``dest``, in tree order.

    ``include(relpath)`` filters by path relative to ``root``; an excluded directory is not
    descended into. Parent directories of ``dest`` come first (0o755). Files that share an
    inode become hardlinks to the first of them in tree order. ``mode`` overrides the
    permission bits of files and directories (like ``COPY --chmod``).
    """
    root = Path(root)
    dest = _clean_arcname(dest)
    try:
        top = os.lstat(root)
    except OSError as exc:
        raise ContextError(f"cannot read {root}: {exc.strerror}", where=str(root)) from exc
    if not stat.S_ISDIR(top.st_mode) and not dest:
        dest = root.name
    entries = [Entry(p, "dir", mode=0o755, uid=uid, gid=gid) for p in _parents(dest)]
    walked: list[tuple[str, str, os.stat_result]] = []  # (arcname, path on disk, lstat)
    if stat.S_ISDIR(top.st_mode):
        if dest:
            walked.append((dest, str(root), top))
        _walk(str(root), "", dest, include, walked)
    else:
        walked.append((dest, str(root), top))
    walked.sort(key=lambda w: tree_key(w[0]))
    seen: dict[tuple[int, int], str] = {}
    for arcname, path, st in walked:
        entry = _entry_for(arcname, path, st, seen, uid, gid, mode)
        if entry is not None:
            entries.append(entry)
    return entries


def _parents(arcname: str) -> list[str]:
    parts = arcname.split("/")[:-1] if arcname else []
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _walk(path: str, rel: str, dest: str, include, out: list) -> None:
    """Depth-first scan of ``path`` (never following symlinks) appending (arcname, path, lstat)."""
    try:
        with os.scandir(path) as it:
            children = list(it)
    except OSError as exc:
        raise ContextError(f"cannot list {path}: {exc.strerror}", where=path) from exc
    for child in children:
        crel = f"{rel}/{child.name}" if rel else child.name
        if include is not None and not include(crel):
            continue
        try:
            st = child.stat(follow_symlinks=False)
        except OSError as exc:
            raise ContextError(f"cannot stat {child.path}: {exc.strerror}", where=child.path) from exc
        out.append((f"{dest}/{crel}" if dest else crel, child.path, st))
        if stat.S_ISDIR(st.st_mode):
            _walk(child.path, crel, dest, include, out)


def _entry_for(arcname, path, st, seen, uid, gid, mode) -> Entry | None:
    """The Entry for one walked path; sockets are skipped like tar does."""
    fmt = stat.S_IFMT(st.st_mode)
    perm = stat.S_IMODE(st.st_mode) if mode is None else mode
    if fmt == stat.S_IFDIR:
        return Entry(arcname, "dir", mode=perm, uid=uid, gid=gid)
    if fmt == stat.S_IFLNK:
        try:
            target = os.readlink(path)
        except OSError as exc:
            raise ContextError(f"cannot read link {path}: {exc.strerror}", where=path) from exc
        return Entry(arcname, "symlink", linkname=target, mode=0o777, uid=uid, gid=gid)
    if fmt == stat.S_IFREG:
        if st.st_nlink > 1:
            first = seen.setdefault((st.st_dev, st.st_ino), arcname)
            if first != arcname:
                return Entry(arcname, "hardlink", linkname=first, mode=perm, uid=uid, gid=gid)
        return Entry(arcname, "file", source=Path(path), mode=perm, uid=uid, gid=gid)
    if fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
        kind = {stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev", stat.S_IFIFO: "fifo"}[fmt]
        return Entry(arcname, kind, mode=perm, uid=uid, gid=gid,
                     devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev))
    return None


# --------------------------------------------------------------------------- writing


def _compressor(compression: str, sink, level: int | None, threads: int):
    """A writable stream compressing into ``sink`` and its media type; close() ends the stream."""
    if compression == "zstd":
        workers = (os.cpu_count() or 1) if threads < 0 else max(threads, 1)  # output is the same for any >= 1
        cctx = zstandard.ZstdCompressor(level=3 if level is None else level, threads=workers)
        return cctx.stream_writer(sink, closefd=False), MediaType.OCI_LAYER_ZSTD
    if compression == "gzip":
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0,
                           compresslevel=6 if level is None else level)
        return gz, MediaType.OCI_LAYER_GZIP
    return None, MediaType.OCI_LAYER


def write_layer(entries: Iterable[Entry], out: BinaryIO, *, compression: str = "zstd", level: int | None = None,
                epoch: int | None = None, threads: int = -1,
                on_progress: Callable[[int], None] | None = None) -> LayerResult:
    """Write ``entries`` as a deterministic tar, compressed, to ``out``; returns both digests and the size.

    Entries are put in tree order; for equal names the last one given wins. ``epoch``
    (default ``$SOURCE_DATE_EPOCH`` or 0) is the mtime of entries without their own.
    Files are read on this thread; hashing+compression and hashing+writing of the
    output run on two more, so the work overlaps and memory stays at a few MiB.
    ``on_progress`` is called with the size of each ~1 MiB batch of uncompressed tar as it is produced.
    """
    if compression not in _COMPRESSIONS:
        raise InputError(f"unknown compression {compression!r}: expected zstd, gzip or none")
    if epoch is None:
        epoch = _env_epoch()
    ordered = _ordered(entries)
    blob = HashingWriter(out)
    out_stage = Stage(blob.write, depth=32, name="layer-out")
    sink = Forward(out_stage.put)
    comp, media_type = _compressor(compression, sink, level, threads)
    diff = HashingWriter()
    feed = out_stage if comp is None else Stage(_feeder(diff, comp), depth=4, name="layer-compress")
    try:
        tar = Batcher(feed.put if on_progress is None else _counted(feed.put, on_progress))
        _write_tar(ordered, tar, epoch)
        tar.flush()
        if comp is not None:
            feed.close()
            comp.close()
        out_stage.close()
    except BaseException as exc:
        feed.abort()
        out_stage.abort()
        if comp is not None:  # closed now, into nothing: not later by a finalizer flushing into the dead stages
            sink.discard()
            with contextlib.suppress(Exception):
                comp.close()
        if isinstance(exc, OSError):
            raise ImgbuildError(f"cannot write layer: {exc.strerror or exc}") from exc
        if isinstance(exc, zstandard.ZstdError):
            raise ImgbuildError(f"zstd compression failed: {exc}") from exc
        raise
    blob.flush()
    digest = blob.digest()
    return LayerResult(digest if comp is None else diff.digest(), digest, blob.size, media_type)


def _counted(put: Callable[[bytes], None], on_progress: Callable[[int], None]) -> Callable[[bytes], None]:
    """``put`` that also reports how many bytes it was handed."""
    def counted(item: bytes) -> None:
        put(item)
        on_progress(len(item))
    return counted


def _feeder(diff: HashingWriter, comp) -> Callable[[bytes], None]:
    """The compress stage's step: hash the uncompressed tar, then compress it."""
    def feed(chunk: bytes) -> None:
        diff.write(chunk)
        comp.write(chunk)
    return feed


def _env_epoch() -> int:
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip() or "0"
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"SOURCE_DATE_EPOCH must be an integer, not {raw!r}") from exc


def _ordered(entries: Iterable[Entry]) -> list[Entry]:
    """Entries with clean names, deduplicated (last wins), in tree order."""
    by_name: dict[str, Entry] = {}
    for e in entries:
        if e.kind not in _KINDS:
            raise InputError(f"unknown layer entry kind {e.kind!r}", where=e.arcname)
        name = _clean_arcname(e.arcname)
        if not name:
            continue  # the layer root itself is never an entry
        by_name[name] = e
    return [by_name[n] for n in sorted(by_name, key=tree_key)]


def _write_tar(entries: list[Entry], tar: Batcher, epoch: int) -> None:
    """Stream headers and contents; hardlinks must point at an entry written before them."""
    written: set[str] = set()
    for e in entries:
        name = _clean_arcname(e.arcname)
        if e.kind == "hardlink" and _clean_arcname(e.linkname or "") not in written:
            raise InputError(f"hardlink target {e.linkname!r} is not an earlier entry of the layer", where=name)
        if e.kind == "file":
            _write_file(e, name, tar, epoch)
        else:
            data = (e.data or b"") if e.kind == "bytes" else b""
            tar.write(_header(e, name, len(data), epoch))
            if data:
                tar.write(data)
                tar.write(_padding(len(data)))
        written.add(name)
    tar.write(bytes(2 * tarfile.BLOCKSIZE))


def _header(e: Entry, name: str, size: int, epoch: int) -> bytes:
    """A PAX-format header: ustar fields, plus PAX records only for what ustar cannot hold."""
    info = tarfile.TarInfo(name)
    info.type = _TAR_TYPES[e.kind]
    info.size = size if info.type == tarfile.REGTYPE else 0
    info.mode = stat.S_IMODE(e.mode)
    info.uid, info.gid = e.uid, e.gid
    info.uname = info.gname = ""
    info.mtime = int(epoch if e.mtime is None else e.mtime)
    if e.kind in ("symlink", "hardlink"):
        if not e.linkname:
            raise InputError(f"{e.kind} entry without a link target", where=name)
        info.linkname = e.linkname if e.kind == "symlink" else _clean_arcname(e.linkname)
    info.devmajor, info.devminor = e.devmajor, e.devminor
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def _write_file(e: Entry, name: str, tar: Batcher, epoch: int) -> None:
    """Stream one file from disk in 1 MiB chunks; a file that shrinks while read is an error."""
    if e.source is None:
        raise InputError("file entry without a source path", where=name)
    where = str(e.source)
    try:
        f = open(e.source, "rb", buffering=0)
        size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise ContextError(f"cannot read {where}: {exc.strerror or exc}", where=where) from exc
    with f:
        tar.write(_header(e, name, size, epoch))
        left = size
        while left > 0:
            try:
                chunk = f.read(min(left, CHUNK))  # a fresh bytes object: the next stage owns it
            except OSError as exc:
                raise ContextError(f"cannot read {where}: {exc.strerror or exc}", where=where) from exc
            if not chunk:
                raise BuildError(f"file shrank while being written into a layer ({left} bytes missing)", where=where)
            tar.write(chunk)
            left -= len(chunk)
    tar.write(_padding(size))


# --------------------------------------------------------------------------- reading


class _Prefixed(io.RawIOBase):
    """A readable stream that first returns ``prefix`` and then the rest of ``raw``."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        self._prefix = prefix
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)


def _sniff(fileobj: BinaryIO) -> tuple[bytes, BinaryIO]:
    """The first 4 bytes of ``fileobj`` and a stream that still starts with them."""
    head = b""
    while len(head) < 4:
        more = fileobj.read(4 - len(head))
        if not more:
            break
        head += more
    return head, io.BufferedReader(_Prefixed(head, fileobj), CHUNK)


def open_layer(fileobj: BinaryIO, media_type: str) -> BinaryIO:
    """A readable stream of the uncompressed tar; the content's magic bytes win over a wrong media type."""
    head, stream = _sniff(fileobj)
    if head.startswith(_ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().stream_reader(stream, read_size=CHUNK, read_across_frames=True)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return stream


def _tar_stream(fileobj: BinaryIO, media_type: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=open_layer(fileobj, media_type), mode="r|", bufsize=CHUNK)
    except _READ_ERRORS + (OSError,) as exc:
        raise InputError(f"corrupt layer, or not a tar ({media_type}): {exc}") from exc


def iter_layer_members(fileobj: BinaryIO, media_type: str) -> Iterator[tarfile.TarInfo]:
    """The tar members of a layer, in order, streamed (their contents are skipped)."""
    tf = _tar_stream(fileobj, media_type)
    try:
        yield from tf
    except _READ_ERRORS + (OSError,) as exc:
        raise InputError(f"corrupt layer ({media_type}): {exc}") from exc


def extract_layer(fileobj: BinaryIO, media_type: str, dest: Path, *, whiteouts: bool = True,
                  devices: bool = False, keep_whiteout_files: bool = False, setid: bool = False) -> None:
    """Apply a layer to ``dest`` safely: no '..', no writes through symlinks, whiteouts applied.

    Raises UnsafePathError (where = the entry name) for an entry that would leave ``dest``.
    With ``keep_whiteout_files`` whiteouts are stored as overlayfs whiteouts instead. Device nodes
    are made only with ``devices`` (as root), setuid/setgid bits kept only with ``setid``.
    """
    tf = _tar_stream(fileobj, media_type)
    try:
        extract_tar(tf, Path(dest), whiteouts=whiteouts, devices=devices, overlay=keep_whiteout_files, setid=setid)
    except _READ_ERRORS as exc:
        raise InputError(f"corrupt layer ({media_type}): {exc}") from exc


def extract_tar(tar: tarfile.TarFile, dest: Path, *, whiteouts: bool = True, devices: bool = False,
                overlay: bool = False, setid: bool = False) -> None:
    """Apply every member of an open tar to ``dest`` with the safe layer extractor (no '..', no symlink escapes).

    ``whiteouts`` applies OCI whiteouts (False: they are plain files), ``overlay`` keeps them as
    overlayfs whiteouts instead; UnsafePathError names an entry that would leave ``dest``. ``devices``
    makes device nodes (as root) and ``setid`` keeps setuid/setgid bits; both are off for untrusted trees.
    """
    from imgbuild.oci._extract import Extractor

    with Extractor(Path(dest), whiteouts=whiteouts, devices=devices, overlay=overlay, setid=setid) as ex:
        for member in tar:
            ex.apply(member, tar)
