"""Save the container images a cluster image needs into its registry/ directory.

:func:`save_images` takes what discovery found (an :class:`~imgbuild.builder.images.ImageSet`)
or plain references and writes each image into a :class:`~imgbuild.oci.regdir.RegistryDir`,
named without its registry host (``docker.io/library/nginx`` -> ``library/nginx``). It runs
in three steps so that nothing heavy happens before every image is known to be reachable:

1. **resolve**: for each image, in parallel, find its manifests. Sources in order: the
   archive named in ``images/skopeo/tar.txt`` (opened once, read in place), the local
   store (if it holds the reference completely), the image's registry; a
   ``docker-daemon:REF`` reference is exported from the Docker daemon instead
   (:mod:`imgbuild.oci.daemon`, into the directory's scratch space) and saved as ``REF``. An index
   becomes the child for ``platform`` (default this machine) — tagged as such, as
   ``skopeo copy`` does without ``--all`` — or, with ``all_platforms``, the index and all
   its children. A reference pinned by digest to an index keeps the index (its digest is
   what clients ask for) with the chosen child only. Images already complete in the
   directory are skipped without asking any registry, so a re-run copies nothing.
2. **copy**: one :func:`~imgbuild.oci.transfer.copy_each` of every image into the directory
   (:class:`RegistryDirSink`): every blob the directory lacks, each once, on one pool of
   ``jobs`` threads, streamed and digest-checked; then per image its child manifests, the
   manifest or index, and the tag link last. An image whose blob failed is reported, the
   others complete.

A missing or unreachable image is one error naming every such image with where it was
found (file:line) and the registry's answer; ``skip_missing`` reports them instead.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from imgbuild.errors import ImageNotFound, ImgbuildError, InputError, RegistryError, StoreError
from imgbuild.oci.archive import ArchiveEntry, open_archive
from imgbuild.oci.daemon import TRANSPORT, Daemon, connect, daemon_ref, open_image
from imgbuild.oci.image import BlobSource, Image, ImageIndex, Source, child_images, is_index, open_layout
from imgbuild.oci.model import Descriptor, Digest, Platform
from imgbuild.oci.regdir import RegistryDir, repository_name
from imgbuild.oci.transfer import Failed, copy_each, stream_blob
from imgbuild.progress import Progress
from imgbuild.reference import Reference, parse_reference

__all__ = ["Wanted", "Missing", "Saved", "SaveReport", "RegistryDirSink", "wanted_images", "save_images"]


@dataclass(frozen=True)
class Wanted:
    """One image to save: its reference, where it was asked for, and the archive it comes from, if any."""

    ref: Reference
    where: str
    archive: Path | None = None
    daemon: bool = False  # exported from the Docker daemon (asked for as docker-daemon:REF)


@dataclass(frozen=True)
class Missing:
    """An image that could not be saved: its reference, where it was found, and why."""

    ref: str
    where: str
    reason: str
    not_found: bool = False

    def __str__(self) -> str:
        return f"{self.ref} ({self.where}): {self.reason}"


@dataclass(frozen=True)
class Saved:
    """An image written into the directory: what the tag points at, and where it came from."""

    ref: str
    repository: str
    tag: str | None
    digest: Digest
    source: str


@dataclass(frozen=True)
class SaveReport:
    """The outcome of :func:`save_images`."""

    saved: tuple[Saved, ...] = ()
    skipped_existing: tuple[str, ...] = ()
    missing: tuple[Missing, ...] = ()
    blobs_copied: int = 0
    bytes_copied: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "saved": [{"ref": s.ref, "repository": s.repository, "tag": s.tag, "digest": str(s.digest),
                       "source": s.source} for s in self.saved],
            "skippedExisting": list(self.skipped_existing),
            "missing": [{"ref": m.ref, "where": m.where, "reason": m.reason} for m in self.missing],
            "blobsCopied": self.blobs_copied, "bytesCopied": self.bytes_copied,
        }


@dataclass(frozen=True)
class _Plan:
    """What resolve found for one image: where it comes from and what to copy (an image, or an index)."""

    wanted: Wanted
    source: str
    image: Source
    partial: bool = False


class _FixedIndex:
    """An index with the children chosen (and fetched) at resolve time: all of them, or one platform's."""

    def __init__(self, top: ImageIndex, children: list[Image]) -> None:
        self.descriptor, self.index, self._children = top.descriptor, top.index, children

    def image(self, desc: Descriptor) -> Image:
        """The chosen child ``desc``."""
        for child in self._children:
            if child.descriptor.digest == desc.digest:
                return child
        raise ImageNotFound("not one of the chosen children", str(desc.digest))

    def images(self) -> list[Image]:
        """The chosen children."""
        return list(self._children)


