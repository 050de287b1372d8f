"""The images a build bundles into the image's ``registry/``, as ``sealos build`` saves them before the Kubefile runs.

:func:`plan_bundle` says, without touching the network, what a build will bundle
(``build --dry-run`` and ``images find`` print it): every image discovery found,
except those a ``registry/`` the user prepared in the context already holds when
the Kubefile copies it (``COPY registry registry``): those are taken as they are,
so a context made with ``imgbuild registry save . --registry-dir registry``
builds offline. :func:`bundle` then fetches the rest into a cached tree:

* registries are asked once each, in parallel, whether they answer at all; the
  images of one that does not are reported together at once (not one timeout per
  image), as an error or, with ``--skip-missing-images``, one warning per image;
* images that cannot be fetched fail the build naming each with where it was
  found, or are left out with a warning each (``--skip-missing-images``);
* an image bundled for a platform it does not have (an amd64-only image in a
  ``--platform linux/arm64`` build) is warned about, never bundled silently.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from imgbuild.builder.images import FoundImage, ImageSet
from imgbuild.builder.plan import BuildPlan
from imgbuild.errors import ImageNotFound, ImgbuildError, RegistryError
from imgbuild.oci.model import Platform
from imgbuild.oci.regdir import RegistryDir, repository_name
from imgbuild.reference import parse_reference

__all__ = ["BundlePlan", "plan_bundle", "bundle", "pull_bases"]

_SKIP_HINT = "--skip-missing-images to build without them, --save-image=false to bundle no images"
_SHOWN = 5


@dataclass(frozen=True)
class BundlePlan:
    """What a build bundles: images found in the context's prepared ``registry/`` and the ones to fetch."""

    prepared: tuple[FoundImage, ...]
    fetch: ImageSet
    prepared_dir: Path | None = None

    @property
    def count(self) -> int:
        """How many images the image will carry in registry/."""
        return len(self.prepared) + len(self.fetch.found) + len(self.fetch.archives)

    def rows(self) -> list[tuple[str, str, str]]:
        """``(reference, where it was found, from where it comes)`` per image, sorted."""
        rows = [(f.ref, f.where, "registry/ in the context") for f in self.prepared]
        rows += [(f.ref, f.where, "to fetch") for f in self.fetch.found]
        rows += [(a.ref, str(a.source), f"archive {a.path}") for a in self.fetch.archives]
        return sorted(rows)

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return {"images": [{"ref": r, "foundIn": w, "from": s} for r, w, s in self.rows()],
                "preparedRegistry": str(self.prepared_dir) if self.prepared_dir else None}


def _in(regdir: RegistryDir, ref: str) -> bool:
    try:
        return regdir.lookup(ref) is not None
    except ImgbuildError:  # an unreadable prepared directory does not hold the image
        return False


def plan_bundle(plan: BuildPlan, found: ImageSet) -> BundlePlan:
    """Split ``found`` into images the context's ``registry/`` holds (when the Kubefile copies it) and the rest."""
    root = plan.context.root / "registry"
    if not (plan.copies_registry() and root.is_dir()):
        return BundlePlan((), found)
    regdir = RegistryDir(root)
    prepared = tuple(f for f in found.found if _in(regdir, f.ref))
    kept = tuple(a for a in found.archives if not _in(regdir, a.ref))
    fetch = replace(found, found=tuple(f for f in found.found if f not in prepared), archives=kept)
    return BundlePlan(prepared, fetch, root)


def _wrong_platform(regdir: RegistryDir, ref: str, platform: Platform) -> str | None:
    """The platforms ``ref`` has in ``regdir`` when none of them is ``platform``, else None."""
    r = parse_reference(ref)
    if not r.tag:
        return None
    try:
        have = regdir.describe(repository_name(r), r.tag).platforms
    except ImgbuildError:
        return None
    fits = any(p.split("/")[:2] == [platform.os, platform.architecture] for p in have)
    return None if not have or fits else ", ".join(have)


def _platform_warnings(regdir: RegistryDir, images: list[tuple[str, str]], platform: Platform,
                       warn: Callable[[str], None]) -> None:
    for ref, where in images:
        have = _wrong_platform(regdir, ref, platform)
        if have:
            warn(f"image {ref} ({where}) has no {platform} image (it is {have}); it is bundled as it is "
                 "and will not run on that platform")


def _registry_down(host: str) -> str | None:
    """Why registry ``host`` does not answer at all, or None when it does."""
    from imgbuild.oci.registry import RegistryClient

    try:
        with RegistryClient(host, retries=0, timeout=30) as client:
            client.ping()
    except RegistryError as exc:
        return exc.message
    return None


