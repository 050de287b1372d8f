"""One-call verbs: what the CLI (and any Python caller) uses to act on images.

Each function does one user-level thing and returns plain values; printing and
exit codes are the CLI's business. Nothing here reads ``$IMGBUILD_HOME``: a
verb acts on the :class:`~imgbuild.oci.store.Store` it is given (``store=``,
from ``open_store(home)``, carrying that Home for caches, mounts and
credentials) or on the :class:`~imgbuild.home.Home` it is given (``home=``).
Verbs that run commands take ``executor=``; without one they run on this
machine (a :class:`~imgbuild.engine.exec.LocalExecutor` made for the call).

This is a flat module of small functions: list (:func:`images`), look
(:func:`inspect`, :func:`inspect_remote`), name (:func:`tag`, :func:`rmi`),
move (:func:`save`, :func:`load`, :func:`pull`, :func:`push`), make
(:func:`build`, :func:`plan`, :func:`commit`), check (:func:`lint`,
:func:`find_images`), look inside (:func:`mount`, :func:`umount`,
:func:`mounts`, :func:`diff`), credentials (:func:`login`, :func:`logout`),
registry/ directories (:func:`registry_save`, :func:`registry_serve`,
:func:`registry_ls`), keep tidy (:func:`gc`, :func:`verify`) and
:func:`version`. The run engine calls :func:`mount` to get a ``MountedImage``; the run side's verbs
(run, apply, add, delete, reset, status) are in :mod:`imgbuild.runs`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from imgbuild import labels
from imgbuild.engine.exec import Executor, LocalExecutor
from imgbuild.errors import ImageNotFound, ImgbuildError, InputError, InvalidReference
from imgbuild.home import Home
from imgbuild.progress import Progress
from imgbuild.oci.model import REF_NAME, Descriptor, Digest, Index
from imgbuild.oci.store import Image, Store
from imgbuild.reference import Reference, parse_reference

__all__ = [
    "ImageSummary", "ImageDetails", "RmiResult", "GcResult", "LintResult",
    "TYPE_LABEL", "ROLE_ANNOTATION",
    "images", "inspect", "tag", "rmi", "save", "load", "gc", "verify", "image_id",
    "mount", "umount", "mounts", "commit", "diff", "build", "plan", "lint", "find_images",
    "pull", "push", "login", "logout", "inspect_remote",
    "registry_save", "registry_serve", "registry_ls", "version",
]

TYPE_LABEL = labels.TYPE_LABEL
ROLE_ANNOTATION = labels.ROLE_ANNOTATION


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


def _run_here(executor: Executor | None) -> Executor:
    """``executor``, or one running commands on this machine."""
    return executor if executor is not None else LocalExecutor()


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
        created=img.config.created, size=img.size(), type=img.config.labels.get(labels.TYPE_LABEL),
        platform=str(img.config.platform),
    )


def images(store: Store) -> list[ImageSummary]:
    """Every tag and untagged image in the store, newest first."""
    rows = [_summary(store, e) for e in store.entries()]
    return sorted(rows, key=lambda r: (r.created or "", r.reference or ""), reverse=True)


def inspect(ref: str, store: Store) -> ImageDetails:
    """Everything about one image: summary fields, layers and the exact manifest/config documents."""
    desc = store.resolve(ref)
    img = _listing_image(store, desc)
    cfg = img.config
    layers = [{"digest": str(d.digest), "size": d.size, "media_type": d.media_type,
               "role": d.annotations.get(labels.ROLE_ANNOTATION)} for d in img.layers]
    return ImageDetails(
        reference=desc.annotations.get(REF_NAME) or str(desc.digest), digest=str(img.digest),
        image_id=str(img.id), created=cfg.created, platform=str(cfg.platform), type=cfg.labels.get(labels.TYPE_LABEL),
        labels=cfg.labels, env=cfg.env, cmd=cfg.cmd, entrypoint=cfg.entrypoint, layers=layers, size=img.size(),
        manifest=json.loads(img.manifest.raw), config=json.loads(cfg.raw),
        index=json.loads(img.index.raw) if img.index is not None else None,
    )


def tag(src: str, dst: str, store: Store) -> Reference:
    """Give the image ``src`` the additional name ``dst``; returns the normalised new reference."""
    desc = store.resolve(src)
    ref = parse_reference(dst)
    if ref.digest:
        raise InputError("a tag cannot contain a digest", dst)
    store.tag(ref, desc)
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


def rmi(refs: Sequence[str], force: bool = False, *, store: Store) -> RmiResult:
    """Remove images, then gc what no tag reaches.

    By tag: removes that tag only (the image stays while other tags point at it,
    like ``docker rmi``). By ID or digest: removes the image and its tag; when it
    has several tags that needs ``force``, which then removes them all.
    """
    st = store
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


def save(refs: Sequence[str], output: Path, format: str = "oci-archive", *, store: Store) -> Path:
    """Write images to an ``oci-archive`` or ``docker-archive`` file; returns its path."""
    from imgbuild.oci import archive

    archive.save(store, refs, Path(output), format)
    return Path(output)


def load(path: Path, *, store: Store, policy: Any = None) -> list[Any]:
    """Load an oci-archive, docker-archive or OCI layout directory; returns the :class:`archive.Loaded` images.

    ``policy`` (:class:`~imgbuild.rootfs.policy.UnpackPolicy`) bounds how far a compressed archive may expand.
    """
    from imgbuild.oci import archive

    return archive.load(store, Path(path), policy)


def gc(*, store: Store, caches: bool = True) -> GcResult:
    """Remove blobs no tag reaches, then (with ``caches``) the entries of the store's Home's caches nothing uses."""
    removed, freed = store.gc()
    if not caches:
        return GcResult(removed, freed)
    from imgbuild.builder.cache import prune_step_cache
    from imgbuild.rootfs.prune import prune_caches

    pruned = prune_caches(store)
    steps = prune_step_cache(store)
    return GcResult(removed, freed, (*pruned, *([steps] if steps is not None else [])))


def verify(repair: bool = False, *, store: Store) -> list[str]:
    """Re-hash every blob and check every image is complete; returns the problems (corrupt blobs removed if ``repair``)."""
    return store.verify(repair)


def image_id(digest: str | Digest) -> str:
    """The short IMAGE ID docker shows: the first 12 hex digits of the config digest."""
    return Digest(digest).hex[:12]


def mount(ref: str, *, store: Store, executor: Executor | None = None, rw: bool = False, mechanism: str = "auto",
          reuse: bool = False, on_unpack: Any = None, policy: Any = None):
    """Mount an image's merged tree (overlay, fuse-overlayfs or extracted copy); returns a :class:`MountedImage`.

    The mount and its unpacked layers live under the Home ``store`` carries; ``policy`` (an
    :class:`~imgbuild.rootfs.policy.UnpackPolicy`) keeps special files or raises the expansion limit.
    """
    from imgbuild.rootfs import mount as _mount
    from imgbuild.rootfs.policy import DEFAULT_POLICY

    return _mount.mount(ref, store=store, executor=_run_here(executor), rw=rw, mechanism=mechanism, reuse=reuse,
                        on_unpack=on_unpack, policy=policy or DEFAULT_POLICY)


def umount(target: str | None = None, *, home: Home, executor: Executor | None = None,
           all: bool = False) -> list[Any]:
    """Unmount the mounts of ``home`` that ``target`` (image, path or mount id) names, or all; what was done."""
    from imgbuild.rootfs import mount as _mount

    return _mount.umount(target, home=home, executor=_run_here(executor), all=all)


def mounts(*, home: Home, executor: Executor | None = None) -> list[Any]:
    """The live mount records of ``home`` (stale ones cleaned first)."""
    from imgbuild.rootfs import mount as _mount

    return _mount.list_mounts(home, _run_here(executor))


def commit(target: str, ref: str, *, store: Store, executor: Executor | None = None,
           compression: str | None = None) -> Descriptor:
    """Turn the changes of a writable mount into a new image tagged ``ref``; returns its manifest descriptor."""
    from imgbuild.rootfs.commit import commit as _commit
    from imgbuild.rootfs.mount import record_of

    rec = record_of(target, store.needs_home("committing a mount"), _run_here(executor))
    return _commit(rec, parse_reference(ref).normalized, compression=compression, store=store)


def diff(a: str, b: str, *, store: Store, owners: bool = True):
    """Files and config that changed from ``a`` to ``b`` (images or directories); an :class:`ImageDiff`."""
    from imgbuild.rootfs.difftree import diff as _diff

    return _diff(a, b, store=store, owners=owners)


def build(context: str | Path, *, store: Store, executor: Executor | None = None, reporter: Any = None,
          **request: Any):
    """Build the Kubefile in ``context`` into the store; ``request`` holds BuildRequest fields (tags, platforms...)."""
    from imgbuild.builder.request import BuildRequest, build as _build

    return _build(BuildRequest(context=Path(context), **request), store, executor=_run_here(executor),
                  reporter=reporter)


def plan(context: str | Path, **request: Any) -> list[Any]:
    """The build plan (:class:`BuildPlan`) for each requested platform, nothing built (``build --dry-run``)."""
    from imgbuild.builder.request import BuildRequest, plan_build
    from imgbuild.oci.model import Platform

    req = BuildRequest(context=Path(context), **request)
    return [plan_build(req, Platform.parse(p) if p else None) for p in (req.platforms or (None,))]


@dataclass(frozen=True)
class LintResult:
    """What :func:`lint` found: the Kubefile path, its parsed model (None if it did not parse) and every error."""

    path: Path
    kubefile: Any
    errors: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the Kubefile parsed and no problem was found."""
        return not self.errors


