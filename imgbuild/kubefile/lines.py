"""From text to logical lines: parser directives, comments, continuations and heredoc bodies.

The :class:`LineReader` walks the physical lines once. Parser directives
(``# syntax=``, ``# escape=``, ``# check=``) are read only at the very top; the
first line that is not a directive ends them. A logical line is a non-comment
line plus its continuation lines (a line ending in the escape character,
optionally followed by blanks); comment and blank lines inside a continuation
are dropped. Each :class:`LogicalLine` remembers where every piece came from, so
an offset in its text maps back to a physical line and column. Heredoc bodies
are read on request, right after the line that opened them.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from imgbuild.errors import KubefileError
from imgbuild.kubefile.model import Heredoc
from imgbuild.kubefile.substitution import SubstitutionError, expand_word, no_vars, split_words

__all__ = ["LogicalLine", "LineReader", "HeredocSpec", "DIRECTIVES", "find_heredocs"]

DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE_RE = re.compile(r"#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_HEREDOC_RE = re.compile(r"(\d*)<<(-?)([^<]*)")
_BOM = "\ufeff"


@dataclass(frozen=True)
class HeredocSpec:
    """A heredoc announced on an instruction line: ``<<[-]NAME``."""

    name: str
    expand: bool
    chomp: bool
    fd: int | None


@dataclass
class LogicalLine:
    """An instruction's text after joining continuations, with its physical origin."""

    text: str
    line: int
    end_line: int
    starts: list[int] = field(default_factory=list)  # logical offset where each piece starts
    origins: list[tuple[int, int]] = field(default_factory=list)  # (physical line, column0) of each piece

    def locate(self, offset: int) -> tuple[int, int]:
        """The (line, 1-based column) of ``offset`` in :attr:`text`."""
        if not self.starts:
            return self.line, 1
        k = max(bisect.bisect_right(self.starts, max(offset, 0)) - 1, 0)
        line, col0 = self.origins[k]
        return line, col0 + (offset - self.starts[k]) + 1


    def slice(self, offset: int) -> "LogicalLine":
        """The part of this line from ``offset`` on, still mapped to its physical positions."""
        k = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        line, col0 = self.origins[k]
        starts = [0] + [s - offset for s in self.starts[k + 1 :]]
        origins = [(line, col0 + offset - self.starts[k])] + self.origins[k + 1 :]
        return LogicalLine(self.text[offset:], self.line, self.end_line, starts, origins)


class LineReader:
    """Reads logical lines from Kubefile text in one pass; knows the directives and escape char."""

    def __init__(self, text: str, filename: str) -> None:
        if text.startswith(_BOM):
            text = text[1:]
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        self.lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
        self.filename = filename
        self.pos = 0  # index of the next physical line
        self.directives: dict[str, str] = {}
        self.escape = "\\"
        self._read_directives()

    def source(self, line: int) -> str | None:
        """The physical line numbered ``line`` (1-based), or None."""
        return self.lines[line - 1] if 0 < line <= len(self.lines) else None

    def error(self, message: str, line: int, column: int = 1) -> KubefileError:
        """A KubefileError pointing at ``line``:``column`` of this file."""
        return KubefileError(message, self.filename, line, column, self.source(line))

    def _read_directives(self) -> None:
        while self.pos < len(self.lines):
            m = _DIRECTIVE_RE.fullmatch(self.lines[self.pos].strip())
            if not m or m.group(1).lower() not in DIRECTIVES:
                break
            key, value = m.group(1).lower(), m.group(2)
            if key in self.directives:
                raise self.error(f"only one {key} parser directive can be used", self.pos + 1)
            if key == "escape" and value not in ("\\", "`"):
                col = self.lines[self.pos].find(value) + 1
                raise self.error(f"invalid escape token {value!r}: it must be ` or \\", self.pos + 1, max(col, 1))
            self.directives[key] = value
            self.pos += 1
        if "escape" in self.directives:
            self.escape = self.directives["escape"]

    def _continues(self, text: str) -> tuple[str, bool]:
        """Strip a trailing escape (line continuation); say whether the line continues."""
        stripped = text.rstrip(" \t")
        if stripped.endswith(self.escape):
            return stripped[:-1], True
        return text, False

    def next_line(self) -> LogicalLine | None:
        """The next logical line, or None at the end of the file."""
        lines = self.lines
        while self.pos < len(lines):
            raw = lines[self.pos]
            self.pos += 1
            body = raw.lstrip(" \t\f\v")
            if not body or body.startswith("#"):
                continue
            col0 = len(raw) - len(body)
            text, more = self._continues(body)
            ll = LogicalLine(text="", line=self.pos, end_line=self.pos, starts=[0], origins=[(self.pos, col0)])
            parts = [text]
            size = len(text)
            while more and self.pos < len(lines):
                raw = lines[self.pos]
                self.pos += 1
                ll.end_line = self.pos
                probe = raw.lstrip(" \t\f\v")
                if not probe or probe.startswith("#"):
                    continue
                piece, more = self._continues(raw)
                ll.starts.append(size)
                ll.origins.append((self.pos, 0))
                parts.append(piece)
                size += len(piece)
            ll.text = "".join(parts)
            if not ll.text.strip():
                continue
            return ll
        return None

    def read_heredoc(self, spec: HeredocSpec, opened_at: int) -> Heredoc:
        """Read the body of ``spec`` from the following physical lines up to its terminator."""
        lines = self.lines
        body: list[str] = []
        while self.pos < len(lines):
            raw = lines[self.pos]
            self.pos += 1
            probe = raw.lstrip("\t") if spec.chomp else raw
            if probe == spec.name:
                content = "".join(body)
                return Heredoc(name=spec.name, content=content, expand=spec.expand, chomp=spec.chomp, fd=spec.fd)
            body.append((raw.lstrip("\t") if spec.chomp else raw) + "\n")
        raise self.error(f"unterminated heredoc: no line {spec.name!r} closes <<{spec.name}", opened_at)


def find_heredocs(text: str) -> list[HeredocSpec]:
    """The heredocs a line opens, in order: each word ``[fd]<<[-]NAME`` (NAME quoted = no expansion)."""
    specs: list[HeredocSpec] = []
    for word, _off in split_words(text, "\\"):
        m = _HEREDOC_RE.fullmatch(word)
        if not m or not m.group(3):
            continue
        rest = m.group(3)
        if len(split_words(rest, "\\")) != 1:
            continue
        try:
            name = expand_word(rest, no_vars, "\\")
        except SubstitutionError:
            continue
        quoted = (rest.count("'") + rest.count('"')) != (name.count("'") + name.count('"'))
        fd = int(m.group(1)) if m.group(1) else None
        specs.append(HeredocSpec(name=name, expand=not quoted, chomp=m.group(2) == "-", fd=fd))
    return specs
