"""What changed between two images, or an image and a directory: files and config.

A *tree* maps relative paths (``etc/kubelet.conf``, no leading slash) to
:class:`FileInfo` (kind, mode, owner, size, sha256, link target). An image's
tree is computed without extracting anything: each layer's tar is streamed
once into a list of members (content hashed on the way; kept in
``$IMGBUILD_HOME/cache/listings/<diffID>.json`` since a diffID names the exact
bytes), then the layers are merged in order the way a container runtime
does, honouring whiteouts (``.wh.<name>``) and opaque directories
(``.wh..wh..opq``). A directory's tree is a walk that never follows symlinks.
:func:`compare_trees` and :func:`compare_configs` then say what was added,
removed and changed; :func:`diff` does both for two named sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Mapping

from imgbuild.errors import InputError, UnsafePathError

__all__ = [
    "FileInfo", "Change", "TreeDiff", "MapDiff", "ConfigDiff", "ImageDiff",
    "tar_members", "merge_layers", "tree_from_dir", "compare_trees", "compare_configs", "collapse",
    "WHITEOUT_PREFIX", "OPAQUE_MARKER",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_CHUNK = 1 << 20
_COMPARED = ("kind", "mode", "size", "sha256", "linkname", "uid", "gid", "rdev")


@dataclass(frozen=True)
class FileInfo:
    """One filesystem entry: kind (file|dir|symlink|hardlink|char|block|fifo|socket|whiteout|opaque) and metadata."""

    path: str
    kind: str
    mode: int = 0o644
    size: int = 0
    sha256: str | None = None
    linkname: str | None = None
    uid: int = 0
    gid: int = 0
    rdev: tuple[int, int] | None = None

    def to_dict(self) -> dict:
        """As a JSON object (mode as an octal string, absent fields dropped)."""
        d = {k: v for k, v in asdict(self).items() if v is not None}
        d["mode"] = f"{self.mode:04o}"
        if self.rdev is not None:
            d["rdev"] = list(self.rdev)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FileInfo":
        """From :meth:`to_dict` output."""
        return cls(d["path"], d["kind"], int(d["mode"], 8), d.get("size", 0), d.get("sha256"), d.get("linkname"),
                   d.get("uid", 0), d.get("gid", 0), tuple(d["rdev"]) if d.get("rdev") else None)


# --- layers: tar members -> merged tree --------------------------------------------------------


def _norm(name: str) -> str:
    """A tar member name as a clean relative path; UnsafePathError on '..' components."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError("tar entry escapes the root", name)
    return "/".join(parts)


