"""All terminal output of the CLI: plain lines, tables, JSON, one-line errors.

Commands never call ``print`` themselves; they hand data to these functions,
which honour the global ``--json``/``--quiet`` switches kept in :data:`state`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

__all__ = ["state", "echo", "info", "warn", "emit_json", "table", "error_line", "want_json"]


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
