"""The buildah backend with a Home whose path has upper case, a space and a ``:`` (any path a user may have)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.builder.request import BuildRequest
from tests.support.local import build
from tests.integration.test_build_buildah import _buildah_images, _tree, shell_image  # noqa: F401

pytestmark = pytest.mark.buildah


@pytest.fixture
def odd_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An IMGBUILD_HOME like ``/home/Ops`` with a space and a colon in it too."""
    home = tmp_path / "Ops Home:1" / "Store"
    monkeypatch.setenv("IMGBUILD_HOME", str(home))
    return home


def test_run_on_a_base_from_the_store_with_an_odd_home(odd_home: Path, tmp_path: Path, shell_image: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text(f"FROM {shell_image}\nRUN echo built > /built.txt\n")
    before = _buildah_images()
    out = build(BuildRequest(context=ctx, tags=("localhost:5000/demo/odd:v1",)))
    assert out.backend == "buildah"
    assert (odd_home / "store").is_dir()
    assert (_tree(out.digest, tmp_path / "t") / "built.txt").read_text() == "built\n"
    assert _buildah_images() <= before
