"""The build context: a directory, its ignore rules, and safe resolution of COPY sources inside it.

A :class:`BuildContext` is opened on a directory. Its ignore rules come from
the first of ``.kubeignore``, ``.sealignore``, ``.dockerignore`` found at the
top, read with Docker's semantics (moby/patternmatcher): ``#`` comments, blank
lines skipped, each pattern ``filepath.Clean``-ed with a leading ``/``
dropped, ``*``/``?``/``[...]`` never crossing ``/``, ``**`` matching any number
of directories, ``\\`` escaping, ``!`` re-including, the last matching pattern
winning, and a pattern that matches a parent directory matching everything
under it (``MatchesOrParentMatches``).

COPY sources are resolved by :meth:`BuildContext.resolve`: ``..`` that leaves
the context is an error, globs (Go ``filepath.Match`` rules, per path
component) match only files that are not ignored, and a source that is itself
a symlink is followed, but only while its target stays inside the context.
:meth:`BuildContext.walk` lists a source directory without following
symlinks: a link inside the tree, wherever it points, is copied *as a link*.
The default Kubefile is the first of ``Kubefile``, ``Sealfile``,
``Dockerfile``, ``Containerfile``.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from imgbuild.errors import ContextError

__all__ = [
    "KUBEFILE_NAMES",
    "IGNORE_FILES",
    "IgnorePattern",
    "IgnoreRules",
    "FileInfo",
    "Source",
    "BuildContext",
    "default_kubefile",
    "has_glob",
]

KUBEFILE_NAMES = ("Kubefile", "Sealfile", "Dockerfile", "Containerfile")
IGNORE_FILES = (".kubeignore", ".sealignore", ".dockerignore")
_GLOB_CHARS = frozenset("*?[")


def has_glob(text: str) -> bool:
    """True if ``text`` holds a wildcard (``*``, ``?`` or ``[``)."""
    return any(c in _GLOB_CHARS for c in text)


def _go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` for '/'-separated paths ('' -> '.')."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translate one ignore pattern to a regex exactly as patternmatcher's ``compile`` does."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in ".+()|{}$":
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(ch)
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise ContextError(f"invalid ignore pattern {pattern!r}: {exc}") from exc


@dataclass(frozen=True)
class IgnorePattern:
    """One cleaned ignore pattern; ``exclusion`` is True for a ``!`` (re-include) line."""

    text: str
    exclusion: bool

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The compiled matcher for the pattern text."""
        return _pattern_regex(self.text)

    def match(self, rel: str) -> bool:
        """True if the pattern matches the '/'-separated path ``rel``."""
        return self.regex.match(rel) is not None


class IgnoreRules:
    """An ordered list of ignore patterns evaluated with Docker's ``MatchesOrParentMatches``."""

    def __init__(self, patterns: list[IgnorePattern] | tuple[IgnorePattern, ...] = (), source: str | None = None):
        self.patterns = tuple(patterns)
        self.source = source
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    @classmethod
    def parse(cls, text: str, source: str | None = None) -> "IgnoreRules":
        """Read ignore-file text: comments, blanks, ``!``, Clean, leading '/' dropped, as Docker's ReadAll."""
        patterns: list[IgnorePattern] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.lstrip("\ufeff") if lineno == 1 else raw
            if line.startswith("#"):
                continue
            line = line.strip()
            if not line:
                continue
            invert = line.startswith("!")
            if invert:
                line = line[1:].strip()
                if not line:
                    where = f"{source}:{lineno}" if source else None
                    raise ContextError('illegal exclusion pattern: "!"', where)
            line = _go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
            patterns.append(IgnorePattern(line, invert))
        return cls(patterns, source)

    def ignored(self, rel: str) -> bool:
        """True if the context path ``rel`` ('/'-separated, relative) is excluded."""
        if not self.patterns or rel in ("", "."):
            return False
        parent = posixpath.dirname(rel)
        parents = parent.split("/") if parent else []
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(rel)
            if not hit and parents:
                hit = any(pat.match("/".join(parents[: k + 1])) for k in range(len(parents)))
            if hit:
                matched = not pat.exclusion
        return matched


@dataclass(frozen=True)
class FileInfo:
    """One entry found under a source: ``rel`` is relative to the source ('' for the source itself)."""

    rel: str
    path: str
    kind: str  # "file" | "dir" | "symlink"
    mode: int
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0
    dev: int = 0
    linkname: str | None = None

    @classmethod
    def of(cls, rel: str, path: str, st: os.stat_result) -> "FileInfo | None":
        """From an lstat result; None for sockets, fifos and devices (never in a context copy)."""
        if stat.S_ISDIR(st.st_mode):
            kind, link = "dir", None
        elif stat.S_ISREG(st.st_mode):
            kind, link = "file", None
        elif stat.S_ISLNK(st.st_mode):
            kind, link = "symlink", os.readlink(path)
        else:
            return None
        return cls(rel, path, kind, stat.S_IMODE(st.st_mode), st.st_size if kind == "file" else 0,
                   st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, link)

    def stamp(self) -> tuple:
        """What identifies this entry's content cheaply (for cache keys)."""
        return (self.rel, self.kind, self.mode, self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev,
                self.linkname)


@dataclass(frozen=True)
class Source:
    """A resolved COPY source: its path relative to the context and on disk (symlinks resolved)."""

    rel: str
    path: Path
    is_dir: bool
    pattern: str


def default_kubefile(context: Path) -> Path:
    """The first of Kubefile, Sealfile, Dockerfile, Containerfile in ``context``; ContextError if none."""
    for name in KUBEFILE_NAMES:
        candidate = context / name
        if candidate.is_file():
            return candidate
    raise ContextError(f"no Kubefile in the build context (looked for {', '.join(KUBEFILE_NAMES)})",
                       str(context))


class BuildContext:
    """A build-context directory with its ignore rules; resolves and lists COPY sources safely."""

    def __init__(self, root: Path, rules: IgnoreRules | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.rules = rules or IgnoreRules()

    @classmethod
    def open(cls, root: str | Path) -> "BuildContext":
        """Open ``root`` and read its ignore file (.kubeignore, .sealignore or .dockerignore)."""
        path = Path(root)
        if not path.is_dir():
            raise ContextError("build context is not a directory", str(root))
        for name in IGNORE_FILES:
            candidate = path / name
            if candidate.is_file():
                try:
                    text = candidate.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    raise ContextError(f"cannot read {name}: {exc.strerror}", str(candidate)) from exc
                return cls(path, IgnoreRules.parse(text, name))
        return cls(path)

    @property
    def ignore_file(self) -> str | None:
        """The name of the ignore file in use, if any."""
        return self.rules.source

    def ignored(self, rel: str) -> bool:
        """True if ``rel`` is excluded by the ignore rules."""
        return self.rules.ignored(rel)

    # -- resolution -------------------------------------------------------------------------------

    def clean(self, src: str, where: str | None = None) -> str:
        """``src`` as a clean context-relative path ('' for the root); ContextError if it leaves the context."""
        stripped = src.lstrip("/")
        rel = posixpath.normpath(stripped) if stripped else "."
        if rel == ".." or rel.startswith("../"):
            raise ContextError(f"COPY source {src!r} is outside the build context", where)
        return "" if rel == "." else rel

    def _inside(self, real: str) -> str | None:
        """The context-relative form of the real path ``real``, or None if it is outside the context."""
        root = str(self.root)
        if real == root:
            return ""
        if real.startswith(root.rstrip("/") + "/"):
            return real[len(root.rstrip("/")) + 1:]
        return None

    def _follow(self, rel: str, src: str, where: str | None) -> Source:
        """Resolve ``rel`` following symlinks (the source itself included), staying inside the context."""
        disk = os.path.join(self.root, rel) if rel else str(self.root)
        if not os.path.lexists(disk):
            raise ContextError(f"COPY source {src!r} not found in the build context", where)
        real = os.path.realpath(disk)
        inside = self._inside(real)
        if inside is None:
            raise ContextError(f"COPY source {src!r} resolves outside the build context (symlink to {real})",
                               where)
        if not os.path.exists(real):
            raise ContextError(f"COPY source {src!r} is a dangling symlink", where)
        if self.ignored(rel) or self.ignored(inside):
            raise ContextError(f"COPY source {src!r} is excluded by {self.ignore_file}", where)
        return Source(rel, Path(real), os.path.isdir(real), src)

    def resolve(self, src: str, where: str | None = None) -> list[Source]:
        """The sources one COPY argument names: one for a plain path, every match (sorted) for a glob."""
        rel = self.clean(src, where)
        if not has_glob(rel):
            return [self._follow(rel, src, where)]
        found = [self._follow(m, src, where) for m in self._glob(rel) if not self.ignored(m)]
        if not found:
            raise ContextError(f"COPY source {src!r} matches no file in the build context", where)
        return found

    def _glob(self, rel: str) -> list[str]:
        """Context paths matching ``rel`` component by component (Go filepath.Match per component)."""
        matches = [""]
        for part in rel.split("/"):
            nxt: list[str] = []
            rx = re.compile(_glob_component(part), re.DOTALL) if has_glob(part) else None
            for base in matches:
                disk = os.path.join(self.root, base) if base else str(self.root)
                if rx is None:
                    cand = f"{base}/{part}" if base else part
                    if os.path.lexists(os.path.join(self.root, cand)):
                        nxt.append(cand)
                    continue
                real = os.path.realpath(disk)
                if self._inside(real) is None or not os.path.isdir(real):
                    continue
                for name in sorted(os.listdir(real)):
                    if rx.match(name):
                        nxt.append(f"{base}/{name}" if base else name)
            matches = nxt
        return sorted(matches)

    # -- listing ----------------------------------------------------------------------------------

    def walk(self, source: Source) -> list[FileInfo]:
        """Every non-ignored entry under ``source`` (the source itself first, rel ''), symlinks not followed."""
        top = str(source.path)
        first = FileInfo.of("", top, os.stat(top))
        if first is None:
            raise ContextError(f"COPY source {source.pattern!r} is not a file, directory or symlink")
        out = [first]
        if source.is_dir:
            prefix = self._inside(top)
            self._walk_dir(top, "", prefix if prefix is not None else source.rel, out)
        return out

    def _walk_dir(self, disk: str, rel: str, ctx_rel: str, out: list[FileInfo]) -> None:
        """Append the entries of one directory (recursively), sorted by name."""
        try:
            with os.scandir(disk) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise ContextError(f"cannot read directory: {exc.strerror}", disk) from exc
        for entry in items:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            csub = f"{ctx_rel}/{entry.name}" if ctx_rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if self.ignored(csub):
                if is_dir and self.rules.has_exclusions:
                    self._walk_dir(entry.path, sub, csub, out)  # a later "!" may re-include something inside
                continue
            info = FileInfo.of(sub, entry.path, entry.stat(follow_symlinks=False))
            if info is None:
                continue
            out.append(info)
            if is_dir:
                self._walk_dir(entry.path, sub, csub, out)


def _glob_component(part: str) -> str:
    """A regex for one path component with Go ``filepath.Match`` syntax (``*``, ``?``, ``[...]``, ``\\``)."""
    out = ["^"]
    i, n = 0, len(part)
    while i < n:
        ch = part[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = part.find("]", i)
            if end < 0:
                raise ContextError(f"invalid glob {part!r}: unterminated [")
            out.append("[" + part[i:end] + "]")
            i = end + 1
        elif ch == "\\" and i < n:
            out.append(re.escape(part[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    out.append("$")
    return "".join(out)
