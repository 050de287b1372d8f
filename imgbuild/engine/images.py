"""The cluster's images as the engine sees them: config read from the local store, then mounted read-only.

:func:`image_runs` turns the Clusterfile's image list into :class:`ImageRun`
values from each image's config (type, labels, env, CMD, arch) without
mounting anything, so ``--dry-run`` can plan from them; an image missing from
the store is pulled first (not in a dry run: there it is an error naming the
image and saying so). :func:`mount_image` mounts one read-only (sharing a live
mount of the same image) and lists its ``scripts/``. The first image of a new
cluster must be a rootfs image, as in sealos.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any, Callable, Sequence

from imgbuild import labels as L
from imgbuild.engine.context import ImageRun
from imgbuild.errors import ImageNotFound, InputError
from imgbuild.reference import parse_reference

__all__ = ["image_runs", "mount_image", "app_name", "check_order", "setid_files"]


def app_name(ref: str, taken: set[str]) -> str:
    """The directory name of an application image on master0: its repository's last part (made unique)."""
    try:
        base = posixpath.basename(parse_reference(ref).repository) or "app"
    except Exception:  # noqa: BLE001 - a digest or id: fall back to a safe name
        base = "app"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def image_runs(refs: Sequence[str], store: Any, *, pull: Callable[[str], None] | None) -> list[ImageRun]:
    """The images of ``refs`` from ``store``, pulling missing ones with ``pull`` (None: missing is an error)."""
    runs: list[ImageRun] = []
    taken: set[str] = set()
    for ref in refs:
        image = _find(ref, store, pull)
        cfg = image.config
        labels = cfg.labels
        kind = labels.get(L.TYPE_LABEL) or L.TYPE_ROOTFS
        if kind not in L.IMAGE_TYPES:
            raise InputError(f"unknown {L.TYPE_LABEL} {kind!r} (want one of {', '.join(L.IMAGE_TYPES)})", ref)
        runs.append(ImageRun(
            ref=ref, digest=str(image.digest), id=str(image.id), type=kind, labels=labels,
            env={**L.REGISTRY_ENV_DEFAULTS, **cfg.env_map} if kind != L.TYPE_APPLICATION else cfg.env_map,
            cmd=tuple(cfg.cmd), entrypoint=tuple(cfg.entrypoint),
            workdir=str((cfg.data.get("config") or {}).get("WorkingDir") or "/"),
            arch=cfg.platform.architecture, app=app_name(ref, taken) if kind == L.TYPE_APPLICATION else "",
        ))
    return runs


def _find(ref: str, store: Any, pull: Callable[[str], None] | None) -> Any:
    try:
        return store.image(ref)
    except ImageNotFound:
        if pull is None:
            raise ImageNotFound(f"image {ref} is not in the local store (a dry run does not pull)", ref) from None
    pull(ref)
    return store.image(ref)


def check_order(images: Sequence[ImageRun], new_cluster: bool) -> None:
    """Refuse a new cluster whose first image is not a rootfs image (sealos' rule)."""
    if new_cluster and images and images[0].type != L.TYPE_ROOTFS:
        raise InputError(f"the first image of a new cluster must be a rootfs image, not {images[0].type}",
                         images[0].ref)


def mount_image(image: ImageRun, mount: Callable[[str], Any]) -> tuple[Path, tuple[str, ...]]:
    """Mount ``image`` read-only with ``mount(ref)``; its tree and the names in its ``scripts/`` directory."""
    mounted = mount(image.digest)
    path = Path(mounted.path)
    scripts_dir = path / "scripts"
    scripts = tuple(sorted(os.listdir(scripts_dir))) if scripts_dir.is_dir() else ()
    return path, scripts


def setid_files(image: ImageRun, store: Any, home: Any) -> tuple[tuple[str, int], ...]:
    """The (path, mode) of ``image``'s setuid/setgid files, from its layers' listings (kept per image digest).

    A mount drops those bits (the layer cache is shared, see :mod:`imgbuild.rootfs.policy`); the image is run
    as root on its hosts by the user's choice, so what it ships there keeps them.
    """
    import json

    from imgbuild.fsutil import atomic_write
    from imgbuild.rootfs.difftree import image_tree

    cache = Path(home.cache) / "setid" / f"{image.digest.split(':', 1)[-1]}.json"
    try:
        return tuple((str(p), int(m)) for p, m in json.loads(cache.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    tree = image_tree(store.image(image.digest), home)
    found = tuple((path[2:] if path.startswith("./") else path.lstrip("/"), info.mode)
                  for path, info in tree.items() if info.kind == "file" and info.mode & 0o6000)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps(found).encode())
    return found
