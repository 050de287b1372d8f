"""How long-running work tells how far it got: three calls with a label and byte counts.

The library never prints. Work that moves bytes (a blob copy, a tree sent to a
host) reports through a :class:`Progress` it is given: ``started(label, total_bytes)``
when a piece of work begins, ``advanced(label, nbytes)`` as bytes move (negative
when a retry starts part of it over), ``finished(label, outcome)`` when it ends.
What to show is the receiver's business: the CLI draws tqdm bars or prints a line
per finished item (:mod:`imgbuild.cli.output`), tests record the calls
(:class:`RecordingProgress`), and :class:`NullProgress` ignores them.

One convention makes a whole out of its parts: a label ``task/item`` is one item of
``task``. A copy announces ``started("push", total)`` first, then reports each blob
as ``push/sha256:...`` and ends with ``finished("push")``; only items advance, so a
receiver that draws an overall bar adds up its items' bytes (:func:`split`), and an
item that ends without moving its bytes (``exists``, ``mounted``) counts as done.
The engine reports per-host transfers the same way (``distribute/10.0.0.2``).
Calls may come from several threads at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Progress", "NullProgress", "RecordingProgress", "Event", "item", "split", "SKIPPED"]

#: Outcomes of an item that ended without moving its bytes (they were already there).
SKIPPED = frozenset({"exists", "mounted"})


class Progress(Protocol):
    """Receives progress reports; every method may be called from several threads."""

    def started(self, label: str, total_bytes: int | None = None) -> None:
        """Work named ``label`` begins; ``total_bytes`` is its size when known."""

    def advanced(self, label: str, nbytes: int) -> None:
        """``nbytes`` more of ``label`` moved (negative: a retry starts part of it over)."""

    def finished(self, label: str, outcome: str = "done") -> None:
        """``label`` ended: ``done``, or what happened to an item (``pushed``, ``exists``, ``failed``...)."""


def item(task: str, name: str) -> str:
    """The label of item ``name`` of ``task`` (``push`` + ``sha256:ab..`` -> ``push/sha256:ab..``)."""
    return f"{task}/{name}"


def split(label: str) -> tuple[str | None, str]:
    """``(task, item)`` of an item label, ``(None, label)`` of a task label."""
    task, sep, name = label.partition("/")
    return (task, name) if sep else (None, label)


class NullProgress:
    """Ignores every report."""

    def started(self, label: str, total_bytes: int | None = None) -> None:
        """Ignore."""

    def advanced(self, label: str, nbytes: int) -> None:
        """Ignore."""

    def finished(self, label: str, outcome: str = "done") -> None:
        """Ignore."""


@dataclass(frozen=True)
class Event:
    """One recorded report: ``kind`` is started, advanced or finished; ``value`` the bytes or outcome."""

    kind: str
    label: str
    value: int | str | None


@dataclass
class RecordingProgress:
    """Keeps every report (thread-safe): for tests, and for callers that want outcomes afterwards."""

    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self, label: str, total_bytes: int | None = None) -> None:
        """Record the start."""
        self._add(Event("started", label, total_bytes))

    def advanced(self, label: str, nbytes: int) -> None:
        """Record the bytes."""
        self._add(Event("advanced", label, nbytes))

    def finished(self, label: str, outcome: str = "done") -> None:
        """Record the end."""
        self._add(Event("finished", label, outcome))

    def _add(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def outcomes(self) -> dict[str, str]:
        """Item name -> outcome of every finished item (``sha256:...`` -> ``pushed``)."""
        with self._lock:
            return {split(e.label)[1]: str(e.value) for e in self.events
                    if e.kind == "finished" and split(e.label)[0] is not None}

    def moved(self, label: str) -> int:
        """Bytes reported for ``label`` so far."""
        with self._lock:
            return sum(int(e.value or 0) for e in self.events if e.kind == "advanced" and e.label == label)
