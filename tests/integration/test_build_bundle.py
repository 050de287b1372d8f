"""sealos-style builds against a real registry: registry/ made by the build, a prepared registry/, platforms.

Images live in a local docker-registry; the image built is read back layer by layer and its
registry/ opened as a :class:`RegistryDir`, so what is asserted is what a cluster would serve.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgbuild.builder.request import BuildRequest, build
from imgbuild.cli.main import run
from imgbuild.oci.layer import extract_layer
from imgbuild.oci.model import Platform
from imgbuild.oci.regdir import RegistryDir
from tests.integration.offline_support import TestImage, random_layer
from tests.support.local import EXEC, store
from tests.unit.builder.test_helm import deploy, write
from tests.unit.builder.test_helm_build import SEALOS

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def _context(root: Path, *images: str) -> Path:
    containers = [f"        - name: c{i}\n          image: {ref}" for i, ref in enumerate(images)]
    return write(root, {"Kubefile": SEALOS, "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
                        "charts/app/templates/d.yaml": deploy("app", *containers)})


def _registry_of(digest: str, dest: Path) -> RegistryDir:
    image = store().image(digest)
    for desc in image.layers:
        with image.open_layer(desc) as fh:
            extract_layer(fh, desc.media_type, dest)
    return RegistryDir(dest / "registry")


def _build(ctx: Path, **kw):
    return build(BuildRequest(context=ctx, **kw), store(), executor=EXEC)


def test_registry_is_made_by_the_build_from_the_chart_images(tmp_path: Path, registry) -> None:
    for name in ("acme/a:1", "acme/b:2"):
        TestImage.single([random_layer(1000)], Platform.current()).push(tmp_path, f"{registry.host}/{name}")
    ctx = _context(tmp_path / "ctx", f"{registry.host}/acme/a:1", f"{registry.host}/acme/b:2")
    outcome = _build(ctx)
    regdir = _registry_of(outcome.digest, tmp_path / "tree")
    assert regdir.repositories() == ["acme/a", "acme/b"]
    assert regdir.lookup("acme/a:1") and regdir.lookup("acme/b:2")
    assert outcome.warnings == ()


def test_a_prepared_registry_is_used_and_only_missing_images_are_fetched(tmp_path: Path, registry) -> None:
    for name in ("acme/a:1", "acme/b:2"):
        TestImage.single([random_layer(1000)], Platform.current()).push(tmp_path, f"{registry.host}/{name}")
    a, b = f"{registry.host}/acme/a:1", f"{registry.host}/acme/b:2"
    ctx = _context(tmp_path / "ctx", a, b)
    assert run(["registry", "save", "--registry-dir", str(ctx / "registry"), "--images", a]) == 0
    # a is gone from the registry: the build can only take it from the prepared registry/
    shutil.rmtree(registry.root / "docker/registry/v2/repositories/acme/a")
    regdir = _registry_of(_build(ctx).digest, tmp_path / "tree")
    assert regdir.lookup("acme/a:1") and regdir.lookup("acme/b:2")
    registry.stop()  # and with every image prepared, no registry is needed at all
    assert run(["registry", "save", "--registry-dir", str(ctx / "registry"), "--images", b]) != 0
    shutil.copytree(regdir.root, ctx / "registry", dirs_exist_ok=True)
    offline = _registry_of(_build(ctx, cache=False).digest, tmp_path / "tree2")
    assert offline.repositories() == ["acme/a", "acme/b"]


def test_an_image_without_the_build_platform_is_warned_about(tmp_path: Path, registry) -> None:
    TestImage.single([random_layer(500)], Platform("linux", "amd64")).push(tmp_path, f"{registry.host}/acme/x86:1")
    ctx = _context(tmp_path / "ctx", f"{registry.host}/acme/x86:1")
    outcome = _build(ctx, platforms=("linux/arm64",))
    [warning] = outcome.warnings
    assert warning.startswith(f"image {registry.host}/acme/x86:1 (charts/app/templates/d.yaml:10) has no "
                              "linux/arm64 image (it is linux/amd64)")