class RegistryDirSink:
    """The registry/ directory as a copy's sink: each blob once, manifests linked into the image's repository."""

    def __init__(self, regdir: RegistryDir, partial: set[str] | None = None) -> None:
        self.regdir, self.partial = regdir, partial or set()

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the directory holds the blob."""
        return self.regdir.has_blob(desc.digest)

    def put_blob(self, desc: Descriptor, open_blob: Callable[[], BinaryIO], on_bytes: Callable[[int], None]) -> str:
        """Stream the blob in (verified, fsynced, renamed into place)."""
        stream_blob(self.regdir.blob_writer, desc, open_blob, on_bytes)
        return "copied"

    def put_manifest(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Store a child manifest in ``name``'s repository."""
        self.regdir.put_manifest(repository_name(_named(name)), None, raw, desc.media_type)

    def tag(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Store the top manifest or index in ``name``'s repository and tag it (tag link last)."""
        ref = _named(name)
        self.regdir.put_manifest(repository_name(ref), ref.tag, raw, desc.media_type,
                                 partial=str(desc.digest) in self.partial)


def _named(name: Reference | None) -> Reference:
    if name is None:
        raise InputError("an image in a registry directory needs a repository name")
    return name


def wanted_images(images, context_dir: Path | str | None = None) -> list[Wanted]:
    """The images to save from an ImageSet (archives resolved under ``context_dir``) or references."""
    out: dict[str, Wanted] = {}
    archives = getattr(images, "archives", ())
    if archives and context_dir is None:
        raise InputError("images/skopeo/tar.txt archives need the build context directory")
    for a in archives:
        ref = parse_reference(a.ref)
        out[ref.normalized] = Wanted(ref, str(a.source), Path(context_dir) / a.path)
    found = getattr(images, "found", None)
    items = ([(TRANSPORT + f.ref if getattr(f, "daemon", False) else f.ref, f.where) for f in found]
             if found is not None else [(r, "--images") for r in images])
    for text, where in items:
        from_daemon = daemon_ref(str(text)) if not isinstance(text, Wanted) else None
        w = text if isinstance(text, Wanted) else (Wanted(parse_reference(from_daemon), where, daemon=True)
                                                   if from_daemon else Wanted(parse_reference(str(text)), where))
        out.setdefault(w.ref.normalized, w)
    return list(out.values())


def save_images(images, regdir: RegistryDir | Path | str, *, platform: Platform | str | None = None,
                all_platforms: bool = False, store=None, jobs: int = 4, skip_missing: bool = False,
                progress: Progress | None = None,
                context_dir: Path | str | None = None, notify: Callable[[str], None] | None = None,
                executor=None, daemon: Callable[[], Daemon] | None = None, **client_kw) -> SaveReport:
    """Save ``images`` (an ImageSet, references or :class:`Wanted`) into ``regdir`` (a RegistryDir or its path).

    Pass the ImageSet itself (with ``context_dir``) rather than its ``refs``: then errors name
    file:line and the ``tar.txt`` archives are saved too.

    ``store``: a local Store to take images from when it holds them; ``progress``: hears of the
    copy (task ``save``, one item per blob); ``notify``: called with one line per saved/skipped image;
    ``client_kw``: RegistryClient options (``tls_verify``, ``ca_file``, ``auth``); without ``auth``,
    the credentials of the store's Home and docker/podman files (helpers run through ``executor``);
    ``daemon``: gives the Docker daemon ``docker-daemon:`` images come from (default: the one
    ``$DOCKER_HOST`` names), called only if one is wanted.
    """
    if client_kw.get("auth") is None:
        from imgbuild.oci.auth import ConfigAuth

        client_kw["auth"] = ConfigAuth.for_home(store.home if store is not None else None, executor)
    plat = Platform.parse(platform) if isinstance(platform, str) else (platform or Platform.current())
    regdir = regdir if isinstance(regdir, RegistryDir) else RegistryDir(regdir)
    say = notify or (lambda _: None)
    wanted = wanted_images(images, context_dir)
    todo, skipped = [], []
    for w in wanted:
        if regdir.lookup(w.ref) is not None:
            skipped.append(w.ref.normalized)
            say(f"present {w.ref.normalized}")
        else:
            todo.append(w)
    with _Sources(regdir, store, jobs, client_kw, daemon) as sources:
        plans, missing = sources.resolve(todo, plat, all_platforms)
        _fail_or_warn(missing, skip_missing)
        sink = RegistryDirSink(regdir, {str(p.image.descriptor.digest) for p in plans if p.partial})
        copied = copy_each([(p.image, p.wanted.ref) for p in plans], sink, jobs=jobs, progress=progress,
                           verb="save", keep_going=True)
    done, more_missing = _outcome(plans, copied.results, say)
    missing += more_missing
    _fail_or_warn(more_missing, skip_missing)
    moved = copied.moved()
    return SaveReport(tuple(done), tuple(skipped), tuple(missing), len(moved), sum(d.size for d in moved))


def _outcome(plans: list[_Plan], results, say: Callable[[str], None]) -> tuple[list[Saved], list[Missing]]:
    """Saved for each image copied, Missing (naming the blob and why) for each whose blob failed."""
    saved, missing = [], []
    for plan, result in zip(plans, results):
        w = plan.wanted
        if isinstance(result, Failed):
            missing.append(Missing(w.ref.normalized, w.where, str(result)))
            continue
        saved.append(Saved(w.ref.normalized, repository_name(w.ref), w.ref.tag, result.digest, plan.source))
        say(f"saved {w.ref.normalized} ({plan.source}) {result.digest}")
    return saved, missing


def _fail_or_warn(missing: list[Missing], skip_missing: bool) -> None:
    if not missing or skip_missing:
        return
    lines = "\n".join(f"  {m}" for m in missing)
    n = len(missing)
    message = f"{n} image{'s' if n > 1 else ''} could not be saved (--skip-missing-images to go on without):\n{lines}"
    kind = ImageNotFound if all(m.not_found for m in missing) else RegistryError
    err = kind(message)
    err.missing = tuple(missing)  # type: ignore[attr-defined]
    raise err


class _Sources:
    """The places images come from: archives (opened once), the local store, registries (one client each)."""

    def __init__(self, regdir: RegistryDir, store, jobs: int, client_kw: dict,
                 daemon: Callable[[], Daemon] | None = None) -> None:
        self.regdir, self.store, self.jobs, self.client_kw = regdir, store, max(1, jobs), client_kw
        self.daemon: Daemon | Callable[[], Daemon] = daemon or (lambda: connect(os.environ))
        self.clients: dict[str, object] = {}
        self.archives: dict[Path, list[ArchiveEntry] | ImgbuildError] = {}
        self._open = contextlib.ExitStack()

    def __enter__(self) -> "_Sources":
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.clients.values():
            c.close()
        self._open.close()

    def client(self, registry: str):
        """The shared client of ``registry``."""
        if registry not in self.clients:
            from imgbuild.oci.registry import RegistryClient

            self.clients[registry] = RegistryClient(registry, jobs=self.jobs, **self.client_kw)
        return self.clients[registry]

    def resolve(self, wanted: list[Wanted], plat: Platform, all_platforms: bool) -> tuple[list[_Plan], list[Missing]]:
        """Plans for every image that can be found, Missing for the others (archives first, then in parallel)."""
        for w in wanted:
            if w.archive is not None:
                self._open_archive(w)
        daemon_plans = [self._from_daemon(w) for w in wanted if w.daemon]
        wanted = [w for w in wanted if not w.daemon]
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="imgbuild-resolve") as pool:
            results = list(pool.map(lambda w: self._resolve_one(w, plat, all_platforms), wanted))
        results += daemon_plans
        plans = [r for r in results if isinstance(r, _Plan)]
        return plans, [r for r in results if isinstance(r, Missing)]

    def _from_daemon(self, w: Wanted) -> _Plan | Missing:
        """The image exported from the Docker daemon into scratch space (kept until the copy is done)."""
        try:
            if not isinstance(self.daemon, Daemon):
                self.daemon = self.daemon()
            image = self._open.enter_context(open_image(self.daemon, w.ref.familiar, self.regdir.scratch_dir()))
        except ImgbuildError as exc:
            return Missing(w.ref.normalized, w.where, str(exc), isinstance(exc, ImageNotFound))
        return _Plan(w, "daemon", image)

    def _resolve_one(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan | Missing:
        try:
            if w.archive is not None:
                return self._from_archive(w, plat, all_platforms)
            if self.store is not None:
                plan = self._from_store(w, plat, all_platforms)
                if plan is not None:
                    return plan
            return self._from_registry(w, plat, all_platforms)
        except ImgbuildError as exc:
            return Missing(w.ref.normalized, w.where, str(exc), isinstance(exc, ImageNotFound))

    def _open_archive(self, w: Wanted) -> None:
        path = Path(w.archive).resolve()
        if path not in self.archives:
            try:
                self.archives[path] = self._open.enter_context(open_archive(path, self.regdir.scratch_dir()))
            except ImgbuildError as exc:
                self.archives[path] = exc

    def _from_archive(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan:
        entries = self.archives[Path(w.archive).resolve()]
        if isinstance(entries, ImgbuildError):
            raise entries
        match = [e for e in entries if (e.name is not None and e.name.normalized == w.ref.normalized)
                 or (w.ref.digest and e.source.descriptor.digest == w.ref.digest)]
        distinct = {str(e.source.descriptor.digest) for e in entries}
        if not match and len(distinct) != 1:
            names = ", ".join(e.name.normalized for e in entries if e.name is not None) or "none named"
            raise ImageNotFound(f"the archive holds {len(distinct)} images ({names}), none named {w.ref.normalized}",
                                str(w.archive))
        top = (match or entries)[0].source
        plan = _from_layout(top.blobs, top, w, plat, all_platforms, "archive")  # type: ignore[union-attr]
        if plan is None:
            raise ImageNotFound(f"the archive's image is incomplete or has no {plat} image", str(w.archive))
        return plan

    def _from_store(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan | None:
        """A plan copying from the local store, or None when it lacks the image or part of it."""
        try:
            desc = self.store.resolve(w.ref)
            if w.ref.digest and desc.digest != w.ref.digest:
                return None
            top = open_layout(self.store, desc)
        except (ImageNotFound, StoreError):
            return None
        return _from_layout(self.store, top, w, plat, all_platforms, "store")

    def _from_registry(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan:
        from imgbuild.oci.remote import open_remote

        source, partial = _choose(open_remote(self.client(w.ref.registry), w.ref), w, plat, all_platforms)
        return _Plan(w, "registry", source, partial)


def _choose(top: Source, w: Wanted, plat: Platform, all_platforms: bool) -> tuple[Source, bool]:
    """What to store of a manifest or index (see the module doc) and whether it is a partial index."""
    if w.ref.digest and top.descriptor.digest != w.ref.digest:
        raise RegistryError(f"got {top.descriptor.digest}, not the pinned digest", w.ref.normalized)
    if not is_index(top):
        return top, False
    index: ImageIndex = top  # type: ignore[assignment]
    if all_platforms:
        return _FixedIndex(index, [index.image(c) for c in index.index.manifests]), False
    child = index.index.select(plat)
    if child is None:
        have = ", ".join(str(p) for p in index.index.platforms()) or "none"
        raise ImageNotFound(f"no image for platform {plat} (the index has: {have})", w.ref.normalized)
    if w.ref.digest:
        return _FixedIndex(index, [index.image(child)]), True
    return index.image(child), False


def _from_layout(blobs: BlobSource, top: Source, w: Wanted, plat: Platform, all_platforms: bool,
                 source: str) -> _Plan | None:
    """A plan copying from the store or an archive, or None when ``blobs`` lacks part of the image."""
    try:
        image, partial = _choose(top, w, plat, all_platforms)
    except (ImageNotFound, StoreError, RegistryError):
        return None
    if not all(blobs.has_blob(b.digest) for img in child_images(image) for b in img.manifest.blobs()):
        return None
    return _Plan(w, source, image, partial)
