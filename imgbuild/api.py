"""One-call verbs: what the CLI (and any Python caller) uses to act on images.

Each function does one user-level thing against the local store (by default
the store of ``$IMGBUILD_HOME``; pass ``store=`` to use another) and returns
plain values; printing and exit codes are the CLI's business. This is a flat
module of small functions: list (:func:`images`), look (:func:`inspect`),
name (:func:`tag`, :func:`rmi`), move (:func:`save`, :func:`load`, :func:`pull`,
:func:`push`), make (:func:`build`, :func:`commit`), look inside (:func:`mount`,
:func:`umount`, :func:`mounts`, :func:`diff`), credentials (:func:`login`,
:func:`logout`) and keep tidy (:func:`gc`, :func:`verify`). The run engine will
call :func:`mount` to get a ``MountedImage``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from imgbuild.errors import ImageNotFound, ImgbuildError, InputError, InvalidReference
from imgbuild.oci.model import Descriptor, Digest, Index
from imgbuild.oci.store import REF_NAME, Image, Store, open_store
from imgbuild.reference import Reference, parse_reference

__all__ = [
    "ImageSummary", "ImageDetails", "RmiResult", "GcResult", "TYPE_LABEL", "ROLE_ANNOTATION",
    "images", "inspect", "tag", "rmi", "save", "load", "gc", "verify", "image_id",
    "mount", "umount", "mounts", "commit", "diff", "build",
    "pull", "push", "login", "logout", "inspect_remote",
]

TYPE_LABEL = "sealos.io.type"
ROLE_ANNOTATION = "io.imgbuild.layer.role"


@dataclass(frozen=True)
class ImageSummary:
    """One row of ``imgbuild images``: a tag (or an untagged image) and what it points at."""

    repository: str
    tag: str
    reference: str | None
    image_id: str
    digest: str
    created: str | None
    size: int
    type: str | None
    platform: str

    def to_dict(self) -> dict:
        """As a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ImageDetails:
    """What ``imgbuild inspect`` shows: the summary fields plus the exact documents."""

    reference: str
    digest: str
    image_id: str
    created: str | None
    platform: str
    type: str | None
    labels: dict[str, str]
    env: list[str]
    cmd: list[str]
    entrypoint: list[str]
    layers: list[dict]
    size: int
    manifest: dict
    config: dict
    index: dict | None = None

    def to_dict(self) -> dict:
        """As a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class RmiResult:
    """What :func:`rmi` did: tags removed, images (manifest digests) dropped, and the gc that followed."""

    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    bytes_freed: int = 0


@dataclass(frozen=True)
class GcResult:
    """What :func:`gc` did: store blobs removed and bytes they freed, then each cache pruned (:class:`Pruned`)."""

    blobs_removed: int
    bytes_freed: int
    caches: tuple[Any, ...] = ()

    @property
    def cache_bytes_freed(self) -> int:
        """Bytes freed in the caches (on top of ``bytes_freed`` by blobs)."""
        return sum(p.bytes for p in self.caches)

    def to_dict(self) -> dict:
        """As plain data for ``--json``: the blob fields, plus ``caches`` when caches were pruned."""
        out: dict[str, Any] = {"blobs_removed": self.blobs_removed, "bytes_freed": self.bytes_freed}
        if self.caches:
            out["caches"] = {p.cache: p.to_dict() for p in self.caches}
            out["cache_bytes_freed"] = self.cache_bytes_freed
        return out


def _store(store: Store | None) -> Store:
    return store if store is not None else open_store()


def _listing_image(store: Store, desc: Descriptor) -> Image:
    """The image a listing shows for an entry: this platform's, else the first platform stored."""
    try:
        return store.image(desc)
    except ImageNotFound:
        doc = store.get_document(desc.digest)
        if isinstance(doc, Index):
            for child in doc.manifests:
                if store.has_blob(child.digest):
                    return store.image(child)
        raise


def _summary(store: Store, desc: Descriptor) -> ImageSummary:
    img = _listing_image(store, desc)
    name = desc.annotations.get(REF_NAME)
    try:
        ref = parse_reference(name) if name else None
    except InvalidReference:
        ref = None
    repo = Reference(ref.registry, ref.repository).familiar if ref else "<none>"
    return ImageSummary(
        repository=repo, tag=(ref.tag or "<none>") if ref else "<none>",
        reference=ref.normalized if ref else None, image_id=str(img.id), digest=str(desc.digest),
        created=img.config.created, size=img.size(), type=img.config.labels.get(TYPE_LABEL),
        platform=str(img.config.platform),
    )


