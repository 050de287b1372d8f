"""How the engine tells what it does: a small protocol the CLI implements (lines, bars) and tests record.

The library never prints. Each phase announces itself with the hosts it
touches, each step reports per host (``run``, ``ok``, ``skip``, ``fail``), a
lifecycle script's output arrives line by line with its host, and transfers
report bytes. :class:`NullReporter` ignores everything; :class:`RecordingReporter`
keeps it all, for tests and for the per-run log.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol, Sequence

__all__ = ["Reporter", "NullReporter", "RecordingReporter", "Event"]


class Reporter(Protocol):
    """Receives the engine's progress: phases, per-host step outcomes, script output, bytes sent."""

    def phase(self, name: str, hosts: Sequence[str]) -> None:
        """A phase starts on ``hosts``."""

    def step(self, phase: str, host: str, status: str, what: str) -> None:
        """A step on ``host`` is ``run`` (starting), ``ok``, ``skip`` (already done) or ``fail``."""

    def line(self, host: str, text: str) -> None:
        """One line of a command's output on ``host``."""

    def sent(self, host: str, nbytes: int, total: int | None = None) -> None:
        """``nbytes`` more were sent to ``host`` (``total`` once known, per host)."""

    def note(self, text: str) -> None:
        """A remark worth a line (a warning, a skipped check)."""


class NullReporter:
    """Ignores every report."""

    def phase(self, name: str, hosts: Sequence[str]) -> None:
        """Ignore."""

    def step(self, phase: str, host: str, status: str, what: str) -> None:
        """Ignore."""

    def line(self, host: str, text: str) -> None:
        """Ignore."""

    def sent(self, host: str, nbytes: int, total: int | None = None) -> None:
        """Ignore."""

    def note(self, text: str) -> None:
        """Ignore."""


@dataclass(frozen=True)
class Event:
    """One recorded report."""

    kind: str
    host: str
    status: str
    text: str


@dataclass
class RecordingReporter:
    """Keeps every report as an :class:`Event` (thread-safe), optionally forwarding to another reporter."""

    forward: Reporter | None = None
    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _add(self, kind: str, host: str, status: str, text: str) -> None:
        with self._lock:
            self.events.append(Event(kind, host, status, text))

    def phase(self, name: str, hosts: Sequence[str]) -> None:
        """Record and forward."""
        self._add("phase", ",".join(hosts), "", name)
        if self.forward:
            self.forward.phase(name, hosts)

    def step(self, phase: str, host: str, status: str, what: str) -> None:
        """Record and forward."""
        self._add("step", host, status, f"{phase}: {what}")
        if self.forward:
            self.forward.step(phase, host, status, what)

    def line(self, host: str, text: str) -> None:
        """Record and forward."""
        self._add("line", host, "", text)
        if self.forward:
            self.forward.line(host, text)

    def sent(self, host: str, nbytes: int, total: int | None = None) -> None:
        """Forward only (byte counts are not worth keeping)."""
        if self.forward:
            self.forward.sent(host, nbytes, total)

    def note(self, text: str) -> None:
        """Record and forward."""
        self._add("note", "", "", text)
        if self.forward:
            self.forward.note(text)

    def steps(self, status: str | None = None) -> list[Event]:
        """The recorded step events, optionally only those with ``status``."""
        return [e for e in self.events if e.kind == "step" and (status is None or e.status == status)]