def _hash_stream(fh: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _member_info(tar: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> FileInfo:
    base = path.rsplit("/", 1)[-1]
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if base == OPAQUE_MARKER:
        return FileInfo(parent, "opaque", 0)
    if base.startswith(WHITEOUT_PREFIX):
        return FileInfo(f"{parent}/{base[4:]}".lstrip("/"), "whiteout", 0)
    mode = m.mode & 0o7777
    common = dict(mode=mode, uid=m.uid, gid=m.gid)
    if m.isreg():
        fh = tar.extractfile(m)
        digest = _hash_stream(fh) if fh is not None else hashlib.sha256(b"").hexdigest()
        return FileInfo(path, "file", size=m.size, sha256=digest, **common)
    if m.isdir():
        return FileInfo(path, "dir", **common)
    if m.issym():
        common["mode"] = 0o777  # Linux ignores a symlink's mode; tars record anything
        return FileInfo(path, "symlink", size=len(m.linkname.encode()), linkname=m.linkname, **common)
    if m.islnk():
        return FileInfo(path, "hardlink", linkname=_norm(m.linkname), **common)
    kind = "char" if m.ischr() else "block" if m.isblk() else "fifo" if m.isfifo() else "other"
    return FileInfo(path, kind, rdev=(m.devmajor, m.devminor) if kind in ("char", "block") else None, **common)


def tar_members(tar: tarfile.TarFile) -> list[FileInfo]:
    """Every member of one layer tar (streamed once, files hashed), whiteouts as kinds whiteout/opaque."""
    out = []
    for m in tar:
        path = _norm(m.name)
        if not path:
            continue
        out.append(_member_info(tar, m, path))
    return out


class _Tree:
    """A path -> FileInfo map that can drop whole subtrees quickly."""

    def __init__(self) -> None:
        self.items: dict[str, FileInfo] = {}
        self.children: dict[str, set[str]] = {}

    def remove(self, path: str, keep_self: bool = False) -> None:
        for child in list(self.children.pop(path, ())):
            self.remove(child)
        if not keep_self and self.items.pop(path, None) is not None:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            self.children.get(parent, set()).discard(path)

    def put(self, info: FileInfo) -> None:
        old = self.items.get(info.path)
        if old is not None and old.kind == "dir" and info.kind != "dir":
            self.remove(info.path, keep_self=True)
        self._parents(info.path)
        self.items[info.path] = info
        parent = info.path.rsplit("/", 1)[0] if "/" in info.path else ""
        self.children.setdefault(parent, set()).add(info.path)

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            anc = "/".join(parts[:i])
            cur = self.items.get(anc)
            if cur is None or cur.kind != "dir":
                self.put(FileInfo(anc, "dir", 0o755))


def merge_layers(layers: Iterable[list[FileInfo]]) -> dict[str, FileInfo]:
    """Apply layer member lists bottom to top as a runtime would; the merged tree, sorted by path."""
    tree = _Tree()
    for members in layers:
        for m in members:  # a layer's whiteouts hide what the layers below it hold
            if m.kind == "opaque":
                tree.remove(m.path, keep_self=True)
            elif m.kind == "whiteout":
                tree.remove(m.path)
        for m in members:
            if m.kind in ("opaque", "whiteout"):
                continue
            if m.kind == "hardlink":
                target = tree.items.get(m.linkname or "")  # a hardlink shares its target's inode
                m = FileInfo(m.path, "file", m.mode, uid=m.uid, gid=m.gid) if target is None else \
                    FileInfo(m.path, target.kind, target.mode, target.size, target.sha256, target.linkname,
                             target.uid, target.gid, target.rdev)
            tree.put(m)
    return dict(sorted(tree.items.items()))


# --- directories ---------------------------------------------------------------------------------


def _stat_info(path: str, full: str, st: os.stat_result, hash_files: bool) -> FileInfo:
    mode = stat.S_IMODE(st.st_mode)
    common = dict(mode=mode, uid=st.st_uid, gid=st.st_gid)
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFREG:
        digest = None
        if hash_files:
            with open(full, "rb") as fh:
                digest = _hash_stream(fh)
        return FileInfo(path, "file", size=st.st_size, sha256=digest, **common)
    if fmt == stat.S_IFDIR:
        return FileInfo(path, "dir", **common)
    if fmt == stat.S_IFLNK:
        target = os.readlink(full)
        return FileInfo(path, "symlink", size=len(os.fsencode(target)), linkname=target, **common)
    kinds = {stat.S_IFCHR: "char", stat.S_IFBLK: "block", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}
    kind = kinds.get(fmt, "other")
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("char", "block") else None
    return FileInfo(path, kind, rdev=rdev, **common)


def tree_from_dir(root: Path, *, hash_files: bool = True) -> dict[str, FileInfo]:
    """The tree under ``root`` (never following symlinks), sorted by path."""
    if not root.is_dir():
        raise InputError("not a directory", str(root))
    out: dict[str, FileInfo] = {}
    stack = [("", str(root))]
    while stack:
        rel, full = stack.pop()
        try:
            entries = list(os.scandir(full))
        except OSError as exc:
            raise InputError(f"cannot read directory: {exc.strerror}", full) from exc
        for e in entries:
            path = f"{rel}/{e.name}" if rel else e.name
            info = _stat_info(path, e.path, e.stat(follow_symlinks=False), hash_files)
            out[path] = info
            if info.kind == "dir":
                stack.append((path, e.path))
    return dict(sorted(out.items()))


# --- comparing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A path present on both sides whose listed ``fields`` differ."""

    path: str
    old: FileInfo
    new: FileInfo
    fields: tuple[str, ...]

    def to_dict(self) -> dict:
        """As a JSON object with the old and new value of each changed field."""
        old, new = self.old.to_dict(), self.new.to_dict()
        return {"path": self.path, "kind": self.new.kind,
                "changes": {f: {"old": old.get(f), "new": new.get(f)} for f in self.fields}}


@dataclass(frozen=True)
class TreeDiff:
    """Files added, removed and changed from tree A to tree B."""

    added: tuple[FileInfo, ...] = ()
    removed: tuple[FileInfo, ...] = ()
    changed: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict:
        """As a JSON object."""
        return {"added": [i.to_dict() for i in self.added], "removed": [i.to_dict() for i in self.removed],
                "changed": [c.to_dict() for c in self.changed]}


def _differing(a: FileInfo, b: FileInfo, owners: bool) -> tuple[str, ...]:
    fields = []
    for f in _COMPARED:
        if not owners and f in ("uid", "gid"):
            continue
        if a.kind == b.kind == "dir" and f == "size":
            continue
        if getattr(a, f) != getattr(b, f):
            fields.append(f)
    return tuple(fields)


def compare_trees(a: Mapping[str, FileInfo], b: Mapping[str, FileInfo], *, owners: bool = True) -> TreeDiff:
    """What changed from ``a`` to ``b``; ``owners=False`` ignores uid/gid."""
    added = tuple(b[p] for p in sorted(b.keys() - a.keys()))
    removed = tuple(a[p] for p in sorted(a.keys() - b.keys()))
    changed = []
    for p in sorted(a.keys() & b.keys()):
        fields = _differing(a[p], b[p], owners)
        if fields:
            changed.append(Change(p, a[p], b[p], fields))
    return TreeDiff(added, removed, tuple(changed))


def collapse(infos: Iterable[FileInfo]) -> list[tuple[FileInfo, int, int]]:
    """Fold entries under a listed directory into it: (top entry, entries below it, bytes below it)."""
    out: list[tuple[FileInfo, int, int]] = []
    for info in sorted(infos, key=lambda i: i.path):
        if out and out[-1][0].kind == "dir" and info.path.startswith(out[-1][0].path + "/"):
            top, count, size = out[-1]
            out[-1] = (top, count + 1, size + (info.size if info.kind == "file" else 0))
        else:
            out.append((info, 0, 0))
    return out


@dataclass(frozen=True)
class MapDiff:
    """Keys added, removed and changed (old, new) between two mappings."""

    added: Mapping[str, Any] = field(default_factory=dict)
    removed: Mapping[str, Any] = field(default_factory=dict)
    changed: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, a: Mapping[str, Any], b: Mapping[str, Any]) -> "MapDiff":
        """The difference from ``a`` to ``b``."""
        return cls({k: b[k] for k in sorted(b.keys() - a.keys())}, {k: a[k] for k in sorted(a.keys() - b.keys())},
                   {k: (a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]})

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict:
        """As a JSON object."""
        return {"added": dict(self.added), "removed": dict(self.removed),
                "changed": {k: {"old": o, "new": n} for k, (o, n) in self.changed.items()}}


_OWN_KEYS = {"Labels", "Env", "Cmd", "Entrypoint"}
_SKIPPED_TOP = {"config", "rootfs", "history"}


@dataclass(frozen=True)
class ConfigDiff:
    """Differences of labels, env, cmd, entrypoint and every other config key."""

    labels: MapDiff = MapDiff()
    env: MapDiff = MapDiff()
    cmd: tuple[list, list] | None = None
    entrypoint: tuple[list, list] | None = None
    other: MapDiff = MapDiff()

    def __bool__(self) -> bool:
        return bool(self.labels or self.env or self.cmd or self.entrypoint or self.other)

    def to_dict(self) -> dict:
        """As a JSON object."""
        pair = lambda p: None if p is None else {"old": p[0], "new": p[1]}  # noqa: E731
        return {"labels": self.labels.to_dict(), "env": self.env.to_dict(), "cmd": pair(self.cmd),
                "entrypoint": pair(self.entrypoint), "other": self.other.to_dict()}


def _env_map(env: Iterable[str]) -> dict[str, str]:
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)