def _unreachable(fetch: ImageSet, dest: RegistryDir, store) -> dict[str, tuple[str, list[FoundImage]]]:
    """Registries that do not answer, with why and the images to fetch from each (store and bundle checked first)."""
    by_host: dict[str, list[FoundImage]] = {}
    for f in fetch.found:
        if f.daemon or _in(dest, f.ref):  # a daemon image comes from the Docker daemon, not a registry
            continue
        try:
            store.resolve(f.ref)
            continue
        except ImgbuildError:
            pass
        by_host.setdefault(parse_reference(f.ref).registry, []).append(f)
    if not by_host:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(by_host)), thread_name_prefix="imgbuild-ping") as pool:
        answers = dict(zip(by_host, pool.map(_registry_down, by_host)))
    return {h: (why, by_host[h]) for h, why in answers.items() if why is not None}


def _drop_unreachable(fetch: ImageSet, dest: RegistryDir, store, skip_missing: bool,
                      warn: Callable[[str], None]) -> ImageSet:
    """``fetch`` without the images of registries that do not answer (RegistryError unless ``skip_missing``)."""
    down = _unreachable(fetch, dest, store)
    if not down:
        return fetch
    lost = {f.ref for _, images in down.values() for f in images}
    if not skip_missing:
        lines = []
        for host, (why, images) in sorted(down.items()):
            shown = ", ".join(f"{f.ref} ({f.where})" for f in images[:_SHOWN])
            more = f" and {len(images) - _SHOWN} more" if len(images) > _SHOWN else ""
            lines.append(f"  {host}: {why}; {len(images)} image(s): {shown}{more}")
        raise RegistryError(f"{len(lost)} image(s) cannot be fetched, their registry does not answer "
                            f"({_SKIP_HINT}):\n" + "\n".join(lines))
    for host, (why, images) in sorted(down.items()):
        for f in images:
            warn(f"image {f.ref} is not bundled ({f.where}): registry {host} does not answer: {why}")
    return replace(fetch, found=tuple(f for f in fetch.found if f.ref not in lost))


def bundle(plan: BuildPlan, found: ImageSet, platform: Platform | None, store, reporter, executor=None, *,
           skip_missing: bool = False, warn: Callable[[str], None] = lambda _: None) -> Path | None:
    """Fetch what :func:`plan_bundle` says into a cached registry/ tree; its path, or None with nothing to add.

    The tree is ``<home>/cache/registry/<key>`` (the Home ``store`` carries), the key naming the
    context, platform and images, so a rebuild copies nothing and keeps the image's digest.
    """
    from imgbuild.oci.regsave import save_images

    plat = platform or Platform.current()
    bp = plan_bundle(plan, found)
    if bp.prepared:
        reporter.note(f"{len(bp.prepared)} image(s) taken from the context's registry/")
        _platform_warnings(RegistryDir(bp.prepared_dir), [(f.ref, f.where) for f in bp.prepared], plat, warn)
    fetch = bp.fetch
    if not fetch.found and not fetch.archives:
        return None
    names = [*fetch.refs, *(a.ref for a in fetch.archives)]
    key = hashlib.sha256("\n".join([str(plan.context.root), str(platform), *names]).encode()).hexdigest()[:16]
    dest = RegistryDir(store.needs_home("bundling images into registry/").cache / "registry" / key)
    fetch = _drop_unreachable(fetch, dest, store, skip_missing, warn)
    if not fetch.found and not fetch.archives:
        return None
    reporter.note(f"bundling {len(fetch.found) + len(fetch.archives)} image(s) into registry/")
    report = save_images(fetch, dest, platform=platform, store=store, context_dir=plan.context.root,
                         notify=reporter.note, executor=executor, skip_missing=skip_missing)
    for m in report.missing:
        warn(f"image {m.ref} is not bundled ({m.where}): {m.reason}")
    _platform_warnings(dest, [(f.ref, f.where) for f in fetch.found], plat, warn)
    return dest.root if report.saved or report.skipped_existing else None


def pull_bases(plan: BuildPlan, store, policy: str, platform: Platform | None, executor, reporter) -> None:
    """Put each stage's base image in ``store`` per ``policy``; a failure names the image and its FROM line."""
    from imgbuild.builder.native import pull_base

    for sp in plan.stages:
        if sp.base_stage is not None or sp.base.lower() == "scratch" or sp.base.startswith("docker-daemon:"):
            continue
        plat = Platform.parse(sp.platform) if sp.platform else platform or Platform.current()
        where = plan.where(sp.steps[0].line)
        if policy != "always":
            try:
                store.image(sp.base, plat)
                continue
            except ImageNotFound:
                if policy == "never":
                    raise ImageNotFound(f"base image {sp.base} is not in the local store (--pull=never)", where)
        reporter.note(f"pulling {sp.base}")
        pull_base(sp.base, store, plat, executor, where)
