"""Mount records and the kernel's mount table: what imgbuild has mounted, and whether it still is.

Every mount imgbuild makes is described by a JSON record
``$IMGBUILD_HOME/mounts/<id>.json`` (written atomically), next to its working
directory ``$IMGBUILD_HOME/mounts/<id>/`` (``merged/`` the mount point, and for
writable mounts ``upper/`` and ``work/``). A record is written in state
``pending`` before anything is mounted and switched to ``mounted`` after, so
a process that dies half-way leaves a record that :func:`staleness` recognises
(pending and its creator is gone) and the mount module cleans up. A
``mounted`` record whose mount point is no longer in ``/proc/self/mountinfo``
(unmounted by hand, reboot) or whose directory was removed is stale too.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

from imgbuild.fsutil import atomic_write
from imgbuild.errors import MountError
from imgbuild.scratch import pid_alive

__all__ = [
    "MECHANISMS", "MountRecord", "MountInfoEntry", "parse_mountinfo", "read_mountinfo", "mounted_points",
    "write_record", "read_record", "load_records", "remove_record", "pid_alive", "staleness", "new_mount_id",
]

MECHANISMS = ("overlay", "fuse-overlayfs", "copy")
_ID_RE = re.compile(r"[a-f0-9]{12}")


@dataclass(frozen=True)
class MountRecord:
    """One mount made by imgbuild: which image, where, how, and by whom."""

    id: str
    ref: str
    digest: str
    path: str
    mechanism: str
    rw: bool = False
    state: str = "pending"
    upper: str | None = None
    work: str | None = None
    lowers: tuple[str, ...] = ()
    unpacked: tuple[str, ...] = ()
    pid: int = 0
    created: str = ""
    note: str = ""

    @property
    def root(self) -> Path:
        """The mount's working directory (holds ``merged/``, ``upper/``, ``work/``)."""
        return Path(self.path).parent

    def to_dict(self) -> dict:
        """As the JSON object stored on disk (and printed by ``imgbuild mounts --json``)."""
        d = asdict(self)
        d["lowers"] = list(self.lowers)
        d["unpacked"] = list(self.unpacked)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "MountRecord":
        """From the stored JSON object; MountError if it is not a record."""
        try:
            fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            fields["lowers"] = tuple(fields.get("lowers") or ())
            fields["unpacked"] = tuple(fields.get("unpacked") or ())
            rec = cls(**fields)
        except (TypeError, KeyError) as exc:
            raise MountError(f"invalid mount record: {exc}") from exc
        if not _ID_RE.fullmatch(rec.id) or rec.mechanism not in MECHANISMS:
            raise MountError("invalid mount record: bad id or mechanism", rec.id)
        return rec

    def with_(self, **changes: object) -> "MountRecord":
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]


def new_mount_id() -> str:
    """A fresh random 12-hex-digit mount id."""
    return os.urandom(6).hex()


# --- /proc/self/mountinfo ---------------------------------------------------------------------


@dataclass(frozen=True)
class MountInfoEntry:
    """One line of ``/proc/<pid>/mountinfo``."""

    mount_id: int
    parent_id: int
    mountpoint: str
    fstype: str
    source: str
    options: tuple[str, ...] = ()
    super_options: tuple[str, ...] = field(default_factory=tuple)


def _unescape(text: str) -> str:
    """Undo the kernel's octal escapes (``\\040`` for space, ``\\011`` tab, ``\\012`` newline, ``\\134``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[MountInfoEntry]:
    """Parse mountinfo text (see proc(5)); malformed lines are skipped."""
    entries = []
    for line in text.splitlines():
        parts = line.split(" ")
        try:
            sep = parts.index("-", 6)
            entries.append(MountInfoEntry(
                mount_id=int(parts[0]), parent_id=int(parts[1]), mountpoint=_unescape(parts[4]),
                fstype=parts[sep + 1], source=_unescape(parts[sep + 2]),
                options=tuple(parts[5].split(",")),
                super_options=tuple(parts[sep + 3].split(",")) if len(parts) > sep + 3 else (),
            ))
        except (ValueError, IndexError):
            continue
    return entries


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list[MountInfoEntry]:
    """The mount table of this process's mount namespace."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return parse_mountinfo(fh.read())
    except OSError as exc:
        raise MountError(f"cannot read the mount table: {exc.strerror}", path) from exc


def mounted_points(entries: Iterable[MountInfoEntry] | None = None) -> dict[str, MountInfoEntry]:
    """Mount point -> its topmost entry (the last one listed)."""
    table: dict[str, MountInfoEntry] = {}
    for e in read_mountinfo() if entries is None else entries:
        table[e.mountpoint] = e
    return table


# --- records on disk ---------------------------------------------------------------------------


def _record_path(mounts_dir: Path, mount_id: str) -> Path:
    if not _ID_RE.fullmatch(mount_id):
        raise MountError(f"invalid mount id {mount_id!r}")
    return mounts_dir / f"{mount_id}.json"


def write_record(mounts_dir: Path, rec: MountRecord) -> None:
    """Write ``rec`` atomically (temp file, fsync, rename) as ``<mounts_dir>/<id>.json``."""
    target = _record_path(mounts_dir, rec.id)
    try:
        mounts_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(target, json.dumps(rec.to_dict(), indent=2).encode(), mode=0o600)
    except OSError as exc:
        raise MountError(f"cannot write mount record: {exc.strerror}", str(target)) from exc


def read_record(mounts_dir: Path, mount_id: str) -> MountRecord:
    """The record of ``mount_id``; MountError if it is missing or unreadable."""
    path = _record_path(mounts_dir, mount_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MountError("no such mount", mount_id) from exc
    except (OSError, ValueError) as exc:
        raise MountError(f"unreadable mount record: {exc}", str(path)) from exc
    if not isinstance(data, dict):
        raise MountError("unreadable mount record: not an object", str(path))
    return MountRecord.from_dict(data)


def load_records(mounts_dir: Path) -> tuple[list[MountRecord], list[Path]]:
    """Every readable record (sorted by creation time) and the paths of unreadable ones."""
    good: list[MountRecord] = []
    bad: list[Path] = []
    if not mounts_dir.is_dir():
        return good, bad
    for path in sorted(mounts_dir.glob("*.json")):
        try:
            good.append(read_record(mounts_dir, path.stem))
        except MountError:
            bad.append(path)
    good.sort(key=lambda r: (r.created, r.id))
    return good, bad


def remove_record(mounts_dir: Path, mount_id: str) -> None:
    """Delete the record of ``mount_id`` if present."""
    try:
        _record_path(mounts_dir, mount_id).unlink(missing_ok=True)
    except OSError as exc:
        raise MountError(f"cannot remove mount record: {exc.strerror}", mount_id) from exc


def staleness(rec: MountRecord, table: dict[str, MountInfoEntry]) -> str | None:
    """Why ``rec`` is stale (a crashed mount, unmounted by hand, directory gone), or None if it is live."""
    if rec.state == "pending":
        return None if pid_alive(rec.pid) else f"creator (pid {rec.pid}) died while mounting"
    if not os.path.isdir(rec.path):
        return "mount point was removed"
    if rec.mechanism != "copy" and rec.path not in table:
        return "no longer mounted"
    return None