def lint(file: str | Path | None = None, *, context: str | Path | None = None,
         build_args: Mapping[str, str] | None = None) -> LintResult:
    """Parse and validate a Kubefile (default: found in ``context`` or ``.``), checking sources when ``context`` is given."""
    from imgbuild.errors import KubefileError
    from imgbuild.kubefile import find_kubefile, lint as lint_kubefile, parse_file

    path = Path(file) if file is not None else find_kubefile(context if context is not None else Path("."))
    try:
        kf = parse_file(path, build_args=dict(build_args or {}))
        return LintResult(path, kf, list(lint_kubefile(kf, context_dir=context)))
    except KubefileError as exc:
        return LintResult(path, None, [exc])


def find_images(context: str | Path, *, image_lists: Sequence[str | Path] = (), ignore_lists: Sequence[str | Path] = (),
                platform: str | None = None):
    """The container images a build context needs, with where each was found (an :class:`ImageSet`)."""
    from imgbuild.builder.images import find_images as _find

    return _find(context, image_lists=image_lists, ignore_lists=ignore_lists, platform=platform)


def pull(ref: str, *, store: Store, executor: Executor | None = None, platform: str | None = None,
         all_platforms: bool = False, jobs: int = 4, tls_verify: bool | None = None, ca_file: str | None = None,
         progress: Progress | None = None) -> Descriptor:
    """Pull ``ref`` (for ``platform`` os/arch[/variant], or every platform) into the store; its descriptor."""
    from imgbuild.oci.model import Platform
    from imgbuild.oci.transfer import pull as _pull

    plat = Platform.parse(platform) if platform else None
    return _pull(ref, store=store, platform=plat, all_platforms=all_platforms, jobs=jobs, progress=progress,
                 executor=_run_here(executor), tls_verify=tls_verify, ca_file=ca_file)


