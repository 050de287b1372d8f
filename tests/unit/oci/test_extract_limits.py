"""Layers nesting directories deeper (or naming paths longer) than imgbuild unpacks are refused with a clear error."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from imgbuild.errors import UnsafePathError
from imgbuild.fsutil import remove_tree
from imgbuild.oci._extract import MAX_DEPTH, MAX_PATH
from imgbuild.oci.layer import extract_layer
from imgbuild.oci.model import MediaType


def deep_layer(depth: int, part: str = "a") -> bytes:
    """A gzip layer of ``depth`` nested directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for n in range(1, depth + 1):
            info = tarfile.TarInfo("/".join([part] * n))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
    return gzip.compress(buf.getvalue())


def test_1500_nested_directories_are_refused_and_what_was_made_can_be_removed(tmp_path: Path) -> None:
    blob = deep_layer(1500)
    with pytest.raises(UnsafePathError, match=f"{MAX_DEPTH + 1} directories deep.*at most {MAX_DEPTH} levels"):
        extract_layer(io.BytesIO(blob), MediaType.OCI_LAYER_GZIP, tmp_path / "dest")
    remove_tree(tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_the_deepest_allowed_tree_unpacks(tmp_path: Path) -> None:
    extract_layer(io.BytesIO(deep_layer(MAX_DEPTH)), MediaType.OCI_LAYER_GZIP, tmp_path / "dest")
    assert (tmp_path / "dest" / "/".join(["a"] * MAX_DEPTH)).is_dir()


def test_an_over_long_path_is_refused(tmp_path: Path) -> None:
    blob = deep_layer(MAX_PATH // 200 + 1, "p" * 199)
    with pytest.raises(UnsafePathError, match=f"at most {MAX_DEPTH} levels and {MAX_PATH} bytes"):
        extract_layer(io.BytesIO(blob), MediaType.OCI_LAYER_GZIP, tmp_path / "dest")