def images(store: Store | None = None) -> list[ImageSummary]:
    """Every tag and untagged image in the store, newest first."""
    st = _store(store)
    rows = [_summary(st, e) for e in st.entries()]
    return sorted(rows, key=lambda r: (r.created or "", r.reference or ""), reverse=True)


def inspect(ref: str, store: Store | None = None) -> ImageDetails:
    """Everything about one image: summary fields, layers and the exact manifest/config documents."""
    st = _store(store)
    desc = st.resolve(ref)
    img = _listing_image(st, desc)
    cfg = img.config
    layers = [{"digest": str(d.digest), "size": d.size, "media_type": d.media_type,
               "role": d.annotations.get(ROLE_ANNOTATION)} for d in img.layers]
    return ImageDetails(
        reference=desc.annotations.get(REF_NAME) or str(desc.digest), digest=str(img.digest),
        image_id=str(img.id), created=cfg.created, platform=str(cfg.platform), type=cfg.labels.get(TYPE_LABEL),
        labels=cfg.labels, env=cfg.env, cmd=cfg.cmd, entrypoint=cfg.entrypoint, layers=layers, size=img.size(),
        manifest=json.loads(img.manifest.raw), config=json.loads(cfg.raw),
        index=json.loads(img.index.raw) if img.index is not None else None,
    )


def tag(src: str, dst: str, store: Store | None = None) -> Reference:
    """Give the image ``src`` the additional name ``dst``; returns the normalised new reference."""
    st = _store(store)
    desc = st.resolve(src)
    ref = parse_reference(dst)
    if ref.digest:
        raise InputError("a tag cannot contain a digest", dst)
    st.tag(ref, desc)
    return ref


def _by_tag(store: Store, ref: str) -> str | None:
    """The full tag ``ref`` names if it is an existing tag (not an ID or digest), else None."""
    try:
        parsed = parse_reference(ref)
    except InvalidReference:
        return None
    if parsed.digest:
        return None
    names = {e.annotations.get(REF_NAME) for e in store.entries()}
    return parsed.normalized if parsed.normalized in names else (ref if ref in names else None)


def _remove_by_id(store: Store, ref: str, force: bool, result: RmiResult) -> None:
    desc = store.resolve(ref)
    hits = [e for e in store.entries() if e.digest == desc.digest]
    if not hits:
        raise InputError("image is a platform of a multi-platform image; remove that image instead", ref)
    names = [e.annotations[REF_NAME] for e in hits if REF_NAME in e.annotations]
    if len(names) > 1 and not force:
        raise InputError(f"image is tagged {len(names)} times ({', '.join(names)}): remove the tags by name, "
                         "or use -f to remove them all", ref)
    store.remove_image(desc.digest)
    result.untagged.extend(names)
    result.deleted.append(str(desc.digest))


def rmi(refs: Sequence[str], force: bool = False, store: Store | None = None) -> RmiResult:
    """Remove images, then gc what no tag reaches.

    By tag: removes that tag only (the image stays while other tags point at it,
    like ``docker rmi``). By ID or digest: removes the image and its tag; when it
    has several tags that needs ``force``, which then removes them all.
    """
    st = _store(store)
    result = RmiResult()
    failure: ImgbuildError | None = None
    for ref in refs:
        try:
            name = _by_tag(st, ref)
            if name:
                desc = st.untag(name)
                result.untagged.append(name)
                if not any(e.digest == desc.digest for e in st.entries()):
                    result.deleted.append(str(desc.digest))
            else:
                _remove_by_id(st, ref, force, result)
        except ImgbuildError as exc:
            failure = failure or exc
    removed, freed = st.gc()
    final = RmiResult(result.untagged, result.deleted, removed, freed)
    if failure is not None:
        raise failure
    return final


def save(refs: Sequence[str], output: Path, format: str = "oci-archive", store: Store | None = None) -> Path:
    """Write images to an ``oci-archive`` or ``docker-archive`` file; returns its path."""
    from imgbuild.oci import archive

    archive.save(_store(store), refs, Path(output), format)
    return Path(output)


def load(path: Path, store: Store | None = None) -> list[Any]:
    """Load an oci-archive, docker-archive or OCI layout directory; returns the :class:`archive.Loaded` images."""
    from imgbuild.oci import archive

    return archive.load(_store(store), Path(path))


def gc(store: Store | None = None, *, caches: bool = True) -> GcResult:
    """Remove blobs no tag reaches, then (with ``caches``, home store only) cache entries nothing can use."""
    st = _store(store)
    removed, freed = st.gc()
    if not caches:
        return GcResult(removed, freed)
    from imgbuild.rootfs.prune import prune_caches

    return GcResult(removed, freed, prune_caches(st))


