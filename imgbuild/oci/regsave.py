"""Save the container images a cluster image needs into its registry/ directory.

:func:`save_images` takes what discovery found (an :class:`~imgbuild.builder.images.ImageSet`)
or plain references and writes each image into a :class:`~imgbuild.oci.regdir.RegistryDir`,
named without its registry host (``docker.io/library/nginx`` -> ``library/nginx``). It runs
in three steps so that nothing heavy happens before every image is known to be reachable:

1. **resolve**: for each image, in parallel, find its manifests. Sources in order: the
   archive named in ``images/skopeo/tar.txt`` (loaded once into a temporary store), the
   local store (if it holds the reference completely), the image's registry. An index
   becomes the child for ``platform`` (default this machine) — tagged as such, as
   ``skopeo copy`` does without ``--all`` — or, with ``all_platforms``, the index and all
   its children. A reference pinned by digest to an index keeps the index (its digest is
   what clients ask for) with the chosen child only. Images already complete in the
   directory are skipped without asking any registry, so a re-run copies nothing.
2. **copy blobs**: every blob any image needs that the directory lacks, each once, on one
   pool of ``jobs`` threads, streamed and digest-checked into the directory.
3. **write manifests**: children, then the manifest or index, then the tag link.

A missing or unreachable image is one error naming every such image with where it was
found (file:line) and the registry's answer; ``skip_missing`` reports them instead.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from imgbuild.errors import ImageNotFound, ImgbuildError, InputError, RegistryError, StoreError
from imgbuild.oci.model import Descriptor, Digest, Index, Manifest, Platform, parse_document
from imgbuild.oci.regdir import RegistryDir, repository_name
from imgbuild.reference import Reference, parse_reference

__all__ = ["Wanted", "Missing", "Saved", "SaveReport", "wanted_images", "save_images"]

_CHUNK = 1 << 20
Getter = Callable[[Digest], tuple[bytes, str]]


@dataclass(frozen=True)
class Wanted:
    """One image to save: its reference, where it was asked for, and the archive it comes from, if any."""

    ref: Reference
    where: str
    archive: Path | None = None


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


@dataclass
class _Plan:
    """What resolve found for one image: documents to write (children first), blobs, how to copy them."""

    wanted: Wanted
    source: str
    docs: list[tuple[Descriptor, bytes]]
    target: Descriptor
    partial: bool
    copy: Callable[[Descriptor, Callable[[int], None]], None]
    blobs: list[Descriptor] = field(default_factory=list)


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
    items = [(f.ref, f.where) for f in found] if found is not None else [(r, "--images") for r in images]
    for text, where in items:
        w = text if isinstance(text, Wanted) else Wanted(parse_reference(str(text)), where)
        out.setdefault(w.ref.normalized, w)
    return list(out.values())


def save_images(images, regdir: RegistryDir | Path | str, *, platform: Platform | str | None = None,
                all_platforms: bool = False, store=None, jobs: int = 4, skip_missing: bool = False, progress: object = False,
                context_dir: Path | str | None = None, notify: Callable[[str], None] | None = None,
                executor=None, **client_kw) -> SaveReport:
    """Save ``images`` (an ImageSet, references or :class:`Wanted`) into ``regdir`` (a RegistryDir or its path).

    Pass the ImageSet itself (with ``context_dir``) rather than its ``refs``: then errors name
    file:line and the ``tar.txt`` archives are saved too.

    ``store``: a local Store to take images from when it holds them; ``progress``: as for pull
    (True: bars on a TTY, else lines); ``notify``: called with one line per saved/skipped image;
    ``client_kw``: RegistryClient options (``tls_verify``, ``ca_file``, ``auth``); without ``auth``,
    the credentials of the store's Home and docker/podman files (helpers run through ``executor``).
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
    with _Sources(regdir, store, jobs, client_kw) as sources:
        plans, missing = sources.resolve(todo, plat, all_platforms)
        _fail_or_warn(missing, skip_missing)
        copied, nbytes, failed = _copy_blobs(plans, regdir, jobs, progress)
        done, more_missing = _write_manifests(plans, regdir, failed, say)
    missing += more_missing
    _fail_or_warn(more_missing, skip_missing)
    return SaveReport(tuple(done), tuple(skipped), tuple(missing), copied, nbytes)


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
    """The places images come from: archives (temp stores), the local store, registries (one client each)."""

    def __init__(self, regdir: RegistryDir, store, jobs: int, client_kw: dict) -> None:
        self.regdir, self.store, self.jobs, self.client_kw = regdir, store, max(1, jobs), client_kw
        self.clients: dict[str, object] = {}
        self.archives: dict[Path, tuple[object, list]] = {}
        self._tmp: Path | None = None

    def __enter__(self) -> "_Sources":
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.clients.values():
            c.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def client(self, registry: str):
        """The shared client of ``registry``."""
        if registry not in self.clients:
            from imgbuild.oci.registry import RegistryClient

            self.clients[registry] = RegistryClient(registry, jobs=self.jobs, progress=False, **self.client_kw)
        return self.clients[registry]

    def resolve(self, wanted: list[Wanted], plat: Platform, all_platforms: bool) -> tuple[list[_Plan], list[Missing]]:
        """Plans for every image that can be found, Missing for the others (archives first, then in parallel)."""
        for w in wanted:
            if w.archive is not None:
                self._load_archive(w)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="imgbuild-resolve") as pool:
            results = list(pool.map(lambda w: self._resolve_one(w, plat, all_platforms), wanted))
        plans = [r for r in results if isinstance(r, _Plan)]
        return plans, [r for r in results if isinstance(r, Missing)]

    def _resolve_one(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan | Missing:
        try:
            if w.archive is not None:
                return self._from_archive(w, plat, all_platforms)
            if self.store is not None:
                plan = self._from_store(self.store, w, plat, all_platforms, "store")
                if plan is not None:
                    return plan
            return self._from_registry(w, plat, all_platforms)
        except ImgbuildError as exc:
            return Missing(w.ref.normalized, w.where, str(exc), isinstance(exc, ImageNotFound))

    # -- archives ---------------------------------------------------------------------------------
    def _load_archive(self, w: Wanted) -> None:
        path = Path(w.archive).resolve()
        if path in self.archives:
            return
        from imgbuild.oci import archive
        from imgbuild.oci.store import Store

        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="archives-", dir=self.regdir.scratch_dir()))
        tmp_store = Store(self._tmp / f"a{len(self.archives)}")
        try:
            loaded = archive.load(tmp_store, path)
        except ImgbuildError as exc:
            loaded = exc
        self.archives[path] = (tmp_store, loaded)

    def _from_archive(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan:
        tmp_store, loaded = self.archives[Path(w.archive).resolve()]
        if isinstance(loaded, ImgbuildError):
            raise loaded
        try:
            desc = tmp_store.resolve(w.ref)
        except ImageNotFound:
            if len(loaded) != 1:
                names = ", ".join(n for item in loaded for n in item.names) or "none named"
                raise ImageNotFound(f"the archive holds {len(loaded)} images ({names}), none named {w.ref.normalized}",
                                    str(w.archive)) from None
            desc = loaded[0].descriptor
        plan = self._from_store(tmp_store, w, plat, all_platforms, "archive", desc)
        if plan is None:
            raise ImageNotFound(f"the archive's image is incomplete or has no {plat} image", str(w.archive))
        return plan

    # -- the local store --------------------------------------------------------------------------
    def _from_store(self, store, w: Wanted, plat: Platform, all_platforms: bool, source: str,
                    desc: Descriptor | None = None) -> _Plan | None:
        """A plan copying from ``store``, or None when it lacks the image or part of it."""
        try:
            desc = desc or store.resolve(w.ref)
            if w.ref.digest and desc.digest != w.ref.digest:
                return None
            raw = store.read_blob(desc.digest)

            def get(d: Digest) -> tuple[bytes, str]:
                data = store.read_blob(d)
                return data, parse_document(data).media_type

            plan = _plan(w, raw, parse_document(raw, desc.media_type or None).media_type, get, plat,
                         all_platforms, source, _store_copier(store, self.regdir))
        except (ImageNotFound, StoreError):
            return None
        return plan if all(store.has_blob(b.digest) for b in plan.blobs) else None

    # -- registries -------------------------------------------------------------------------------
    def _from_registry(self, w: Wanted, plat: Platform, all_platforms: bool) -> _Plan:
        client = self.client(w.ref.registry)
        raw, media_type = client.get_manifest(w.ref)

        def get(d: Digest) -> tuple[bytes, str]:
            return client.get_manifest(w.ref.with_digest(str(d)))

        def copy(desc: Descriptor, on_bytes: Callable[[int], None]) -> None:
            client.fetch_blob(w.ref.repository, desc, self.regdir, on_bytes)

        return _plan(w, raw, media_type, get, plat, all_platforms, "registry", copy)


def _store_copier(store, regdir: RegistryDir):
    """A blob copier streaming from a Store into ``regdir``."""
    def copy(desc: Descriptor, on_bytes: Callable[[int], None]) -> None:
        with store.open_blob(desc.digest) as src, regdir.blob_writer(str(desc.digest), desc.size) as w:
            while chunk := src.read(_CHUNK):
                w.write(chunk)
                on_bytes(len(chunk))
    return copy


def _plan(w: Wanted, raw: bytes, media_type: str, get: Getter, plat: Platform, all_platforms: bool, source: str,
          copy) -> _Plan:
    """Choose what to store of a manifest or index (see the module doc) and list its blobs."""
    top = Descriptor(media_type, Digest.of(raw), len(raw))
    if w.ref.digest and top.digest != w.ref.digest:
        raise RegistryError(f"got {top.digest}, not the pinned digest", w.ref.normalized)
    doc = parse_document(raw, media_type)
    if isinstance(doc, Manifest):
        return _with_blobs(_Plan(w, source, [(top, raw)], top, False, copy))
    if all_platforms:
        children = list(doc.manifests)
    else:
        child = doc.select(plat)
        if child is None:
            have = ", ".join(str(p) for p in doc.platforms()) or "none"
            raise ImageNotFound(f"no image for platform {plat} (the index has: {have})", w.ref.normalized)
        children = [child]
    docs = []
    for c in children:
        data, mt = get(c.digest)
        Digest(c.digest).verify(data, w.ref.normalized)
        if isinstance(parse_document(data, mt), Index):
            raise RegistryError("nested image indexes are not supported", w.ref.normalized)
        docs.append((Descriptor(mt, c.digest, len(data), platform=c.platform), data))
    if all_platforms or w.ref.digest:
        return _with_blobs(_Plan(w, source, docs + [(top, raw)], top, not all_platforms, copy))
    return _with_blobs(_Plan(w, source, docs, docs[0][0], False, copy))


def _with_blobs(plan: _Plan) -> _Plan:
    seen: dict[str, Descriptor] = {}
    for desc, raw in plan.docs:
        doc = parse_document(raw, desc.media_type)
        if isinstance(doc, Manifest):
            for b in doc.blobs():
                seen.setdefault(str(b.digest), b)
    plan.blobs = list(seen.values())
    return plan


def _copy_blobs(plans: list[_Plan], regdir: RegistryDir, jobs: int, progress: object) -> tuple[int, int, dict[str, str]]:
    """Copy every needed blob the directory lacks, once each, on one pool; returns (count, bytes, failures)."""
    from imgbuild.oci.transfer import move_blobs

    owner: dict[str, tuple[Descriptor, _Plan]] = {}
    for plan in plans:
        for b in plan.blobs:
            if str(b.digest) not in owner and not regdir.has_blob(b.digest):
                owner[str(b.digest)] = (b, plan)
    failed: dict[str, str] = {}

    def action(desc: Descriptor, on_bytes: Callable[[int], None]) -> str:
        try:
            owner[str(desc.digest)][1].copy(desc, on_bytes)
            return "copied"
        except ImgbuildError as exc:
            failed[str(desc.digest)] = str(exc)
            return "failed"

    results = move_blobs([d for d, _ in owner.values()], action, jobs=jobs, progress=progress, verb="save")
    copied = [owner[d][0] for d, outcome in results.items() if outcome == "copied"]
    return len(copied), sum(d.size for d in copied), failed


def _write_manifests(plans: list[_Plan], regdir: RegistryDir, failed: dict[str, str],
                     say: Callable[[str], None]) -> tuple[list[Saved], list[Missing]]:
    """Write each complete image's manifests (children first, tag last); images with failed blobs are Missing."""
    saved, missing = [], []
    for plan in plans:
        w = plan.wanted
        bad = [b for b in plan.blobs if str(b.digest) in failed]
        if bad:
            missing.append(Missing(w.ref.normalized, w.where, f"blob {bad[0].digest}: {failed[str(bad[0].digest)]}"))
            continue
        repo = repository_name(w.ref)
        for desc, raw in plan.docs:
            is_target = desc.digest == plan.target.digest
            tag = w.ref.tag if is_target else None
            regdir.put_manifest(repo, tag, raw, desc.media_type, partial=plan.partial and is_target)
        saved.append(Saved(w.ref.normalized, repo, w.ref.tag, plan.target.digest, plan.source))
        say(f"saved {w.ref.normalized} ({plan.source}) {plan.target.digest}")
    return saved, missing
