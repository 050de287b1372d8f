"""COPY/ADD/APP semantics for the native builder: which entries land where, exactly as Docker does.

Given resolved sources, a destination and the stage's file tree, :func:`copy_entries`
returns the layer entries, each with a *stamp* for the step cache:

* a directory source copies its contents (not itself) into the destination, which
  takes the source directory's mode;
* a file source goes to ``dest/<name>`` when the destination ends with ``/``, is
  an existing directory, or there are several sources; else to ``dest`` itself;
* symlinks inside a copied tree are kept as links; a source that is itself a
  link was already followed (inside the context) by :mod:`.context`;
* ``--chown`` takes numeric ``uid[:gid]`` (or ``root``), ``--chmod`` an octal mode,
  applied to everything copied and to the directories the copy creates;
* parent directories that the lower layers do not have are added (0755), ones
  they have are left out, so a COPY never resets ``/tmp`` to 0755.

ADD extracts local tar archives (plain, gzip, bzip2, xz) into the destination.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from imgbuild.builder.context import BuildContext, FileInfo, IgnoreRules, Source
from imgbuild.errors import BuildError, ContextError, StoreError, UnsafePathError
from imgbuild.oci.layer import Entry

__all__ = ["Planned", "FsTree", "copy_entries", "bytes_entry", "parse_chown", "parse_chmod", "dest_path",
           "archive_kind", "extract_archive"]

_ARCHIVE_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_OCTAL = re.compile(r"[0-7]{3,4}")


@dataclass(frozen=True)
class Planned:
    """One layer entry and what identifies its content for the step cache."""

    entry: Entry
    stamp: tuple


@dataclass
class FsTree:
    """The kinds of the paths a stage's filesystem has so far (for dest and parent-dir decisions)."""

    kinds: dict[str, str] = field(default_factory=dict)

    def is_dir(self, path: str) -> bool:
        """True if ``path`` is a directory in the tree (the root always is)."""
        return path == "" or self.kinds.get(path) == "dir"

    def add(self, entries: list[Entry]) -> None:
        """Record the entries of a new layer."""
        for e in entries:
            self.kinds[e.arcname] = "dir" if e.kind == "dir" else e.kind

    def copy(self) -> "FsTree":
        """An independent copy (a stage built FROM another stage)."""
        return FsTree(dict(self.kinds))


def parse_chown(text: str | None, where: str) -> tuple[int, int]:
    """``--chown`` as (uid, gid): numeric ids, or ``root``; names need a passwd file the native builder lacks."""
    if not text:
        return 0, 0
    user, _, group = text.partition(":")
    ids = []
    for part in (user, group or user):
        if part.isdigit():
            ids.append(int(part))
        elif part == "root":
            ids.append(0)
        else:
            raise BuildError(f"--chown={text}: the native builder takes numeric ids (or root), not {part!r}; "
                             "use --backend buildah to look names up in the image", where)
    return ids[0], ids[1]


def parse_chmod(text: str | None, where: str) -> int | None:
    """``--chmod`` as permission bits; only octal modes in the native builder."""
    if not text:
        return None
    if not _OCTAL.fullmatch(text):
        raise BuildError(f"--chmod={text}: the native builder takes an octal mode such as 0644", where)
    return int(text, 8)


def dest_path(dest: str, workdir: str | None) -> tuple[str, bool]:
    """The destination as an arcname (no leading '/') and whether it names a directory by its spelling."""
    named_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
    full = posixpath.normpath(posixpath.join(workdir or "/", dest))
    arc = full.lstrip("/")
    return ("" if arc == "." else arc), named_dir or full == "/"


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if base and rel else (base or rel)


def _stamp(arc: str, e: Entry, info: FileInfo | None) -> tuple:
    meta = (arc, e.kind, e.mode, e.uid, e.gid, e.linkname)
    if info is not None and e.kind == "file":
        return (*meta, info.size, info.mtime_ns, info.ctime_ns, info.ino, info.dev)
    return meta


def _entry(arc: str, info: FileInfo, uid: int, gid: int, chmod: int | None) -> Planned:
    mode = info.mode if chmod is None or info.kind == "symlink" else chmod
    if info.kind == "symlink":
        e = Entry(arc, "symlink", linkname=info.linkname, mode=0o777, uid=uid, gid=gid)
    elif info.kind == "dir":
        e = Entry(arc, "dir", mode=mode, uid=uid, gid=gid)
    else:
        e = Entry(arc, "file", source=Path(info.path), mode=mode, uid=uid, gid=gid)
    return Planned(e, _stamp(arc, e, info))