def push(ref: str, dest: str | None = None, *, store: Store, executor: Executor | None = None, jobs: int = 4,
         tls_verify: bool | None = None, ca_file: str | None = None, progress: Progress | None = None) -> Digest:
    """Push local image ``ref`` to ``dest`` (default ``ref``); the digest the registry confirmed."""
    from imgbuild.oci.transfer import push as _push

    return _push(ref, dest, store=store, jobs=jobs, progress=progress, executor=_run_here(executor),
                 tls_verify=tls_verify, ca_file=ca_file)


def login(registry: str, username: str, password: str, *, home: Home, tls_verify: bool | None = None,
          ca_file: str | None = None) -> str:
    """Check credentials against ``registry`` and save them in ``home``'s auth file (0600); the host saved under."""
    from imgbuild.oci.auth import Credentials, StaticAuth, parse_user, registry_host, save_credentials
    from imgbuild.oci.registry import RegistryClient

    host = registry_host(registry)
    creds = Credentials(parse_user(username), password)
    with RegistryClient(host, tls_verify=tls_verify, ca_file=ca_file, auth=StaticAuth(creds),
                        retries=2) as client:
        client.check_login()
    save_credentials(host, creds, home.auth_file)
    return host


def logout(registry: str, *, home: Home) -> bool:
    """Forget the credentials of ``registry`` saved in ``home``'s auth file; False if there were none."""
    from imgbuild.oci.auth import registry_host, remove_credentials

    return remove_credentials(registry_host(registry), home.auth_file)


