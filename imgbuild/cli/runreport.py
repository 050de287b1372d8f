"""The terminal side of the engine's :class:`~imgbuild.engine.report.Reporter`: phase lines, host-prefixed
script output, one transfer bar, and the per-run log file.

One line per phase (``==> Init  127.0.2.2 127.0.2.3``), one line per step that
runs or fails (``  [127.0.2.2] ok    init of etcd:v3``); a lifecycle script's
output is streamed with its host as prefix (hidden with ``-q``, always kept in
the log); bytes sent to hosts drive one tqdm bar. The log under the cluster's
state directory gets every event with a timestamp, so a failed run can be read
afterwards.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Sequence

from imgbuild.cli import output

__all__ = ["CliReporter"]


class CliReporter:
    """Prints the engine's progress to stderr (honouring ``-q``) and appends it to ``log_path`` (made on the first
    line, so a command refused before any step leaves no log behind)."""

    def __init__(self, log_path: Path | None = None, *, stream_output: bool = True) -> None:
        self._lock = threading.Lock()
        self._log: IO[str] | None = None
        self._log_path = log_path
        self._stream = stream_output and not output.state.quiet
        self._bar = None
        self._sent = 0

    def _write(self, text: str, *, show: bool = True) -> None:
        with self._lock:
            if self._log is None and self._log_path is not None:
                self._log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                os.fchmod(fd, 0o600)
                self._log = os.fdopen(fd, "a", encoding="utf-8")
            if self._log:
                self._log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
                self._log.flush()
            if show and not output.state.quiet:
                if self._bar is not None:
                    self._bar.write(text, file=sys.stderr)
                else:
                    sys.stderr.write(text + "\n")
                    sys.stderr.flush()

    def phase(self, name: str, hosts: Sequence[str]) -> None:
        """``==> Phase  host host ...``"""
        self._close_bar()
        self._write(f"==> {name}  {' '.join(hosts)}")

    def step(self, phase: str, host: str, status: str, what: str) -> None:
        """One line per step outcome (skips only in the log)."""
        self._write(f"  [{host}] {status:<5} {what}", show=status in ("run", "fail"))

    def line(self, host: str, text: str) -> None:
        """A line of a command's output, prefixed by its host."""
        self._write(f"  [{host}] | {text}", show=self._stream)

    def sent(self, host: str, nbytes: int, total: int | None = None) -> None:
        """Advance the one transfer bar."""
        if output.state.quiet:
            return
        with self._lock:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=None, unit="B", unit_scale=True, desc="distribute", file=sys.stderr,
                                 leave=False)
            if total is not None:
                self._bar.total = (self._bar.total or 0) + total
            self._bar.update(nbytes)

    def note(self, text: str) -> None:
        """A warning line."""
        self._write(f"warning: {text}")

    def _close_bar(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def close(self) -> None:
        """Close the bar and the log."""
        self._close_bar()
        self._log_path = None
        if self._log:
            self._log.close()
            self._log = None
