"""An oci-archive whose index names no image (``buildah push IMAGE oci-archive:f.tar``) loads as <none>, and the
load output says how to name it, as podman users expect to find their image."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.oci.store import Store
from tests.support.oci_images import make_image


def _unnamed_archive(tmp_path: Path) -> Path:
    layout = tmp_path / "layout"
    make_image(Store(layout), None, {"etc/unnamed": b"no name\n"})  # index.json entry without a ref.name
    archive = tmp_path / "unnamed.tar"
    with tarfile.open(archive, "w") as tf:
        for path in sorted(layout.rglob("*")):
            if path.is_file() and ".tmp" not in path.parts and not path.name.startswith("."):
                tf.add(path, path.relative_to(layout).as_posix())
    return archive


def test_an_unnamed_archive_loads_as_none_with_a_hint_to_tag_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["load", "-i", str(_unnamed_archive(tmp_path))]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("Loaded image: <none> (sha256:")
    hint = re.search(r"name it with: imgbuild tag ([0-9a-f]{12}) NAME", out.err)
    assert hint, out.err
    assert run(["tag", hint.group(1), "found/it:v1"]) == 0
    assert run(["images"]) == 0
    assert "found/it" in capsys.readouterr().out
