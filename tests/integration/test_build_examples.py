"""Every example Kubefile builds; the sealos images bundle their images into a registry/ a stock registry serves.

pause-demo is built first (it is the image rootfs-demo and app-demo bundle, taken from the
local store); the registry/ inside the built image is then served by docker-registry and the
bundled image pulled back from it, digest for digest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgbuild.builder.request import BuildRequest
from imgbuild.builder.context import BuildContext
from imgbuild.errors import ImgbuildError
from imgbuild.oci.layer import extract_layer
from imgbuild.oci.store import Store, open_store
from imgbuild.home import home
from tests.support.registry import start_registry
from tests.support.local import build

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "kubefiles"
PAUSE = "imgbuild.local/demo/pause:3.9"
ALL = sorted(p.parent.name for p in EXAMPLES.glob("*/Kubefile")
             if not (p.parent / "fetch.sh").exists() and p.parent.name != "etcd-app")
"""Contexts with a fetch.sh are assembled from this machine's binaries first, and etcd-app bundles the image one
of them makes: tests/integration/test_etcd_images.py builds those."""


def _extract(digest: str, dest: Path) -> Path:
    store = open_store(home())
    for desc in store.image(digest).layers:
        with store.open_blob(desc.digest) as fh:
            extract_layer(fh, desc.media_type, dest)
    return dest


@pytest.fixture
def pause() -> str:
    return build(BuildRequest(context=EXAMPLES / "pause-demo", tags=(PAUSE,))).digest


@pytest.mark.parametrize("name", ALL)
def test_every_example_builds_twice_to_the_same_digest(name: str, pause: str) -> None:
    first = build(BuildRequest(context=EXAMPLES / name, tags=(f"localhost:5000/demo/{name}:v1",)))
    second = build(BuildRequest(context=EXAMPLES / name))
    assert first.digest == second.digest
    assert second.results[0].cached_layers >= len(first.results[0].manifest.layers)  # earlier stages too


@pytest.mark.registry
def test_rootfs_demo_bundles_its_images_and_a_stock_registry_serves_them(tmp_path: Path, pause: str) -> None:
    out = build(BuildRequest(context=EXAMPLES / "rootfs-demo", tags=("localhost:5000/demo/rootfs:v1",)))
    result = out.results[0]
    assert [d.annotations["io.imgbuild.layer.role"] for d in result.manifest.layers] == [
        "rootfs", "scripts", "registry"]
    tree = _extract(out.digest, tmp_path / "rootfs")
    ctx = BuildContext.open(EXAMPLES / "rootfs-demo")
    [top] = ctx.resolve(".")
    for f in ctx.walk(top):
        if f.kind == "file":
            assert (tree / f.rel).read_bytes() == Path(f.path).read_bytes(), f.rel
    assert not (tree / "README.md").exists() or (EXAMPLES / "rootfs-demo/README.md").exists()
    labels, env = result.config.labels, result.config.env_map
    assert labels["sealos.io.type"] == "rootfs" and labels["check"] == "check.sh $registryData"
    assert {"registryDomain", "registryPort", "registryData", "registryConfig", "registryUsername",
            "registryPassword"} <= env.keys()
    reg = start_registry(tmp_path / "serve", storage=tree / "registry")
    try:
        from imgbuild.oci.transfer import pull

        other = Store(tmp_path / "other-store")
        desc = pull(f"{reg.host}/demo/pause:3.9", store=other)
        assert str(desc.digest) == pause
    finally:
        reg.stop()


def test_app_demo_is_an_application_with_its_images(tmp_path: Path, pause: str) -> None:
    out = build(BuildRequest(context=EXAMPLES / "app-demo"))
    result = out.results[0]
    assert result.image_type == "application"
    assert result.config.cmd[0].startswith("kubectl create namespace $(NAMESPACE)")
    tree = _extract(out.digest, tmp_path / "app")
    assert (tree / "charts/hello/Chart.yaml").is_file() and (tree / "manifests/deployment.yaml").is_file()
    assert (tree / "registry/docker/registry/v2/repositories/demo/pause/_manifests/tags/3.9/current/link").is_file()
    assert not (tree / "registry/docker/registry/v2/.tmp").exists()


def test_a_missing_bundled_image_is_an_error_naming_where_it_was_found(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    shutil.copytree(EXAMPLES / "rootfs-demo", ctx)
    (ctx / "images/shim/imageList").write_text("imgbuild.invalid/nowhere/img:1\n")
    with pytest.raises(ImgbuildError) as info:
        build(BuildRequest(context=ctx))
    assert "imgbuild.invalid/nowhere/img:1" in str(info.value)
