"""No debris: what a killed writer leaves in the store's temp space goes at the next gc, whatever its age.

Real processes killed with SIGKILL in the middle of a load, as an impatient user would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.home import home
from imgbuild.oci.archive import save
from imgbuild.oci.store import open_store
from tests.support.images import make_random_image

ROOT = Path(__file__).resolve().parents[2]


def _temp_bytes(tmp: Path) -> int:
    return sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def _kill_when_writing(argv: list[str], tmp: Path) -> None:
    """Run imgbuild ``argv`` and SIGKILL it once it has written some temp data."""
    proc = subprocess.Popen([sys.executable, "-m", "imgbuild", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _temp_bytes(tmp) < (1 << 20) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the command finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_killed_load_leaves_nothing_after_gc_and_the_rerun_succeeds(tmp_path: Path, capsys) -> None:
    store = open_store(home())
    make_random_image(store, "big:1", [64 << 20], workdir=tmp_path)
    archive = tmp_path / "big.tar"
    save(store, ["big:1"], archive)
    assert run(["rmi", "big:1"]) == 0 and run(["store", "gc"]) == 0
    capsys.readouterr()
    _kill_when_writing(["load", "-i", str(archive)], store.root / ".tmp")
    left = _temp_bytes(store.root / ".tmp")
    assert left >= 1 << 20
    assert run(["store", "gc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes_freed"] >= left  # fresh debris, but its owner is dead
    assert _temp_bytes(store.root / ".tmp") == 0
    assert run(["load", "-i", str(archive)]) == 0 and run(["store", "verify"]) == 0


def test_build_scratch_lives_under_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY f /f\n")
    assert run(["build", "-q", "-t", "scratch-test:1", str(ctx)]) == 0
    assert os.listdir(system_tmp) == []
