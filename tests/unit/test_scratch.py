"""Temp space that carries its owner: a sweep removes what dead processes left, at once, and nothing of live ones."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from imgbuild.scratch import owned_dir, sweep

_CHILD = """
import sys, time
from pathlib import Path
from imgbuild.scratch import owned_dir
d = owned_dir(Path(sys.argv[1]))
(d / "partial-blob").write_bytes(b"x" * 1000)
print(d, flush=True)
time.sleep(60)
"""


def _child(base: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(base)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    return proc, Path(proc.stdout.readline().strip())


def test_own_dir_is_private_stable_and_never_swept(tmp_path: Path) -> None:
    mine = owned_dir(tmp_path)
    assert owned_dir(tmp_path) == mine and stat.S_IMODE(mine.stat().st_mode) == 0o700
    (mine / "f").write_bytes(b"abc")
    assert sweep(tmp_path) == 0 and (mine / "f").exists()


def test_a_killed_owners_files_go_at_once_a_live_ones_stay(tmp_path: Path) -> None:
    live, live_dir = _child(tmp_path)
    dead, dead_dir = _child(tmp_path)
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert sweep(tmp_path) == 1000  # fresh, but its owner is gone
        assert not dead_dir.exists() and not dead_dir.with_name(dead_dir.name + ".lock").exists()
        assert (live_dir / "partial-blob").exists()
    finally:
        live.kill()
        live.wait()
    assert sweep(tmp_path) == 1000 and list(tmp_path.iterdir()) == []


def test_debris_without_an_owner_goes_once_old(tmp_path: Path) -> None:
    old, fresh, starting = tmp_path / "blob-old", tmp_path / "blob-fresh", tmp_path / "123-ab.locking"
    for p in (old, fresh, starting):
        p.write_bytes(b"12345")
    past = time.time() - 7200
    os.utime(old, (past, past))
    os.utime(starting, (past, past))
    assert sweep(tmp_path) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob-fresh"]
