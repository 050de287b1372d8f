"""``build``: one call from a context directory to a tagged image (or multi-platform index) in the store.

It plans the Kubefile once per platform, bundles the images the context needs
into a registry/ tree (see :func:`bundle_images` and :mod:`._bundle`: a
``registry/`` prepared in the context is used as it is, ``--skip-missing-images``
leaves out what cannot be fetched, ``--save-image=false`` bundles nothing),
runs the chosen backend (native, or buildah when a stage has RUN), and for
several ``--platform`` values combines the per-platform manifests into one OCI
index under the tags. A base image that cannot be pulled is named with its
``Kubefile:N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from imgbuild.builder.native import BuildOptions, BuildResult, Reporter, build_native, tag_image
from imgbuild.builder.plan import BuildPlan, make_plan
from imgbuild.engine.exec import Executor
from imgbuild.reference import parse_reference
from imgbuild.oci.model import Descriptor, Index, Platform

__all__ = ["BuildRequest", "BuildOutcome", "build", "plan_build", "bundle_images", "preview_bundle"]


@dataclass(frozen=True)
class BuildRequest:
    """Everything ``imgbuild build`` was asked: context, Kubefile, tags, args, platforms, backend, extras."""

    context: Path
    kubefile: Path | None = None
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    backend: str = "auto"
    target: str | None = None
    timestamp: int | None = None
    compression: str = "zstd"
    pull: str = "missing"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    cache: bool = True
    helm: str = "auto"
    save_image: bool = True
    skip_missing_images: bool = False

    def __post_init__(self) -> None:
        for tag in self.tags:  # a bad -t fails before the build, not after it
            parse_reference(tag)


@dataclass(frozen=True)
class BuildOutcome:
    """What was built: the tagged descriptor (manifest or index) and one result per platform."""

    descriptor: Descriptor
    results: tuple[BuildResult, ...]
    backend: str
    warnings: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """The digest the tags point at."""
        return str(self.descriptor.digest)

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return {"digest": self.digest, "media_type": self.descriptor.media_type, "backend": self.backend,
                "images": [r.to_dict() for r in self.results], "warnings": list(self.warnings)}


def _platforms(req: BuildRequest) -> list[Platform | None]:
    return [Platform.parse(p) for p in req.platforms] or [None]


def plan_build(req: BuildRequest, platform: Platform | None = None) -> BuildPlan:
    """The plan for one platform (what ``--dry-run`` prints)."""
    return make_plan(req.context, kubefile=req.kubefile, build_args=req.build_args, backend=req.backend,
                     target=req.target, timestamp=req.timestamp, platform=platform)


def bundle_images(plan: BuildPlan, found, platform: Platform | None, store, reporter: Reporter,
                  executor: Executor | None = None, *, skip_missing: bool = False,
                  warn=lambda _: None) -> Path | None:
    """Save the images ``found`` in the context into a cached registry/ tree; None when there is nothing to add.

    Images a prepared ``registry/`` in the context holds are not fetched; see :mod:`._bundle`.
    """
    from imgbuild.builder._bundle import bundle

    return bundle(plan, found, platform, store, reporter, executor, skip_missing=skip_missing, warn=warn)


def _find(req: BuildRequest, plan: BuildPlan, platform: Platform | None, executor: Executor | None):
    from imgbuild.builder.images import find_images

    return find_images(plan.context.root, platform=str(platform) if platform else None, helm=req.helm,
                       executor=executor)


def preview_bundle(req: BuildRequest, plan: BuildPlan, executor: Executor | None = None):
    """What a build of ``plan`` would bundle (``build --dry-run``): a BundlePlan, or None with ``--save-image=false``.

    Nothing is fetched; charts are rendered as the build would (helm on ``executor`` with ``--helm``).
    """
    from imgbuild.builder._bundle import plan_bundle

    if not req.save_image:
        return None
    return plan_bundle(plan, _find(req, plan, None, executor))


def _run_one(plan: BuildPlan, store, opts: BuildOptions, reporter: Reporter, executor: Executor) -> BuildResult:
    if plan.backend == "buildah":
        from imgbuild.builder.buildah import build_buildah

        return build_buildah(plan, store, opts, reporter, executor=executor)
    return build_native(plan, store, opts, reporter, tag=False, executor=executor)


def build(req: BuildRequest, store, *, executor: Executor, reporter: Reporter | None = None) -> BuildOutcome:
    """Build ``req`` into ``store`` and tag it; one index for several platforms.

    ``executor`` runs buildah (for RUN) and registry credential helpers; caches are those of the
    Home ``store`` carries.
    """
    rep = reporter or Reporter()
    results: list[BuildResult] = []
    warnings: list[str] = []
    backend = "native"
    for platform in _platforms(req):
        plan = plan_build(req, platform)
        backend = plan.backend
        warnings.extend(f"build arg {a} is not used by the Kubefile" for a in plan.parsed.unused_build_args
                        if a not in ("ARCH",) and not a.startswith("TARGET"))
        pull = req.pull
        if plan.backend == "buildah":  # buildah takes bases from our store: pull them here, errors at their FROM line
            from imgbuild.builder._bundle import pull_bases

            pull_bases(plan, store, req.pull, platform, executor, rep)
            pull = "missing" if req.pull == "always" else req.pull
        registry = None
        if req.save_image:
            found = _find(req, plan, platform, executor)
            warnings.extend(f"image value {s.value!r} is not bundled ({s.file}:{s.line}): {s.reason}"
                            for s in found.skipped)
            warnings.extend(str(w) for w in found.warnings)
            registry = bundle_images(plan, found, platform, store, rep, executor,
                                     skip_missing=req.skip_missing_images, warn=warnings.append)
        else:
            rep.note("--save-image=false: no images are bundled into registry/")
        opts = BuildOptions(tags=req.tags, compression=req.compression, pull=pull, labels=req.labels,
                            annotations=req.annotations, env=req.env, platform=platform, cache=req.cache,
                            registry_dir=registry)
        results.append(_run_one(plan, store, opts, rep, executor))
    if len(results) == 1:
        desc = results[0].descriptor
    else:
        index = Index.build([r.descriptor for r in results])
        desc = store.put_manifest(index)
    tag_image(store, desc, req.tags)
    return BuildOutcome(desc, tuple(results), backend, tuple(dict.fromkeys(warnings)))
