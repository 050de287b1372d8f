"""Semantic versions and constraints as sprig's ``semver``/``semverCompare`` see them (Masterminds semver v3).

Versions are parsed leniently (``v1.28``, ``1.2.3-rc.1+meta``); constraints
take ``=, !=, >, <, >=, <=, ~, ~>, ^``, wildcards (``1.2.x``, ``*``), hyphen
ranges (``1.2 - 1.4``), ``,``/space for AND and ``||`` for OR. As in v3, a
version with a pre-release only satisfies a constraint that has one, which is
why charts write ``>=1.19-0`` to accept ``v1.28.0-gke.1``.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Callable

from imgbuild.gotemplate.errors import FuncError

__all__ = ["Version", "parse_version", "check"]

_VERSION = re.compile(r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
                      r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?")
_PART = r"[0-9xX*]+"
_CVER = rf"v?({_PART})(\.{_PART})?(\.{_PART})?((?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)"
_ONE = re.compile(rf"\s*(>=|=>|<=|=<|!=|~>|[=<>~^])?\s*{_CVER}\s*,?")
_HYPHEN = re.compile(r"(v?[0-9xX*][^\s,]*)\s+-\s+(v?[0-9xX*][^\s,]*)")


@total_ordering
class Version:
    """A semantic version; Major/Minor/Patch/Prerelease/Metadata/Original are methods, as in Go."""

    def __init__(self, major: int, minor: int, patch: int, pre: str, meta: str, original: str) -> None:
        self._v = (major, minor, patch)
        self._pre, self._meta, self._orig = pre, meta, original

    def Major(self) -> int:  # noqa: N802 - the Go method names templates call
        """The major number."""
        return self._v[0]

    def Minor(self) -> int:  # noqa: N802
        """The minor number."""
        return self._v[1]

    def Patch(self) -> int:  # noqa: N802
        """The patch number."""
        return self._v[2]

    def Prerelease(self) -> str:  # noqa: N802
        """The pre-release part, '' if none."""
        return self._pre

    def Metadata(self) -> str:  # noqa: N802
        """The build metadata, '' if none."""
        return self._meta

    def Original(self) -> str:  # noqa: N802
        """The text the version was parsed from."""
        return self._orig

    def String(self) -> str:  # noqa: N802
        """The normalised version, without a leading v."""
        return ".".join(map(str, self._v)) + (f"-{self._pre}" if self._pre else "") + (
            f"+{self._meta}" if self._meta else "")

    def Compare(self, other: "Version") -> int:  # noqa: N802
        """-1, 0 or 1 as this version is lower, equal or higher than ``other`` (metadata ignored)."""
        if self._v != other._v:
            return -1 if self._v < other._v else 1
        if self._pre == other._pre:
            return 0
        if not self._pre or not other._pre:
            return 1 if not self._pre else -1
        return _compare_pre(self._pre, other._pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.Compare(other) == 0

    def __lt__(self, other: "Version") -> bool:
        return self.Compare(other) < 0

    def __hash__(self) -> int:
        return hash((self._v, self._pre))

    def __str__(self) -> str:
        return self.String()


def _compare_part(s: str, o: str) -> int:
    if s == o:
        return 0
    if not s or not o:
        return -1 if not s else 1
    if s.isdigit() and o.isdigit():
        return -1 if int(s) < int(o) else 1
    if s.isdigit() or o.isdigit():
        return -1 if s.isdigit() else 1
    return 1 if s > o else -1


def _compare_pre(a: str, b: str) -> int:
    pa, pb = a.split("."), b.split(".")
    for i in range(max(len(pa), len(pb))):
        d = _compare_part(pa[i] if i < len(pa) else "", pb[i] if i < len(pb) else "")
        if d:
            return d
    return 0


def parse_version(text: str) -> Version:
    """Parse a version leniently; FuncError ``Invalid Semantic Version`` otherwise."""
    m = _VERSION.fullmatch(text)
    if m is None:
        raise FuncError("Invalid Semantic Version")
    pre = m.group(4) or ""
    if any(p.isdigit() and len(p) > 1 and p[0] == "0" for p in pre.split(".") if pre):
        raise FuncError("Version segment starts with 0")
    nums = [int((g or "0").lstrip(".")) for g in m.group(1, 2, 3)]
    return Version(nums[0], nums[1], nums[2], pre, m.group(5) or "", text)


class _Constraint:
    def __init__(self, op: str, major: str, minor: str | None, patch: str | None, tail: str) -> None:
        self.op = {"=>": ">=", "=<": "<=", "~>": "~", "": "="}.get(op, op)
        parts = [major, (minor or "").lstrip("."), (patch or "").lstrip(".")]
        wild = [p in ("", "x", "X", "*") for p in parts]
        self.dirty = any(wild)
        self.minor_dirty = not wild[0] and wild[1]
        self.patch_dirty = not wild[0] and not wild[1] and wild[2]
        first_wild = wild.index(True) if self.dirty else 3
        nums = [p if i < first_wild else "0" for i, p in enumerate(parts)]
        self.con = parse_version(".".join(nums) + tail)

    def check(self, v: Version) -> bool:
        if self.op != "!=" and v.Prerelease() and not self.con.Prerelease():
            return False
        return _OPS[self.op](self, v)


def _gt(c: _Constraint, v: Version) -> bool:
    if not c.dirty or v.Major() != c.con.Major():
        return v.Major() > c.con.Major() if c.dirty else v.Compare(c.con) > 0
    if c.minor_dirty:
        return False
    if c.patch_dirty:
        return v.Minor() > c.con.Minor()
    return v.Compare(c.con) > 0


def _le(c: _Constraint, v: Version) -> bool:
    if not c.dirty:
        return v.Compare(c.con) <= 0
    if v.Major() > c.con.Major():
        return False
    return not (v.Major() == c.con.Major() and v.Minor() > c.con.Minor() and not c.minor_dirty)


def _tilde(c: _Constraint, v: Version) -> bool:
    if v < c.con:
        return False
    if c.con._v == (0, 0, 0) and not c.minor_dirty and not c.patch_dirty:
        return True
    return v.Major() == c.con.Major() and (v.Minor() == c.con.Minor() or c.minor_dirty)


def _caret(c: _Constraint, v: Version) -> bool:
    if v < c.con:
        return False
    if c.con.Major() > 0 or c.minor_dirty:
        return v.Major() == c.con.Major()
    if v.Major() > 0:
        return False
    if c.con.Minor() > 0 or c.patch_dirty:
        return v.Minor() == c.con.Minor()
    return v.Minor() == 0 and v.Patch() == c.con.Patch()


def _ne(c: _Constraint, v: Version) -> bool:
    if c.dirty:
        if v.Prerelease() and not c.con.Prerelease():
            return False
        return not _tilde(c, v)
    return v != c.con


_OPS: dict[str, Callable[[_Constraint, Version], bool]] = {
    "=": lambda c, v: _tilde(c, v) if c.dirty else v == c.con,
    "!=": _ne, ">": _gt, "<": lambda c, v: v.Compare(c.con) < 0, ">=": lambda c, v: v.Compare(c.con) >= 0,
    "<=": _le, "~": _tilde, "^": _caret,
}


def _group(text: str) -> list[_Constraint]:
    text = _HYPHEN.sub(r" >= \1 <= \2 ", text)
    if not text.strip():
        return [_Constraint("=", "*", None, None, "")]
    out, pos = [], 0
    while pos < len(text) and text[pos:].strip():
        m = _ONE.match(text, pos)
        if m is None or m.end() == pos:
            raise FuncError(f"improper constraint: {text.strip()}")
        out.append(_Constraint(m.group(1) or "", m.group(2), m.group(3), m.group(4), m.group(5)))
        pos = m.end()
    return out


def check(constraint: str, version: str) -> bool:
    """Whether ``version`` satisfies ``constraint`` (sprig's semverCompare)."""
    groups = [_group(part) for part in constraint.split("||")]
    v = parse_version(version)
    return any(all(c.check(v) for c in g) for g in groups)
