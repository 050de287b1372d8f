"""load -i of a compressed archive with a junk member: read once, the junk skipped, expansion bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.home import home
from imgbuild.oci.store import open_store
from tests.support.hostile import junk_archive
from tests.support.oci_images import make_image


def _archive_with_junk(tmp_path: Path, junk: int) -> Path:
    """A gzipped oci-archive of one small image plus ``junk`` zero bytes in a blobs/ member no index names."""
    make_image(open_store(home()), "small:1", {"etc/small": b"small\n"})
    plain = tmp_path / "small.tar"
    assert run(["save", "-o", str(plain), "small:1"]) == 0 and run(["rmi", "small:1"]) == 0
    return junk_archive(plain, tmp_path / "junk.tar.gz", junk)


def _store_bytes() -> int:
    return sum(p.stat().st_size for p in (home().store / "blobs").rglob("*") if p.is_file())


def test_a_junk_member_is_skipped_not_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = _archive_with_junk(tmp_path, 64 << 20)
    before = _store_bytes()
    start = time.monotonic()
    assert run(["load", "-i", str(archive)]) == 0, capsys.readouterr().err
    assert time.monotonic() - start < 30
    assert _store_bytes() - before < 1 << 20  # the 64 MiB junk blob is not in the store
    assert "Loaded image: docker.io/library/small:1" in capsys.readouterr().out


def test_an_archive_expanding_past_its_allowance_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = _archive_with_junk(tmp_path, 300 << 20)
    assert archive.stat().st_size * 100 < 256 << 20  # so the 256 MiB floor applies
    assert run(["load", "-i", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "archive expands past 268,435,456 bytes" in err and "--max-expansion" in err
    assert not [p for p in (home().store / ".tmp").rglob("archive-*")]
    assert run(["load", "--max-expansion", "0", "-i", str(archive)]) == 0
