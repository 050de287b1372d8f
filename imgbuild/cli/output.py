"""All terminal output of the CLI: plain lines, tables, JSON, one-line errors, progress bars.

Commands never call ``print`` themselves; they hand data to these functions,
which honour the global ``--json``/``--quiet`` switches kept in :data:`state`.
The library reports progress through :class:`imgbuild.progress.Progress`;
:func:`transfer_progress` makes the CLI's receiver: tqdm bars on a terminal (one
per item in flight and one for the whole task), else one line per finished item
(``pushed sha256:abcd1234ef56 12.3MB``). tqdm is imported only to draw bars.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from imgbuild.progress import SKIPPED, Progress, split

__all__ = [
    "state", "echo", "info", "warn", "emit_json", "table", "error_line", "want_json", "human_size",
    "short_size", "transfer_progress", "LineProgress", "BarProgress",
]


@dataclass
class _State:
    json: bool = False
    debug: bool = False
    quiet: bool = False


state = _State()


def want_json(flag: bool = False) -> bool:
    """True if this command should print JSON (its own ``--json`` or the global one)."""
    return flag or state.json


def echo(text: str = "") -> None:
    """Print a line of the command's result to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def info(text: str) -> None:
    """Print a progress/status line to stderr, unless ``--quiet``."""
    if not state.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def warn(text: str) -> None:
    """Print a warning line to stderr."""
    sys.stderr.write(f"warning: {text}\n")
    sys.stderr.flush()


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a left-aligned table with a header, columns sized to fit."""
    rows = [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]
    fmt = "   ".join("{:<%d}" % w for w in widths)
    echo(fmt.format(*headers).rstrip())
    for r in rows:
        echo(fmt.format(*r).rstrip())


def error_line(message: str, detail: str = "") -> None:
    """Print ``error: <message>`` (plus an optional indented detail block) to stderr."""
    sys.stderr.write(f"error: {message}\n")
    if detail:
        sys.stderr.write(detail.rstrip("\n") + "\n")
    sys.stderr.flush()


def human_size(n: int | float) -> str:
    """Bytes as a short human string (1.5 MB), decimal units like docker."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n} B"


def short_size(n: int | float) -> str:
    """Bytes as tqdm writes them (``240B``, ``1.50kB``, ``132MB``), decimal units."""
    for unit in ("", "k", "M", "G", "T", "P", "E", "Z"):
        if abs(n) < 999.5:
            if abs(n) < 99.95:
                return f"{n:1.2f}{unit}B" if abs(n) < 9.995 else f"{n:2.1f}{unit}B"
            return f"{n:3.0f}{unit}B"
        n /= 1000
    return f"{n:3.1f}YB"


def _short(name: str) -> str:
    """A digest cut to its first 12 hex digits (``sha256:abcd1234ef56``); other names whole."""
    return name[:19] if name.startswith("sha256:") else name


class LineProgress:
    """One line per finished item on stderr: ``<outcome> <item> <size>`` (tasks print nothing)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}

    def started(self, label: str, total_bytes: int | None = None) -> None:
        """Remember the item's size for its line."""
        with self._lock:
            self._totals[label] = total_bytes or 0

    def advanced(self, label: str, nbytes: int) -> None:
        """Lines are printed at the end only."""

    def finished(self, label: str, outcome: str = "done") -> None:
        """Print the item's line."""
        task, name = split(label)
        with self._lock:
            total = self._totals.pop(label, 0)
            if task is not None:
                self.stream.write(f"{outcome} {_short(name)} {short_size(total)}\n")
                self.stream.flush()


class BarProgress:
    """tqdm bars on stderr: one per task (its total) and one per item in flight."""

    def __init__(self, stream=None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._bars: dict[str, Any] = {}
        self._left: dict[str, int] = {}

    def _bar(self, total: int | None, desc: str, **kw: Any) -> Any:
        return self._tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1000, file=self.stream,
                          dynamic_ncols=True, **kw)

    def started(self, label: str, total_bytes: int | None = None) -> None:
        """Open the task's bar (kept when done) or an item's bar (removed when done)."""
        task, name = split(label)
        with self._lock:
            if task is None:
                self._bars[label] = self._bar(total_bytes, f"{label} total", position=0, leave=True)
            else:
                self._bars[label] = self._bar(total_bytes, f"{task} {_short(name)}", leave=False)
                self._left[label] = total_bytes or 0

    def advanced(self, label: str, nbytes: int) -> None:
        """Advance the item's bar and its task's."""
        task, _ = split(label)
        with self._lock:
            for key in (label, task):
                if key in self._bars:
                    self._bars[key].update(nbytes)
            self._left[label] = self._left.get(label, 0) - nbytes

    def finished(self, label: str, outcome: str = "done") -> None:
        """Close the bar; an item skipped (already there) counts fully towards its task."""
        task, _ = split(label)
        with self._lock:
            bar = self._bars.pop(label, None)
            if bar is not None:
                bar.close()
            left = self._left.pop(label, 0)
            if task in self._bars and outcome in SKIPPED and left > 0:
                self._bars[task].update(left)


def transfer_progress() -> Progress:
    """The CLI's receiver for transfers: nothing with ``--quiet``, bars on a terminal, one line per item otherwise."""
    if state.quiet:
        from imgbuild.progress import NullProgress

        return NullProgress()
    if not sys.stderr.isatty():
        return LineProgress(sys.stderr)
    return BarProgress(sys.stderr)
