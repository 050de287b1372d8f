"""A killed save leaves its temp file beside the output; the next save of that file removes it (never a live one's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from imgbuild.cli.main import run
from imgbuild.home import home
from imgbuild.oci.store import open_store
from tests.support.images import make_random_image

ROOT = Path(__file__).resolve().parents[2]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_rerun_removes_what_a_killed_save_left_and_spares_live_writers(tmp_path: Path) -> None:
    make_random_image(open_store(home()), "app:1", [48 << 20], workdir=tmp_path)
    out = tmp_path / "out.tar"
    proc = subprocess.Popen([sys.executable, "-m", "imgbuild", "save", "-o", str(out), "app:1"], cwd=ROOT,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 1 << 20 for p in tmp_path.glob(".out.tar.tmp-*")) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = list(tmp_path.glob(".out.tar.tmp-*"))
    assert killed and not out.exists()
    stale = tmp_path / f".out.tar.tmp-{_dead_pid()}-old"
    live = tmp_path / f".out.tar.tmp-{os.getpid()}-writing"
    stale.write_bytes(b"x")
    live.write_bytes(b"y")
    assert run(["save", "-o", str(out), "app:1"]) == 0
    assert sorted(p.name for p in tmp_path.glob(".out.tar.tmp-*")) == [live.name]
    assert out.stat().st_size > 48 << 20
