"""The file manifest of a tree to ship: what each path is, its content digest, and what differs from a host's.

A tree is one or more layers (a local directory whose tree lands under a
prefix, minus top-level excludes; later layers win, directories merge, as an
overlay merges them). Each path's entry holds its type, mode, owner, size,
mtime, link target and a 128-bit hash of its content (xxh3-128, as rsync uses
for the same job: change detection, not a security boundary), plus a local *stat key*
(device, inode, size, mtime and ctime in ns). The manifest's digest covers
everything but the stat keys, so it names the content: two mounts of the same
image give the same digest. Content digests are what tell a changed file from
an unchanged one, since image trees carry fixed mtimes (0 or
SOURCE_DATE_EPOCH) and a same-size edit keeps size and mtime; hashing is
avoided wherever the stat key matches the one recorded with a digest (the
host's own marker serves as that cache), and otherwise done once per file per
run (:class:`DigestCache`), usually while the file streams out anyway.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Protocol, Sequence

import xxhash

from imgbuild.errors import InputError

__all__ = ["TreeLayer", "Entry", "Manifest", "DigestCache", "scan", "diff", "with_digest", "layers_of", "MARKER", "END",
           "file_digest", "stat_key", "HASH"]

HASH = "xxh3-128"
"""The content hash of manifest entries (a manifest made with another is treated as absent)."""

MARKER = ".imgbuild-manifest.gz"
END = ".imgbuild-end"
"""The last member of every stream: a host swaps the new tree in only when it arrived."""
"""The manifest of what imgbuild put in a destination, kept at its top (gzip'd JSON lines: ``zcat`` reads it)."""

_TYPES = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFCHR: "c", stat.S_IFBLK: "b",
          stat.S_IFIFO: "p"}


class TreeLayer(Protocol):
    """A local directory whose tree lands under ``prefix`` of the destination, minus top-level ``exclude``.

    A layer may also have ``modes``: (path, mode) pairs restoring setuid/setgid bits its directory lacks (a
    mounted image's files lose them in the shared layer cache; the image's own listing says which had them).
    """

    path: Path
    prefix: str
    exclude: tuple[str, ...]


@dataclass(frozen=True)
class _Layer:
    path: Path
    prefix: str = ""
    exclude: tuple[str, ...] = ()


class Entry(NamedTuple):
    """One path of a tree: type (f d l c b p), mode bits, owner, size, mtime, link target, content digest."""

    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    link: str = ""
    hash: str = ""
    key: str = ""
    rdev: int = 0
    src: str = ""  # the local file it comes from (not part of a host's manifest)

    def same(self, other: "Entry") -> bool:
        """True when ``other`` needs no re-send: same type, metadata, target and content."""
        return self.ident() == other.ident()

    def ident(self) -> tuple:
        """What names the entry's content and metadata (directories: type, mode and owner only)."""
        if self.type == "d":
            return ("d", self.mode, self.uid, self.gid)
        return (self.type, self.mode, self.uid, self.gid, self.size, self.mtime, self.link, self.hash, self.rdev)


class Manifest:
    """Relative path -> :class:`Entry` for a whole tree."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self._digest: str | None = None

    def digest(self) -> str:
        """sha256 over every entry's identity (stat keys and local sources left out): names the content."""
        if self._digest is None:
            rows = [[rel, *self.entries[rel].ident()] for rel in sorted(self.entries)]
            self._digest = "sha256:" + hashlib.sha256(json.dumps(rows).encode()).hexdigest()
        return self._digest

    def dumps(self) -> bytes:
        """The manifest as JSON lines: a header with the digest, then one row per path (stat keys kept)."""
        rows = [json.dumps({"imgbuild-manifest": 1, "hash": HASH, "digest": self.digest()})]
        rows += [json.dumps([rel, *self.entries[rel][:10]], separators=(",", ":")) for rel in sorted(self.entries)]
        return ("\n".join(rows) + "\n").encode()

    def marker(self) -> bytes:
        """:meth:`dumps` gzip'd, as the marker file holds it (hosts read it back with ``gzip -dc``)."""
        return gzip.compress(self.dumps(), 6, mtime=0)

    @classmethod
    def loads(cls, lines: Sequence[str]) -> "Manifest | None":
        """Parse :meth:`dumps` output; None when it is missing or not a manifest (treated as an empty host)."""
        try:
            head = json.loads(lines[0])
            if head.get("imgbuild-manifest") != 1 or head.get("hash") != HASH:
                return None
            rows = json.loads("[" + ",".join(line for line in lines[1:] if line.strip()) + "]")
            return cls({row[0]: Entry(*row[1:11]) for row in rows})
        except (IndexError, ValueError, TypeError, AttributeError):
            return None


def file_digest(path: str | Path, hasher: Callable[[], Any] = xxhash.xxh3_128) -> str:
    """The hash of a local file's content, hex: xxh3-128 unless another ``hasher`` (``hashlib.sha256``) is given."""
    h = hasher()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class DigestCache:
    """Content digests by stat key for one run; a file being hashed by one stream is not hashed by another."""

    def __init__(self, known: Iterable[Manifest] = ()) -> None:
        self._done: dict[str, str] = {}
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        for m in known:
            for e in m.entries.values():
                if e.type == "f" and e.key and e.hash:
                    self._done[e.key] = e.hash

    def known(self, key: str) -> str | None:
        """The digest recorded for ``key``, if any."""
        return self._done.get(key)

    def claim(self, key: str) -> bool:
        """True if the caller should hash this file as it reads it (nobody has, nobody is); then :meth:`put`."""
        with self._lock:
            if key in self._done or key in self._busy:
                return False
            self._busy.add(key)
            return True

    def put(self, key: str, digest: str | None) -> None:
        """Record the digest of a claimed file (None: the claimer gave up)."""
        with self._lock:
            if digest is not None:
                self._done[key] = digest
            self._busy.discard(key)

    def get(self, key: str, path: str) -> str:
        """The digest of ``path``: recorded, or hashed here (never waits for another stream)."""
        found = self._done.get(key)
        if found is None:
            found = file_digest(path)
            with self._lock:
                self._done[key] = found
        return found


