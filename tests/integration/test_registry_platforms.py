"""Image indexes: push writes every child and the index; pull picks a platform or keeps them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.cli.main import run
from tests.support.local import EXEC
from imgbuild.errors import ImageNotFound
from imgbuild.oci.model import Digest, Index, Platform
from imgbuild.oci.store import Store, open_store
from imgbuild.oci.transfer import pull, push
from imgbuild.home import home
from tests.support.images import make_index, make_random_image

pytestmark = pytest.mark.registry

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64", "v8")


@pytest.fixture
def pushed_index(registry, tmp_path: Path):
    store = Store(tmp_path / "src")
    amd = make_random_image(store, None, [3000, 1 << 20], platform=AMD, workdir=tmp_path)
    arm = make_random_image(store, None, [4000], platform=ARM, workdir=tmp_path)
    ref = f"{registry.host}/multi/app:v1"
    idx = make_index(store, ref, [amd, arm], [AMD, ARM])
    assert push(ref, store=store) == idx.digest
    return ref, idx, amd, arm


def test_pull_picks_the_child_for_the_platform(pushed_index, tmp_path: Path):
    ref, _, amd, arm = pushed_index
    assert pull(ref, store=Store(tmp_path / "a"), platform=ARM).digest == arm.digest
    assert pull(ref, store=Store(tmp_path / "b"), platform=Platform.parse("linux/amd64")).digest == amd.digest
    with pytest.raises(ImageNotFound, match="linux/amd64, linux/arm64"):
        pull(ref, store=Store(tmp_path / "c"), platform=Platform.parse("linux/s390x"))


def test_cli_platform_and_all_platforms_round_trip(pushed_index, registry, capsys):
    ref, idx, amd, arm = pushed_index
    assert run(["pull", ref, "--platform", "linux/arm64"]) == 0
    assert capsys.readouterr().out.strip() == arm.digest
    assert run(["pull", ref, "--all-platforms"]) == 0
    assert capsys.readouterr().out.strip() == idx.digest
    store = open_store(home())
    assert isinstance(store.get_document(idx.digest), Index)
    assert store.has_blob(amd.digest) and store.has_blob(arm.digest)
    copy = f"{registry.host}/multi/copy:v2"
    assert run(["push", ref, copy]) == 0
    assert capsys.readouterr().out.strip() == idx.digest


@pytest.mark.skopeo
def test_skopeo_sees_the_index(pushed_index):
    ref, idx, _, _ = pushed_index
    raw = EXEC.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    assert Digest.of(raw.encode()) == idx.digest
    out = EXEC.run(["skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64",
                     f"docker://{ref}"]).stdout
    assert '"Architecture": "arm64"' in out


def test_pushing_a_partial_index_is_refused(pushed_index, tmp_path: Path):
    from imgbuild.errors import StoreError

    ref, idx, _, arm = pushed_index
    store = Store(tmp_path / "partial")
    pull(ref, store=store, platform=ARM)
    raw = Store(tmp_path / "src").read_blob(idx.digest)
    with store.blob_writer(idx.digest, len(raw)) as w:
        w.write(raw)
    store.tag("localhost:5999/p/q:v1", idx)
    with pytest.raises(StoreError, match="all-platforms"):
        push("localhost:5999/p/q:v1", store=store)
