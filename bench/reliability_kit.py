"""Shared pieces of the reliability run: an isolated Home, the CLI as a subprocess, and a tally of checks.

Every command runs ``python -m imgbuild`` in a child process with its own
``IMGBUILD_HOME`` and ``TMPDIR`` under the work directory, as a user would run it,
so a ``kill -9`` hits a real process and debris lands where it can be counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Kit", "Outcome", "Tally", "ROOT"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Outcome:
    """One finished command: exit code (None if killed or timed out), output, seconds."""

    code: int | None
    out: str
    err: str
    seconds: float

    @property
    def internal(self) -> bool:
        """True if the command reported a bug instead of a user error."""
        return "internal error" in self.err or "Traceback" in self.err


@dataclass
class Tally:
    """Checks by section: how many held, and a line for each that did not."""

    held: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)

    def check(self, section: str, name: str, ok: bool, detail: str = "") -> bool:
        """Count one check of ``section``; remember ``name`` (and why) if it did not hold."""
        self.total[section] = self.total.get(section, 0) + 1
        self.held[section] = self.held.get(section, 0) + int(ok)
        if not ok:
            self.broken.append(f"{section}: {name}" + (f": {detail.strip()[:300]}" if detail else ""))
        print(f"  {'ok  ' if ok else 'FAIL'} {section}: {name}" + ("" if ok else f" ({detail.strip()[:160]})"),
              flush=True)
        return ok


class Kit:
    """A work directory with its own Home and TMPDIR, and the imgbuild CLI run in child processes."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.home = work / "home"
        self.systmp = work / "systmp"
        self.systmp.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "IMGBUILD_HOME": str(self.home), "TMPDIR": str(self.systmp),
                    "PYTHONPATH": str(ROOT)}

    def argv(self, *args: str) -> list[str]:
        """The command line of ``imgbuild args...``."""
        return [sys.executable, "-m", "imgbuild", *args]

    def run(self, *args: str, timeout: float = 600, input: str | None = None) -> Outcome:
        """Run ``imgbuild args...`` (``input`` on its stdin) to the end (or ``timeout``, then it is killed)."""
        start = time.monotonic()
        try:
            res = subprocess.run(self.argv(*args), env=self.env, cwd=ROOT, capture_output=True, text=True,
                                 timeout=timeout, input=input)
            return Outcome(res.returncode, res.stdout, res.stderr, time.monotonic() - start)
        except subprocess.TimeoutExpired as exc:
            return Outcome(None, _text(exc.stdout), _text(exc.stderr), time.monotonic() - start)

    def kill_after(self, delay: float, *args: str) -> float:
        """Start ``imgbuild args...`` and SIGKILL it after ``delay`` seconds (if still running); its run time."""
        start = time.monotonic()
        proc = subprocess.Popen(self.argv(*args), env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        return time.monotonic() - start

    def temp_bytes(self) -> int:
        """Bytes of temp files left in the store's temp space (owner locks not counted)."""
        tmp = self.home / "store" / ".tmp"
        return sum(p.lstat().st_size for p in tmp.rglob("*") if p.is_file() and not p.name.endswith(".lock")) \
            if tmp.is_dir() else 0

    def systmp_entries(self) -> list[str]:
        """What commands left in their TMPDIR (build scratch belongs under the Home)."""
        return sorted(os.listdir(self.systmp))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")