def layers_of(source: Path | str | Sequence[TreeLayer]) -> list[TreeLayer]:
    """A path is one layer; a sequence of layers is taken as it is."""
    if isinstance(source, (str, os.PathLike)):
        return [_Layer(Path(source))]
    return list(source)


def scan(source: Path | str | Sequence[TreeLayer]) -> dict[str, Entry]:
    """Every path of the merged tree with its metadata and stat key (content digests not filled in)."""
    out: dict[str, Entry] = {}
    for layer in layers_of(source):
        root = Path(layer.path)
        if not root.is_dir():
            raise InputError(f"cannot send {root}: not a directory")
        prefix = layer.prefix.strip("/")
        if prefix:
            _parents(out, prefix, root)
        _walk(out, str(root), prefix, set(layer.exclude) | ({MARKER, END} if not prefix else set()))
        _restore_modes(out, prefix, getattr(layer, "modes", ()))
    return out


def _restore_modes(out: dict[str, Entry], prefix: str, modes: Sequence[tuple[str, int]]) -> None:
    """Put back setuid/setgid bits on the layer's regular files whose permission bits otherwise agree."""
    for rel, mode in modes:
        full = f"{prefix}/{rel}" if prefix else rel
        entry = out.get(full)
        if entry is not None and entry.type == "f" and entry.mode & 0o1777 == mode & 0o1777:
            out[full] = entry._replace(mode=mode & 0o7777)


def _parents(out: dict[str, Entry], prefix: str, root: Path) -> None:
    """Directories down to a layer's prefix exist (with the layer root's metadata, unless already there)."""
    parts = prefix.split("/")
    for i in range(1, len(parts) + 1):
        rel = "/".join(parts[:i])
        if rel not in out or out[rel].type != "d":
            _drop(out, rel)
            out[rel] = _entry(os.lstat(root), str(root))


def _walk(out: dict[str, Entry], top: str, prefix: str, exclude: set[str]) -> None:
    stack = [("", top)]
    while stack:
        rel_dir, dir_path = stack.pop()
        try:
            names = sorted(os.listdir(dir_path))
        except OSError as exc:
            raise InputError(f"cannot read {dir_path} to send it: {exc.strerror}") from exc
        for name in names:
            if not rel_dir and name in exclude:
                continue
            path = os.path.join(dir_path, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = f"{prefix}/{rel}" if prefix else rel
            st = os.lstat(path)
            if stat.S_IFMT(st.st_mode) not in _TYPES:
                continue  # sockets and the like are not part of an image tree
            entry = _entry(st, path)
            prev = out.get(full)
            if prev is None or not (prev.type == "d" and entry.type == "d"):
                _drop(out, full)
            out[full] = entry
            if entry.type == "d":
                stack.append((rel, path))


def _drop(out: dict[str, Entry], rel: str) -> None:
    """A later layer's non-directory hides what earlier layers had below ``rel``."""
    prev = out.get(rel)
    if prev is not None and prev.type == "d":
        below = rel + "/"
        for key in [k for k in out if k.startswith(below)]:
            del out[key]


def stat_key(st: os.stat_result) -> str:
    """A short id of a file's local identity and state (device, inode, size, mtime and ctime in ns)."""
    return xxhash.xxh3_64_hexdigest(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}".encode())


def _entry(st: os.stat_result, path: str) -> Entry:
    kind = _TYPES[stat.S_IFMT(st.st_mode)]
    link = os.readlink(path) if kind == "l" else ""
    size = st.st_size if kind == "f" else 0
    mtime = int(st.st_mtime) if kind != "d" else 0
    key = stat_key(st) if kind == "f" else ""
    rdev = st.st_rdev if kind in ("c", "b") else 0
    return Entry(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, mtime, link, "", key, rdev, path)


def diff(local: dict[str, Entry], host: Manifest | None, cache: DigestCache) -> tuple[list[str], list[str]]:
    """(paths to send, paths to remove first) to turn what ``host`` holds into ``local``.

    A regular file whose stat key matches the host's record takes the host's digest unhashed; one whose key
    differs is hashed (once per run) and sent only if its content or metadata differs.
    """
    if host is None:
        return sorted(local), []
    send, remove = [], []
    for rel, old in host.entries.items():
        new = local.get(rel)
        if new is None or new.type != old.type:
            remove.append(rel)
    for rel in sorted(local):
        new, old = local[rel], host.entries.get(rel)
        if old is None or new.type != old.type:
            send.append(rel)
            continue
        if new.type == "f":
            new = with_digest(new, cache)
            local[rel] = new
        if not new.same(old):
            send.append(rel)
    return send, _topmost(remove)


def _topmost(paths: list[str]) -> list[str]:
    """``paths`` without those below another of them (removing a directory removes what is in it)."""
    given = set(paths)

    def below_another(rel: str) -> bool:
        parts = rel.split("/")
        return any("/".join(parts[:i]) in given for i in range(1, len(parts)))

    return sorted(rel for rel in given if not below_another(rel))


def with_digest(entry: Entry, cache: DigestCache) -> Entry:
    """``entry`` with its content digest filled in (from the cache when its stat key is known)."""
    if entry.type != "f" or entry.hash:
        return entry
    return entry._replace(hash=cache.known(entry.key) or cache.get(entry.key, entry.src))
