"""Bad input is a user error (exit 2, one line saying what and where), never an "internal error"."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.cli.main import run


def _err(capsys: pytest.CaptureFixture, argv: list[str], code: int = 2) -> str:
    assert run(argv) == code
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    return err


def test_build_of_a_kubefile_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "Kubefile").write_bytes(b"FROM scratch\nLABEL a=\xff\xfe\n")
    for argv in (["build", str(tmp_path)], ["build", "--dry-run", str(tmp_path)]):
        assert "the Kubefile is not UTF-8 text (Kubefile:2)" in _err(capsys, argv)
    err = _err(capsys, ["build", "-f", str(tmp_path / "missing"), str(tmp_path)])
    assert f"cannot read the Kubefile: No such file or directory ({tmp_path / 'missing'})" in err


def test_load_says_why_a_path_is_not_an_archive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty.tar").write_bytes(b"")
    cases = {"/dev/null": "not an archive: a device, pipe or socket, not a regular file (/dev/null)",
             str(tmp_path / "empty.tar"): "the archive is empty",
             str(tmp_path / "missing.tar"): "no such archive file"}
    for path, message in cases.items():
        assert message in _err(capsys, ["load", "-i", path])
