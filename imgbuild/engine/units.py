"""What each host receives, as transfer units: layered local trees bound for one directory on the host.

Role-aware, as sealos lays clusters out: every host gets the merged rootfs of
the rootfs/patch images (their ``registry/`` only on registry hosts, where the
application images' ``registry/`` trees join it, so the one registry serves
every bundled image), with the Configs' and the host's rendered files on top;
master0 gets each application image in its workdir; every host gets its PKI
bundle. A unit's ``key`` digests everything it is made of (image digests,
rendered and configured file digests, the role-dependent choices), so a host
whose state already holds that key needs nothing sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from imgbuild.engine.context import HostRun, ImageRun, RunContext

__all__ = ["Layer", "Unit", "host_units", "fans_out", "common_layers", "common_key"]


@dataclass(frozen=True)
class Layer:
    """A local directory whose tree lands under ``prefix`` of the unit's destination, minus ``exclude``.

    ``modes`` restores the setuid/setgid bits of the image's files, which its mounted tree lacks.
    """

    path: Path
    prefix: str = ""
    exclude: tuple[str, ...] = ()
    modes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Unit:
    """Layers (later ones win) bound for ``dest`` on a host; ``key`` names the content."""

    what: str
    dest: str
    layers: tuple[Layer, ...]
    key: str


def host_units(ctx: RunContext, host: HostRun) -> list[Unit]:
    """The units ``host`` receives in this run, in order: rootfs, applications (master0), PKI.

    Keys are computed from digests alone (the images, the files rendered for this host, the Configs, the PKI
    inputs), so a dry run, which renders in memory, knows the same keys a run does.
    """
    staging: Path = ctx.extra["staging"]
    registry = ctx.is_registry(host)
    rendered = ctx.extra.get("rendered", {})
    common = [ctx.extra.get("configs_digest", "")]
    layers: list[Layer] = []
    parts: list[object] = [registry, *common]
    for image in ctx.images:
        if image.is_rootfs:
            layers += _image_layers(image, host, staging, () if registry else ("registry",))
            parts.append((image.digest, sorted(rendered.get((host.name, image.id), {}).items())))
        elif registry:
            if image.path is not None and (image.path / "registry").is_dir():
                layers.append(Layer(image.path / "registry", "registry"))
            parts.append(("registry", image.digest))
    if registry and fans_out(ctx):  # the artifact the other hosts fetch, served by this host's registry
        parts.append(("fanout", common_key(ctx)))
        if "fanout" in ctx.extra:
            layers.append(Layer(ctx.extra["fanout"].root, "registry"))
    units = [Unit("rootfs", ctx.rootfs, tuple(layers), _key(ctx.rootfs, parts))]
    if host is ctx.master0:
        for image in ctx.images:
            if not image.is_rootfs:
                units.append(Unit(f"application {image.app}", ctx.app_dir(image),
                                  tuple(_image_layers(image, host, staging, ())),
                                  _key(ctx.app_dir(image), [image.digest, *common,
                                                            sorted(rendered.get((host.name, image.id), {}).items())])))
    pki_dir = staging / "pki" / host.name
    ca = ctx._once("ca", ctx.extra["ca"]) if "ca" in ctx.extra else ""  # read after Render made the CA
    pki_parts = [host.address, host.facts.get("hostname", ""), host.has("master"), ca]
    units.append(Unit("pki", ctx.pki, (Layer(pki_dir),), _key(ctx.pki, pki_parts)))
    return units


def fans_out(ctx: RunContext) -> bool:
    """True when this run distributes through the registry: asked for, and some host is not a registry host."""
    return ctx.options.distribute == "registry" and any(not ctx.is_registry(h) for h in ctx.hosts)


def common_layers(ctx: RunContext) -> tuple[Layer, ...]:
    """The part of the rootfs every non-registry host receives alike: the images without registry/, the Configs."""
    staging: Path = ctx.extra["staging"]
    out: list[Layer] = []
    for image in ctx.images:
        if image.is_rootfs and image.path is not None:
            out.append(Layer(image.path, "", ("registry",), image.setid))
            if (staging / "configs" / image.id).is_dir():
                out.append(Layer(staging / "configs" / image.id))
    return tuple(out)


def common_key(ctx: RunContext) -> str:
    """Names the content of :func:`common_layers` from digests alone (a dry run knows it too)."""
    return _key(ctx.rootfs, [ctx.extra.get("configs_digest", ""), [i.digest for i in ctx.images if i.is_rootfs]])


def _image_layers(image: ImageRun, host: HostRun, staging: Path, exclude: tuple[str, ...]) -> list[Layer]:
    """The mounted image tree, then its Configs' files, then the host's rendered files (none in a dry run)."""
    if image.path is None:
        return []
    out = [Layer(image.path, "", exclude, image.setid)]
    for extra in (staging / "configs" / image.id, staging / "hosts" / host.name / image.id):
        if extra.is_dir():
            out.append(Layer(extra))
    return out


def _key(dest: str, parts: list[object]) -> str:
    return hashlib.sha256(json.dumps([dest, parts], default=str).encode()).hexdigest()[:16]