def _other_keys(doc: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in _SKIPPED_TOP}
    for k, v in (doc.get("config") or {}).items():
        if k not in _OWN_KEYS:
            out[f"config.{k}"] = v
    return out


def compare_configs(a: Mapping[str, Any], b: Mapping[str, Any]) -> ConfigDiff:
    """Compare two image config documents (the parsed JSON)."""
    ca, cb = a.get("config") or {}, b.get("config") or {}
    cmd = (ca.get("Cmd") or [], cb.get("Cmd") or [])
    ep = (ca.get("Entrypoint") or [], cb.get("Entrypoint") or [])
    return ConfigDiff(
        labels=MapDiff.of(ca.get("Labels") or {}, cb.get("Labels") or {}),
        env=MapDiff.of(_env_map(ca.get("Env") or []), _env_map(cb.get("Env") or [])),
        cmd=cmd if cmd[0] != cmd[1] else None,
        entrypoint=ep if ep[0] != ep[1] else None,
        other=MapDiff.of(_other_keys(a), _other_keys(b)),
    )


@dataclass(frozen=True)
class ImageDiff:
    """The whole answer of ``imgbuild diff A B``: file changes and (for two images) config changes."""

    a: str
    b: str
    files: TreeDiff
    config: ConfigDiff | None = None

    def to_dict(self) -> dict:
        """As the JSON object ``imgbuild diff --json`` prints."""
        return {"a": self.a, "b": self.b, "files": self.files.to_dict(),
                "config": self.config.to_dict() if self.config is not None else None}


def listing_to_json(members: list[FileInfo]) -> bytes:
    """Serialise one layer's member list for the listing cache."""
    return json.dumps({"v": 1, "members": [m.to_dict() for m in members]}, separators=(",", ":")).encode()


def listing_from_json(raw: bytes) -> list[FileInfo]:
    """Read a cached member list; ValueError if it is not one."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("v") != 1:
        raise ValueError("unknown listing format")
    return [FileInfo.from_dict(d) for d in data["members"]]
