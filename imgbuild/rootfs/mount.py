"""Mount an image's merged filesystem: an overlay of cached layers, or an extracted copy.

:func:`mount` resolves an image in a store and makes its merged tree
visible at ``<home>/mounts/<id>/merged`` (the :class:`~imgbuild.home.Home`
the store carries), by the first mechanism that works (or the one asked for):

- ``overlay``: a kernel overlayfs mount (root) of the layers unpacked once in
  the layer cache (:mod:`imgbuild.rootfs.unpack`). Read-only mounts have only
  lowerdirs (read-only by construction; a one-layer image gets an empty dir
  as a second lower, since overlayfs wants two). Writable mounts add
  ``upper/`` and ``work/`` with ``redirect_dir=off,metacopy=off`` so the upper
  dir always holds whole files and can be committed as a layer.
- ``fuse-overlayfs``: the same layout through fuse-overlayfs, where the kernel
  refuses overlayfs (nested overlays, old kernels, some containers).
- ``copy``: every layer applied in order into ``merged/`` (no root needed);
  read-only only by convention.

Untrusted layers lose their power: overlays are mounted ``nosuid,nodev``, the
layer cache and ``<home>/mounts`` are 0700 whatever the Home's mode, and device
nodes and setuid/setgid bits are unpacked only when the caller's
:class:`~imgbuild.rootfs.policy.UnpackPolicy` asks (then into a private copy).

The overlay ``lowerdir`` option is limited to one page (4 KiB), so a mount
never passes the long cache paths: it makes short symlinks ``l/0``, ``l/1``...
(base layer first) in its own directory and runs ``mount`` there with
relative lowerdirs ``2:1:0`` (the approach of containers/storage), which fits
hundreds of layers; overlayfs itself stops at 500.

Each mount is described by a record (:mod:`imgbuild.rootfs.records`) written before
mounting (``pending``) and after (``mounted``); :func:`cleanup_stale` removes
what a crash or a hand-made ``umount`` left behind, and runs before every
mount, umount and listing. Every ``mount``/``umount`` command runs through the
:class:`~imgbuild.engine.exec.Executor` the caller passes in.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from imgbuild import labels
from imgbuild.engine.exec import Executor, which
from imgbuild.errors import CommandFailed, ImgbuildError, InputError, MountError, ToolMissing
from imgbuild.fsutil import private_dir, remove_tree
from imgbuild.home import Home
from imgbuild.rootfs.records import (
    MountRecord, load_records, mounted_points, new_mount_id, read_record, remove_record, staleness, write_record,
)
from imgbuild.oci.model import Descriptor, ImageConfig
from imgbuild.rootfs.policy import DEFAULT_POLICY, UnpackPolicy

__all__ = [
    "MountedImage", "Unmounted", "mount", "umount", "list_mounts", "cleanup_stale", "find_mounts",
    "mounted_image", "mounts_dir", "overlay_available", "record_of",
]

_MAX_LAYERS = 500


def mounts_dir(home: Home) -> Path:
    """Where the mount records and mount directories of ``home`` live (``<home>/mounts``)."""
    return home.mounts


@dataclass(frozen=True)
class MountedImage:
    """A mounted image: its merged tree at ``path`` and what the run engine needs from its config."""

    path: Path
    config: ImageConfig
    labels: Mapping[str, str]
    env: Mapping[str, str]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...]
    type: str
    ref: str
    digest: str
    id: str
    mechanism: str
    rw: bool = False
    note: str = ""
    unpacked: tuple[str, ...] = field(default=())
    home: Home | None = field(default=None, repr=False, compare=False)
    executor: Executor | None = field(default=None, repr=False, compare=False)

    def umount(self) -> None:
        """Unmount this mount and remove its directory and record (with the Home and executor it was made with)."""
        if self.home is None or self.executor is None:
            raise InputError("this MountedImage does not know its home and executor; use rootfs.mount.umount()", self.id)
        umount(self.id, home=self.home, executor=self.executor)

    def __enter__(self) -> "MountedImage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.umount()


def mounted_image(rec: MountRecord, config: ImageConfig, home: Home | None = None,
                  executor: Executor | None = None) -> MountedImage:
    """The :class:`MountedImage` of a record, with the image's config (and what its ``umount`` needs)."""
    tags = config.labels
    return MountedImage(
        path=Path(rec.path), config=config, labels=tags, env=config.env_map, cmd=tuple(config.cmd),
        entrypoint=tuple(config.entrypoint), type=tags.get(labels.TYPE_LABEL, labels.TYPE_ROOTFS), ref=rec.ref,
        digest=rec.digest, id=rec.id, mechanism=rec.mechanism, rw=rec.rw, note=rec.note, unpacked=rec.unpacked,
        home=home, executor=executor,
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _ref_text(ref: str) -> str:
    from imgbuild.reference import parse_reference

    if ref.startswith("sha256:"):
        return ref
    try:
        return parse_reference(ref).normalized
    except ImgbuildError:
        return ref


# --- mounting ---------------------------------------------------------------------------------


def overlay_available() -> str | None:
    """Why overlay mounts cannot be used here (not root, no overlayfs), or None if they can be tried."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        with open("/proc/filesystems", encoding="utf-8") as fh:
            if "overlay" not in fh.read() and not which("fuse-overlayfs"):
                return "the kernel has no overlayfs and fuse-overlayfs is not installed"
    except OSError:
        pass
    return None


def _order(mechanism: str, policy: UnpackPolicy) -> list[str]:
    if policy.special_files:  # never in the shared layer cache: a private extracted copy
        if mechanism not in ("auto", "copy"):
            raise InputError(f"special files (devices, setuid) need the copy mechanism, not {mechanism}")
        return ["copy"]
    if mechanism == "auto":
        return ["copy"] if overlay_available() else ["overlay", "fuse-overlayfs", "copy"]
    if mechanism not in ("overlay", "fuse-overlayfs", "copy"):
        raise InputError(f"unknown mount mechanism {mechanism!r} (auto, overlay, fuse-overlayfs, copy)")
    return [mechanism]


def mount(image: str, *, store, executor: Executor, rw: bool = False, mechanism: str = "auto",
          reuse: bool = False, on_unpack: Callable[[Descriptor], None] | None = None,
          policy: UnpackPolicy = DEFAULT_POLICY) -> MountedImage:
    """Mount ``image`` (a reference, digest or id in ``store``) and return where and what it is.

    The mount lives under the Home ``store`` carries; ``executor`` runs ``mount``/``umount``.
    ``on_unpack`` is called with each layer that has to be unpacked first (none when all are cached).
    With ``reuse`` a live read-only mount of the same image is returned instead of a new one (the CLI
    does this, like ``buildah mount``); without it the caller owns a private mount it may unmount.
    ``policy`` says whether device nodes and setuid/setgid bits are kept (then in a private extracted
    copy, never the shared cache) and how far a layer may expand; overlays are mounted nosuid,nodev.
    """
    home = store.needs_home("mounting an image")
    img = store.image(image)
    cleanup_stale(home, executor)
    if not rw and reuse and not policy.special_files:
        for rec in find_mounts(home, str(img.digest)):
            if not rec.rw and rec.state == "mounted":
                return mounted_image(rec, img.config, home, executor)
    notes: list[str] = []
    order = _order(mechanism, policy)
    if mechanism == "auto" and order == ["copy"] and not policy.special_files:
        notes.append(f"overlay unavailable ({overlay_available()}); using an extracted copy")
    for i, mech in enumerate(order):
        try:
            rec = _mount_with(img, _Site(home, executor, policy), _ref_text(image), mech, rw, "; ".join(notes),
                              on_unpack)
            return mounted_image(rec, img.config, home, executor)
        except (MountError, CommandFailed, ToolMissing) as exc:
            if i == len(order) - 1:
                raise MountError(f"cannot mount with {mech}: {exc}", image) from exc
            notes.append(f"{mech} failed ({_first_line(exc)}); fell back")
    raise AssertionError("unreachable")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__


@dataclass(frozen=True)
class _Site:
    """Where mounts live and what runs their commands."""

    home: Home
    executor: Executor
    policy: UnpackPolicy = DEFAULT_POLICY

    @property
    def mounts(self) -> Path:
        return private_dir(mounts_dir(self.home))  # 0700 whatever the Home's mode


def _mount_with(img, site: _Site, ref: str, mech: str, rw: bool, note: str, on_unpack=None) -> MountRecord:
    mdir = site.mounts
    mid = new_mount_id()
    root = mdir / mid
    rec = MountRecord(id=mid, ref=ref, digest=str(img.digest), path=str(root / "merged"), mechanism=mech, rw=rw,
                      pid=os.getpid(), created=_now(), note=note)
    write_record(mdir, rec)
    try:
        (root / "merged").mkdir(parents=True)
        if mech == "copy":
            from imgbuild.rootfs.unpack import extract_image

            extract_image(img, root / "merged", on_unpack, site.policy)
        else:
            rec = _overlay(img, site, rec, root, mech, on_unpack)
        rec = rec.with_(state="mounted")
        write_record(mdir, rec)
        return rec
    except BaseException:
        _teardown(site, rec, quiet=True)
        raise


def _overlay(img, site: _Site, rec: MountRecord, root: Path, mech: str, on_unpack=None) -> MountRecord:
    """Unpack the layers, link them as ``l/<n>`` and mount the overlay; the record gains lowers/upper/work."""
    from imgbuild.rootfs.unpack import unpack_image

    if len(img.layers) > _MAX_LAYERS:
        raise MountError(f"{len(img.layers)} layers: overlayfs stacks at most {_MAX_LAYERS}", rec.ref)
    layers = unpack_image(img, site.home, on_unpack, site.policy)
    links = root / "l"
    links.mkdir()
    names = []
    for n, layer in enumerate(layers):
        os.symlink(layer.path, links / str(n))
        names.append(str(n))
    while len(names) < (1 if rec.rw else 2):  # overlayfs wants two lowers without an upper dir
        empty = root / f"empty{len(names)}"
        empty.mkdir()
        os.symlink(empty, links / f"e{len(names)}")
        names.insert(0, f"e{len(names)}")
    opts = ["nosuid", "nodev", "lowerdir=" + ":".join(reversed(names))]
    if rec.rw:
        (root / "upper").mkdir()
        (root / "work").mkdir()
        opts += [f"upperdir={root / 'upper'}", f"workdir={root / 'work'}"]
        rec = rec.with_(upper=str(root / "upper"), work=str(root / "work"))
    else:
        opts.insert(0, "ro")
    rec = rec.with_(lowers=tuple(str(u.path) for u in reversed(layers)),
                    unpacked=tuple(str(u.diff_id) for u in layers if u.unpacked))
    if mech == "overlay":
        if rec.rw:
            opts += ["redirect_dir=off", "metacopy=off"]
        argv = ["mount", "-t", "overlay", "overlay", "-o", ",".join(opts), rec.path]
    else:
        argv = [_require("fuse-overlayfs"), "-o", ",".join(opts), rec.path]
    write_record(site.mounts, rec)
    site.executor.run(argv, cwd=str(links))
    return rec


def _require(tool: str) -> str:
    path = which(tool)
    if not path:
        raise ToolMissing(tool)
    return path


# --- finding, unmounting, cleaning ----------------------------------------------------------


def _matches(rec: MountRecord, target: str) -> bool:
    """True if ``target`` (mount id, path, image reference or digest) names ``rec``."""
    if target in (rec.id, rec.digest, rec.ref):
        return True
    if "/" in target or target.startswith("."):
        path = os.path.abspath(target)
        if path in (rec.path, str(rec.root)):
            return True
    return _ref_text(target) == rec.ref


def find_mounts(home: Home, target: str | None = None) -> list[MountRecord]:
    """Records of ``home`` matching ``target`` (mount id, path, image reference or digest); all if None."""
    records, _ = load_records(mounts_dir(home))
    return [r for r in records if target is None or _matches(r, target)]


@dataclass(frozen=True)
class Unmounted:
    """What :func:`umount` did for one mount: its record and a note (e.g. 'was already unmounted')."""

    record: MountRecord
    note: str = ""


def umount(target: str | None = None, *, home: Home, executor: Executor, all: bool = False) -> list[Unmounted]:
    """Unmount the mounts of ``home`` that ``target`` names (or all with ``all``); remove their dirs and records.

    A mount that was already unmounted or removed by hand is cleaned up and reported with a note.
    """
    if target is None and not all:
        raise InputError("name a mount (image, path or id) or use --all")
    site = _Site(home, executor)
    done = [Unmounted(r, f"already gone ({why}); cleaned up")
            for r, why in cleanup_stale(home, executor) if all or _matches(r, target or "")]
    for rec in find_mounts(home, None if all else target):
        if rec.state == "pending" and rec.pid != os.getpid():
            continue  # another live process is mounting it right now
        _teardown(site, rec)
        done.append(Unmounted(rec))
    if not done and not all:
        raise InputError("no mount matches", target)
    return done


def list_mounts(home: Home, executor: Executor) -> list[MountRecord]:
    """Every live mount of ``home``, after cleaning stale ones."""
    cleanup_stale(home, executor)
    return find_mounts(home)


def _is_mounted(path: str) -> bool:
    return path in mounted_points()


def _unmount_path(executor: Executor, path: str) -> None:
    res = executor.run(["umount", path], check=False)
    if res.ok or not _is_mounted(path):
        return
    raise MountError(f"cannot unmount: {res.tail(2).strip() or 'exit ' + str(res.exit_code)}", path)


def _teardown(site: _Site, rec: MountRecord, quiet: bool = False) -> None:
    """Unmount (if mounted), remove the mount directory, then the record."""
    root = rec.root
    try:
        for point in sorted((p for p in mounted_points() if p == rec.path or p.startswith(str(root) + "/")),
                            key=len, reverse=True):
            _unmount_path(site.executor, point)
        _remove_dir(root)
        remove_record(site.mounts, rec.id)
    except (MountError, OSError):
        if not quiet:
            raise


def _remove_dir(root: Path) -> None:
    """Remove a mount directory, refusing if anything below it is still mounted."""
    if not root.exists():
        return
    prefix = str(root) + "/"
    busy = [p for p in mounted_points() if p == str(root) or p.startswith(prefix)]
    if busy:
        raise MountError("still mounted; not removing", busy[0])
    try:
        remove_tree(root)
    except OSError as exc:
        raise MountError(f"cannot remove mount directory: {exc.strerror}", str(root)) from exc


def cleanup_stale(home: Home, executor: Executor) -> list[tuple[MountRecord, str]]:
    """Remove the records of ``home`` (and their dirs and leftover mounts) that a crash or a manual umount made stale."""
    site = _Site(home, executor)
    mdir = site.mounts
    records, bad = load_records(mdir)
    table = mounted_points()
    cleaned = []
    for rec in records:
        why = staleness(rec, table)
        if why:
            _teardown(site, rec, quiet=True)
            cleaned.append((rec, why))
    for path in bad:
        _remove_orphan(executor, mdir / path.stem)
        path.unlink(missing_ok=True)
    known = {r.id for r in records}
    if mdir.is_dir():
        for d in mdir.iterdir():
            if d.is_dir() and len(d.name) == 12 and d.name not in known and not (mdir / f"{d.name}.json").exists():
                _remove_orphan(executor, d)
    return cleaned


def _remove_orphan(executor: Executor, root: Path) -> None:
    """Unmount whatever is mounted under a directory no record describes, then remove it."""
    prefix = str(root) + "/"
    for point in sorted((p for p in mounted_points() if p.startswith(prefix)), key=len, reverse=True):
        executor.run(["umount", point], check=False)
    try:
        _remove_dir(root)
    except MountError:
        pass


def record_of(target: str, home: Home, executor: Executor) -> MountRecord:
    """The single live mount of ``home`` that ``target`` names; InputError if none or several."""
    cleanup_stale(home, executor)
    recs = find_mounts(home, target)
    if not recs:
        raise InputError("no mount matches", target)
    if len(recs) > 1:
        raise InputError(f"{len(recs)} mounts match; name one by path or id", target)
    return read_record(mounts_dir(home), recs[0].id)