def bytes_entry(arc: str, data: bytes, mode: int, uid: int, gid: int) -> Planned:
    """A literal-content entry (a heredoc), stamped by the content's hash."""
    e = Entry(arc, "bytes", data=data, mode=mode, uid=uid, gid=gid)
    return Planned(e, (arc, "bytes", mode, uid, gid, hashlib.sha256(data).hexdigest()))


def copy_entries(sources: list[tuple[BuildContext, Source]], dest: str, named_dir: bool, tree: FsTree, *,
                 uid: int = 0, gid: int = 0, chmod: int | None = None, exclude: tuple[str, ...] = ()) -> list[Planned]:
    """The entries one COPY of ``sources`` to ``dest`` produces (parents included where missing).

    ``exclude`` (``COPY --exclude``) patterns, with ignore-file semantics, drop paths
    relative to each source directory.
    """
    into_dir = named_dir or len(sources) > 1 or tree.is_dir(dest)
    rules = IgnoreRules.parse("\n".join(exclude)) if exclude else None
    out: list[Planned] = []
    for ctx, src in sources:
        infos = ctx.walk(src)
        if rules is not None:
            infos = [i for i in infos if not i.rel or not rules.ignored(i.rel)]
        if src.is_dir:
            for info in infos:
                out.append(_entry(_join(dest, info.rel), info, uid, gid, chmod))
            if not dest:
                out = [p for p in out if p.entry.arcname]
        else:
            name = posixpath.basename(src.rel) or src.path.name
            arc = _join(dest, name) if into_dir else dest
            if not arc:
                raise ContextError(f"cannot copy the file {src.pattern!r} onto the image's root directory")
            out.append(_entry(arc, infos[0], uid, gid, chmod))
            if into_dir and dest and not tree.is_dir(dest):
                out.append(Planned(Entry(dest, "dir", mode=0o755, uid=uid, gid=gid),
                                   (dest, "dir", 0o755, uid, gid, None)))
    return add_parents(out, tree, uid, gid)


def add_parents(planned: list[Planned], tree: FsTree, uid: int = 0, gid: int = 0) -> list[Planned]:
    """Add the parent directories the entries need that neither they nor the tree below have."""
    have = {p.entry.arcname for p in planned}
    extra: list[Planned] = []
    for p in planned:
        parts = p.entry.arcname.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            parent = "/".join(parts[:k])
            if parent not in have and not tree.is_dir(parent):
                have.add(parent)
                e = Entry(parent, "dir", mode=0o755, uid=uid, gid=gid)
                extra.append(Planned(e, (parent, "dir", 0o755, uid, gid, None)))
    return extra + planned


def archive_kind(path: Path) -> str | None:
    """``tar``, ``gzip``, ``bzip2`` or ``xz`` if ``path`` is an archive ADD extracts, else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    for magic, kind in _ARCHIVE_MAGIC:
        if head.startswith(magic):
            return kind if _is_tar(path, kind) else None
    return "tar" if len(head) >= 262 and head[257:262] == b"ustar" else None


def _is_tar(path: Path, kind: str) -> bool:
    opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind]
    try:
        with opener(path, "rb") as fh:
            head = fh.read(512)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def extract_archive(path: Path, dest_dir: Path, where: str) -> None:
    """Extract a local tar archive for ADD, refusing entries that escape ``dest_dir``.

    The layer extractor does it (no '..', no writes through symlinks), not tarfile's extraction
    filters: Python has those only from 3.11.4, and Debian bookworm's python3 is 3.11.2.
    """
    from imgbuild.oci.layer import extract_tar

    try:
        with tarfile.open(path, "r:*") as tar:
            extract_tar(tar, dest_dir, whiteouts=False, setid=True)  # the user's own archive: as docker ADD
    except UnsafePathError as exc:
        raise UnsafePathError(f"ADD archive {path.name}: {exc}", where) from exc
    except (tarfile.TarError, OSError, EOFError, StoreError) as exc:
        raise BuildError(f"ADD cannot extract {path.name}: {exc}", where) from exc