def verify(repair: bool = False, store: Store | None = None) -> list[str]:
    """Re-hash every blob and check every image is complete; returns the problems (corrupt blobs removed if ``repair``)."""
    return _store(store).verify(repair)


def image_id(digest: str | Digest) -> str:
    """The short IMAGE ID docker shows: the first 12 hex digits of the config digest."""
    return Digest(digest).hex[:12]


def mount(ref: str, *, rw: bool = False, mechanism: str = "auto", reuse: bool = False, store: Store | None = None,
          on_unpack: Any = None):
    """Mount an image's merged tree (overlay, fuse-overlayfs or extracted copy); returns a :class:`MountedImage`."""
    from imgbuild.rootfs import mount as _mount

    return _mount.mount(ref, rw=rw, mechanism=mechanism, reuse=reuse, store=store, on_unpack=on_unpack)


def umount(target: str | None = None, *, all: bool = False) -> list[Any]:
    """Unmount the mounts ``target`` (image, path or mount id) names, or all; returns what was done."""
    from imgbuild.rootfs import mount as _mount

    return _mount.umount(target, all=all)


def mounts() -> list[Any]:
    """The live mount records (stale ones cleaned first)."""
    from imgbuild.rootfs import mount as _mount

    return _mount.list_mounts()


def commit(target: str, ref: str, *, compression: str | None = None, store: Store | None = None) -> Descriptor:
    """Turn the changes of a writable mount into a new image tagged ``ref``; returns its manifest descriptor."""
    from imgbuild.rootfs.commit import commit as _commit
    from imgbuild.rootfs.mount import record_of

    return _commit(record_of(target), parse_reference(ref).normalized, compression=compression, store=store)


def diff(a: str, b: str, *, owners: bool = True, store: Store | None = None):
    """Files and config that changed from ``a`` to ``b`` (images or directories); an :class:`ImageDiff`."""
    from imgbuild.rootfs.difftree import diff as _diff

    return _diff(a, b, store=store, owners=owners)


def build(context: str | Path, *, store: Store | None = None, reporter: Any = None, **request: Any):
    """Build the Kubefile in ``context`` into the store; ``request`` holds BuildRequest fields (tags, platforms...)."""
    from imgbuild.builder.request import BuildRequest, build as _build

    return _build(BuildRequest(context=Path(context), **request), store=store, reporter=reporter)


def pull(ref: str, *, platform: str | None = None, all_platforms: bool = False, jobs: int = 4,
         tls_verify: bool | None = None, ca_file: str | None = None, progress: object = False,
         store: Store | None = None) -> Descriptor:
    """Pull ``ref`` (for ``platform`` os/arch[/variant], or every platform) into the store; its descriptor."""
    from imgbuild.oci.model import Platform
    from imgbuild.oci.transfer import pull as _pull

    plat = Platform.parse(platform) if platform else None
    return _pull(ref, store=store, platform=plat, all_platforms=all_platforms, jobs=jobs, progress=progress,
                 tls_verify=tls_verify, ca_file=ca_file)


def push(ref: str, dest: str | None = None, *, jobs: int = 4, tls_verify: bool | None = None,
         ca_file: str | None = None, progress: object = False, store: Store | None = None) -> Digest:
    """Push local image ``ref`` to ``dest`` (default ``ref``); the digest the registry confirmed."""
    from imgbuild.oci.transfer import push as _push

    return _push(ref, dest, store=store, jobs=jobs, progress=progress, tls_verify=tls_verify, ca_file=ca_file)


def login(registry: str, username: str, password: str, *, tls_verify: bool | None = None,
          ca_file: str | None = None) -> str:
    """Check credentials against ``registry`` and save them in ``$IMGBUILD_HOME/auth.json``; the host."""
    from imgbuild.oci.auth import login as _login

    return _login(registry, username, password, tls_verify=tls_verify, ca_file=ca_file)


def logout(registry: str) -> bool:
    """Forget the saved credentials of ``registry``; False if there were none."""
    from imgbuild.oci.auth import logout as _logout

    return _logout(registry)


def inspect_remote(ref: str, *, tls_verify: bool | None = None, ca_file: str | None = None) -> dict:
    """Manifest and config (or an index's platforms) straight from the registry; nothing is stored."""
    from imgbuild.oci.transfer import inspect_remote as _inspect_remote

    return _inspect_remote(ref, tls_verify=tls_verify, ca_file=ca_file)
