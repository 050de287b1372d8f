"""Go text/template's lexer: template text -> a list of tokens, with Go's trim markers and comments.

Follows ``text/template/parse/lex.go``: text up to ``{{``; ``{{- `` trims the
whitespace before the action and `` -}}`` the whitespace after it; ``{{/* */}}``
comments vanish; inside an action, spaces are tokens (the parser needs them to
tell ``$x.a`` from ``$x .a``), newlines are allowed (Go >= 1.16), and a printable
ASCII character that means nothing is passed on as ``char`` so the parser can
say ``unexpected "#"``. Errors are :class:`TemplateError` naming name:line:col.
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

from imgbuild.gotemplate.errors import TemplateError

__all__ = ["Token", "lex", "Positions", "KEYWORDS"]

KEYWORDS = frozenset(
    ["block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"]
)
_SPACE = " \t\r\n"
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]*)?"
    r"|0[oO][0-7_]*(?:\.[0-7_]*)?|0[bB][01_]*(?:\.[01_]*)?"
    r"|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?)i?"
)
_WORD = re.compile(r"\w*")
_SPACES = re.compile(r"[ \t\r\n]+")
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')
_CHARC = re.compile(r"'(?:[^'\\\n]|\\[^\n])*'")
_SIMPLE = {"(": "(", ")": ")", "|": "|", ",": ","}


class Token(NamedTuple):
    """One lexeme: its kind (``text``, ``field``, ``if`` ...), its source text and its offset."""

    kind: str
    val: str
    pos: int


class Positions:
    """Turns an offset in a template's text into (line, col) as Go reports them (1-based, 0-based)."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, pos: int) -> tuple[int, int]:
        """The line and column of offset ``pos``."""
        i = bisect.bisect_right(self._starts, pos) - 1
        return i + 1, pos - self._starts[i]


class _Lexer:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.toks: list[Token] = []
        self.parens = 0

    def fail(self, msg: str, pos: int) -> TemplateError:
        line, col = Positions(self.text).at(pos)
        return TemplateError(msg, self.name, line, col)

    def run(self) -> list[Token]:
        text, pos = self.text, 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                if pos < len(text):
                    self.toks.append(Token("text", text[pos:], pos))
                self.toks.append(Token("eof", "", len(text)))
                return self.toks
            trim = text.startswith("-", start + 2) and text[start + 3:start + 4] in tuple(_SPACE)
            end = len(text[pos:start].rstrip(_SPACE)) + pos if trim else start
            if end > pos:
                self.toks.append(Token("text", text[pos:end], pos))
            pos = self.action(start, start + (4 if trim else 2))

    def action(self, start: int, pos: int) -> int:
        """Lex one action from after its ``{{`` (and trim marker); return the offset after it."""
        text = self.text
        if text.startswith("/*", pos):
            return self.comment(start, pos)
        self.toks.append(Token("left", "{{", start))
        self.parens = 0
        while True:
            after = self.right_delim(pos)
            if after is not None:
                return after
            if pos >= len(text):
                raise self.fail("unclosed action", start)
            pos = self.inside(pos)

    def right_delim(self, pos: int) -> int | None:
        text = self.text
        trim = text[pos:pos + 1] in tuple(_SPACE) and text.startswith("-}}", pos + 1)
        if not trim and not text.startswith("}}", pos):
            return None
        if self.parens:
            raise self.fail("unclosed left paren", pos)
        at = pos + 1 if trim else pos
        self.toks.append(Token("right", "}}", at))
        after = at + 2 + (1 if trim else 0)
        if trim:
            rest = text[after:]
            after += len(rest) - len(rest.lstrip(_SPACE))
        return after

    def comment(self, start: int, pos: int) -> int:
        text = self.text
        close = text.find("*/", pos + 2)
        if close < 0:
            raise self.fail("unclosed comment", start)
        after = self.right_delim(close + 2)
        if after is None:
            raise self.fail("comment ends before closing delimiter", start)
        self.toks.pop()  # a comment leaves no token
        return after

    def inside(self, pos: int) -> int:
        """Lex one token inside an action at ``pos``; return the offset after it."""
        text, c = self.text, self.text[pos]
        if c in _SPACE:
            end = _SPACES.match(text, pos).end()
            if text.startswith("-}}", end) and end - pos >= 1:
                end -= 1  # the last space belongs to " -}}"
            if end > pos:
                self.toks.append(Token("space", text[pos:end], pos))
            return end
        if c == ":" and text.startswith(":=", pos):
            return self.emit("declare", ":=", pos)
        if c == "=":
            return self.emit("assign", "=", pos)
        if c in _SIMPLE:
            if c == "(":
                self.parens += 1
            elif c == ")":
                self.parens -= 1
                if self.parens < 0:
                    raise self.fail("unexpected right paren", pos)
            return self.emit(_SIMPLE[c], c, pos)
        if c == '"':
            return self.quoted(_QUOTED, "string", "unterminated quoted string", pos)
        if c == "'":
            return self.quoted(_CHARC, "charconst", "unterminated character constant", pos)
        if c == "`":
            close = text.find("`", pos + 1)
            if close < 0:
                raise self.fail("unterminated raw quoted string", pos)
            return self.emit("raw", text[pos:close + 1], pos)
        return self.word(c, pos)

    def word(self, c: str, pos: int) -> int:
        text = self.text
        if c == "$":
            return self.field_or_var("var", pos)
        if c == "." and not text[pos + 1:pos + 2].isdigit():
            return self.field_or_var("field", pos)
        if c in "+-." or c.isdigit():
            end = _NUMBER.match(text, pos).end()
            if end == pos or (end < len(text) and (text[end].isalnum() or text[end] == "_")):
                raise self.fail(f"bad number syntax: {text[pos:end + 1]!r}", pos)
            return self.emit("number", text[pos:end], pos)
        if c.isalpha() or c == "_":
            end = _WORD.match(text, pos).end()
            word = text[pos:end]
            self.check_terminator(end)
            kind = word if word in KEYWORDS else "bool" if word in ("true", "false") else "ident"
            return self.emit(kind, word, pos)
        if c.isascii() and c.isprintable():
            return self.emit("char", c, pos)
        raise self.fail(f"unrecognized character in action: U+{ord(c):04X} {c!r}", pos)

    def field_or_var(self, kind: str, pos: int) -> int:
        end = _WORD.match(self.text, pos + 1).end()
        if end == pos + 1:
            return self.emit("var" if kind == "var" else "dot", self.text[pos], pos)
        self.check_terminator(end)
        return self.emit(kind, self.text[pos:end], pos)

    def check_terminator(self, end: int) -> None:
        text = self.text
        if end >= len(text) or text[end] in _SPACE or text[end] in ".,|:)(" or text.startswith("}}", end):
            return
        raise self.fail(f"bad character U+{ord(text[end]):04X} {text[end]!r}", end)

    def quoted(self, rx: re.Pattern, kind: str, err: str, pos: int) -> int:
        m = rx.match(self.text, pos)
        if m is None:
            raise self.fail(err, pos)
        return self.emit(kind, m.group(), pos)

    def emit(self, kind: str, val: str, pos: int) -> int:
        self.toks.append(Token(kind, val, pos))
        return pos + len(val)


def lex(text: str, name: str = "<template>") -> list[Token]:
    """Split ``text`` into tokens ending with an ``eof`` token; TemplateError names name:line:col."""
    return _Lexer(text, name).run()
