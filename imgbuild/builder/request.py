"""``build``: one call from a context directory to a tagged image (or multi-platform index) in the store.

It plans the Kubefile once per platform, bundles the images the context needs
into a registry/ tree (see :func:`bundle_images`), runs the chosen backend
(native, or buildah when a stage has RUN), and for several ``--platform``
values combines the per-platform manifests into one OCI index under the tags.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from imgbuild.builder.native import BuildOptions, BuildResult, Reporter, build_native, tag_image
from imgbuild.builder.plan import BuildPlan, make_plan
from imgbuild.engine.exec import Executor
from imgbuild.reference import parse_reference
from imgbuild.oci.model import Descriptor, Index, Platform

__all__ = ["BuildRequest", "BuildOutcome", "build", "plan_build", "bundle_images"]


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
                  executor: Executor | None = None) -> Path | None:
    """Save the images ``found`` in the context into a cached registry/ tree; None when there are none.

    The tree lives in ``<home>/cache/registry/<key>`` (the Home ``store`` carries), the key naming the
    context, platform and image set, so a rebuild copies nothing and the image keeps its digest.
    """
    from imgbuild.oci.regsave import save_images

    if not found.found and not found.archives:
        return None
    names = [*found.refs, *(str(a) for a in found.archives)]
    key = hashlib.sha256("\n".join([str(plan.context.root), str(platform), *names]).encode()).hexdigest()[:16]
    dest = store.needs_home("bundling images into registry/").cache / "registry" / key
    reporter.note(f"bundling {len(names)} image(s) into registry/")
    save_images(found, dest, platform=platform, store=store, context_dir=plan.context.root, notify=reporter.note,
                executor=executor)
    return dest


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
    from imgbuild.builder.images import find_images

    rep = reporter or Reporter()
    results: list[BuildResult] = []
    warnings: list[str] = []
    backend = "native"
    for platform in _platforms(req):
        plan = plan_build(req, platform)
        backend = plan.backend
        warnings.extend(f"build arg {a} is not used by the Kubefile" for a in plan.parsed.unused_build_args
                        if a not in ("ARCH",) and not a.startswith("TARGET"))
        found = find_images(plan.context.root, platform=str(platform) if platform else None)
        warnings.extend(f"image value {s.value!r} is not bundled ({s.file}:{s.line}): {s.reason}"
                        for s in found.skipped)
        registry = bundle_images(plan, found, platform, store, rep, executor)
        opts = BuildOptions(tags=req.tags, compression=req.compression, pull=req.pull, labels=req.labels,
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