def inspect_remote(ref: str, *, home: Home | None = None, executor: Executor | None = None,
                   tls_verify: bool | None = None, ca_file: str | None = None) -> dict:
    """Manifest and config (or an index's platforms) straight from the registry (``home``'s credentials); nothing stored."""
    from imgbuild.oci.auth import ConfigAuth
    from imgbuild.oci.transfer import inspect_remote as _inspect_remote

    auth = ConfigAuth.for_home(home, _run_here(executor))
    return _inspect_remote(ref, tls_verify=tls_verify, ca_file=ca_file, auth=auth)


def registry_save(registry_dir: str | Path, *, store: Store, executor: Executor | None = None,
                  context: str | Path | None = None, images: Sequence[str] = (), image_lists: Sequence[Path] = (),
                  ignore_lists: Sequence[Path] = (), platform: str | None = None, all_platforms: bool = False,
                  skip_missing: bool = False, jobs: int = 4, tls_verify: bool | None = None, progress: Progress | None = None,
                  notify: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None):
    """Save the images ``context`` needs and/or ``images`` into a registry/ directory; a :class:`SaveReport`.

    ``warn`` hears of each image value in the context that cannot be saved (templated, invalid);
    ``notify`` of each image saved or already present.
    """
    from imgbuild.oci.regdir import RegistryDir
    from imgbuild.oci.regsave import save_images, wanted_images

    wanted = []
    if context is not None:
        found = find_images(context, image_lists=image_lists, ignore_lists=ignore_lists, platform=platform)
        for s in found.skipped:
            (warn or (lambda _: None))(f"{s.file}:{s.line}: {s.value!r} not saved: {s.reason}")
        wanted += wanted_images(found, context)
    if images:
        wanted += wanted_images(list(images))
    if not wanted:
        raise InputError("nothing to save: give a build context that uses images, or --images")
    return save_images(wanted, RegistryDir(registry_dir), platform=platform, all_platforms=all_platforms, store=store,
                       jobs=jobs, skip_missing=skip_missing, progress=progress, notify=notify,
                       executor=_run_here(executor), tls_verify=tls_verify)


def registry_serve(directory: str | Path, *, executor: Executor | None = None, port: int = 5000,
                   address: str = "127.0.0.1", read_only: bool = False,
                   on_line: Callable[[str], None] | None = None) -> int:
    """Serve a registry/ directory with the stock registry in the foreground; 0 after a clean stop."""
    from imgbuild.oci.regserve import ServeConfig, serve

    cfg = ServeConfig(Path(directory).absolute(), port, address, read_only)
    return serve(cfg, executor=_run_here(executor), on_line=on_line)


def registry_ls(directory: str | Path):
    """The repositories, tags, digests, platforms and sizes in a registry/ directory (a :class:`RegistryListing`)."""
    from imgbuild.oci.regdir import list_registry_dir

    return list_registry_dir(directory)


_TOOLS = {"buildah": ("buildah", "--version"), "skopeo": ("skopeo", "--version"),
          "registry": ("docker-registry", "--version")}


def version(*, executor: Executor | None = None) -> dict[str, Any]:
    """imgbuild's version and the first version line of each external tool (None where not installed)."""
    from imgbuild import __version__
    from imgbuild.engine.exec import which

    run = _run_here(executor)
    found: dict[str, str | None] = {}
    for name, argv in _TOOLS.items():
        if not which(argv[0]):
            found[name] = None
            continue
        res = run.run(list(argv), check=False)
        text = (res.stdout or res.stderr).strip().splitlines()
        found[name] = text[0] if text else "unknown"
    return {"imgbuild": __version__, "tools": found}
