"""Untrusted layers unpack without device nodes and without setuid/setgid bits, unless the caller asks."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from imgbuild.oci.layer import extract_layer
from imgbuild.oci.model import MediaType
from tests.support.hostile import member, raw_tar

HOSTILE = [
    member("dev", "dir", mode=0o755),
    member("dev/vda", "blk", mode=0o666, dev=(254, 0)),
    member("dev/mem", "chr", mode=0o666, dev=(1, 1)),
    member("bin", "dir", mode=0o755),
    member("bin/su", data=b"#!/bin/sh\nid\n", mode=0o4755),
    member("bin/wall", data=b"wall", mode=0o2755),
    member("shared", "dir", mode=0o2775),
]


def _unpack(dest: Path, **kw) -> Path:
    extract_layer(io.BytesIO(raw_tar(HOSTILE)), MediaType.OCI_LAYER, dest, **kw)
    return dest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_by_default_no_devices_and_no_setuid_or_setgid_files(tmp_path: Path) -> None:
    tree = _unpack(tmp_path / "t")
    assert sorted(os.listdir(tree / "dev")) == []
    assert _mode(tree / "bin/su") == 0o755 and _mode(tree / "bin/wall") == 0o755
    assert _mode(tree / "shared") == 0o2775  # a setgid directory only chooses the group of new files


@pytest.mark.root
def test_devices_and_setid_when_asked(tmp_path: Path) -> None:
    tree = _unpack(tmp_path / "t", devices=True, setid=True)
    vda = (tree / "dev/vda").lstat()
    assert stat.S_ISBLK(vda.st_mode) and os.major(vda.st_rdev) == 254
    assert stat.S_ISCHR((tree / "dev/mem").lstat().st_mode)
    assert _mode(tree / "bin/su") == 0o4755 and _mode(tree / "bin/wall") == 0o2755


@pytest.mark.root
def test_overlay_whiteouts_are_still_made_without_devices(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    layer = raw_tar([member("etc", "dir", mode=0o755), member("etc/.wh.gone")])
    extract_layer(io.BytesIO(layer), MediaType.OCI_LAYER, tmp_path / "t", keep_whiteout_files=True)
    assert stat.S_ISCHR((tmp_path / "t/etc/gone").lstat().st_mode)
