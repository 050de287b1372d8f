"""What an instruction parser sees: one logical line split into keyword, flags and arguments.

:func:`split_command` cuts a logical line into its keyword, its leading
``--flag[=value]`` words (BuildKit's ``extractBuilderFlags``: quotes removed,
variables left for later) and the rest. :class:`LineCtx` bundles them with the
variable lookup in scope and helpers that turn problems into a
:class:`KubefileError` at the right line and column. :func:`parse_flags`
checks the flags against what the instruction accepts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from imgbuild.errors import KubefileError
from imgbuild.kubefile.lines import LineReader, LogicalLine
from imgbuild.kubefile.model import Heredoc
from imgbuild.kubefile.substitution import Lookup, SubstitutionError, expand_word, no_vars

__all__ = ["RawFlag", "LineCtx", "split_command", "parse_flags", "FLAG_SPECS"]

_FIELDS_RE = re.compile(r"\S+")
_KEYWORD_RE = re.compile(r"\s*(\S*)\s*")

# flag name -> kind: "str", "bool" or "list" (repeatable)
FLAG_SPECS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str", "security": "str", "device": "list"},
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool", "exclude": "list"},
    "ADD": {
        "chown": "str",
        "chmod": "str",
        "link": "bool",
        "keep-git-dir": "bool",
        "checksum": "str",
        "exclude": "list",
        "unpack": "bool",
    },
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str", "start-interval": "str", "retries": "str"},
}


@dataclass(frozen=True)
class RawFlag:
    """One ``--name[=value]`` word as written (value unquoted, None when there is no ``=``)."""

    name: str
    value: str | None
    offset: int


def _unquote(raw: str, escape: str) -> str:
    """Remove quotes and escapes from a flag word, leaving ``$`` alone for later substitution."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == escape and quote != "'" and i + 1 < n:
            out.append(raw[i + 1])
            i += 2
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _word_end(text: str, pos: int, escape: str) -> int:
    """Index just past the word starting at ``pos`` (unquoted whitespace ends it)."""
    quote = ""
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == escape and quote != "'":
            pos += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            return pos
        pos += 1
    return min(pos, n)


def _skip_space(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    return pos


def split_command(text: str, escape: str) -> tuple[str, int, list[RawFlag], int]:
    """Split a logical line: (keyword, keyword offset, flags, offset where the arguments start)."""
    km = _KEYWORD_RE.match(text)
    keyword, kw_off = km.group(1), km.start(1)
    flags: list[RawFlag] = []
    pos = km.end()
    while text.startswith("--", pos):
        end = _word_end(text, pos, escape)
        word = _unquote(text[pos + 2 : end], escape)
        if word == "":
            pos = _skip_space(text, end)
            break
        name, eq, value = word.partition("=")
        flags.append(RawFlag(name, value if eq else None, pos))
        pos = _skip_space(text, end)
    return keyword, kw_off, flags, pos


@dataclass
class LineCtx:
    """One instruction being parsed: its text, flags, heredocs and the variables in scope."""

    reader: LineReader
    ll: LogicalLine
    keyword: str
    raw_flags: list[RawFlag]
    args_off: int
    lookup: Lookup = no_vars
    heredocs: tuple[Heredoc, ...] = ()
    end_line: int = 0
    flags: dict[str, Any] = field(default_factory=dict)
    flag_offsets: dict[str, int] = field(default_factory=dict)

    @property
    def escape(self) -> str:
        """The escape character of this file."""
        return self.reader.escape

    @property
    def rest(self) -> str:
        """The argument text after the keyword and flags, trailing blanks removed."""
        return self.ll.text[self.args_off :].rstrip()

    def error(self, message: str, offset: int | None = None, bare: bool = False) -> KubefileError:
        """A KubefileError at ``offset`` in the logical line (default: the keyword), prefixed by the keyword."""
        line, col = self.ll.locate(offset or 0)
        return self.reader.error(message if bare else f"{self.keyword}: {message}", line, col)

    def expand(self, word: str, offset: int, lookup: Lookup | None = None) -> str:
        """Substitute variables in ``word`` (Docker's ProcessWord); errors point into the word."""
        try:
            return expand_word(word, lookup or self.lookup, self.escape)
        except SubstitutionError as exc:
            raise self.error(str(exc), offset + exc.offset) from exc

    def flag_off(self, name: str) -> int:
        """Where the flag ``--name`` was written (for error columns)."""
        return self.flag_offsets.get(name, self.args_off)

    def flag(self, name: str) -> str | None:
        """The value of string flag ``--name``, substituted, or None if absent."""
        if name not in self.flags:
            return None
        raw = self.flags[name]
        return self.expand(raw, self.flag_off(name) + len(name) + 3)

    def fields(self) -> list[tuple[str, int]]:
        """The arguments split on whitespace only (no quote handling), with absolute offsets."""
        return [(m.group(), m.start()) for m in _FIELDS_RE.finditer(self.ll.text, self.args_off)]

    def json_list(self) -> tuple[str, ...] | None:
        """The arguments as a JSON array of strings (exec form), or None for shell form."""
        rest = self.rest.lstrip()
        if not rest.startswith("["):
            return None
        try:
            value = json.loads(rest)
        except ValueError:
            return None
        if not isinstance(value, list):
            return None
        if not all(isinstance(v, str) for v in value):
            raise self.error("a JSON array must hold only strings", self.args_off)
        return tuple(value)

    def base(self) -> dict[str, Any]:
        """The fields every instruction has."""
        return {
            "keyword": self.keyword,
            "line": self.ll.line,
            "end_line": max(self.end_line, self.ll.end_line),
            "original": self.ll.text.strip(),
            "flags": self.flags,
        }


def parse_flags(ctx: LineCtx) -> dict[str, Any]:
    """Check the raw flags against the instruction's allowed flags; values stay unexpanded."""
    spec = FLAG_SPECS.get(ctx.keyword, {})
    out: dict[str, Any] = {}
    for f in ctx.raw_flags:
        ctx.flag_offsets.setdefault(f.name, f.offset)
        kind = spec.get(f.name)
        if kind is None:
            valid = ", ".join("--" + k for k in spec) or "none"
            raise ctx.error(f"unknown flag --{f.name} (valid flags: {valid})", f.offset)
        if kind == "bool":
            if f.value not in (None, "true", "false"):
                raise ctx.error(f"--{f.name} takes no value or true/false, not {f.value!r}", f.offset)
            value: Any = f.value != "false"
        elif f.value is None:
            raise ctx.error(f"--{f.name} needs a value: --{f.name}=...", f.offset)
        else:
            value = f.value
        if kind == "list":
            out[f.name] = out.get(f.name, ()) + (value,)
        elif f.name in out:
            raise ctx.error(f"--{f.name} is given more than once", f.offset)
        else:
            out[f.name] = value
    return out
