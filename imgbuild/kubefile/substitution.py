"""Shell-word processing with Docker's rules: quotes, the escape character and ``$VAR`` substitution.

:func:`split_words` cuts an instruction's argument text into words the way
BuildKit's ``parseWords`` does (quotes and escapes kept, whitespace inside
quotes or after an escape does not split). :func:`expand_word` then processes
one word like BuildKit's ``ProcessWord``: quotes removed, escapes applied and
``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:+a}``, ``${VAR+a}``,
``${VAR:?msg}``, ``${VAR#pat}``/``%`` substituted from a lookup function (an
unset variable is ``None``). ``$(...)`` is not a substitution: it stays as
written, which keeps sealos' run-time ``$(VAR)`` syntax intact. Every scan is a
single left-to-right pass, so the cost is linear in the text.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Callable

__all__ = ["Lookup", "SubstitutionError", "split_words", "expand_word", "expand_vars_only", "no_vars"]

Lookup = Callable[[str], "str | None"]

_SPECIAL_PARAMS = frozenset("@*#?-$!0123456789")
_NAME_RE = re.compile(r"[^\W]+")  # letters, digits, underscore (unicode-aware)
_FIELD_RE = re.compile(r"\S+")
_WORD_CACHE: dict[str, re.Pattern[str]] = {}
_PLAIN_CACHE: dict[tuple[str, str], re.Pattern[str]] = {}


class SubstitutionError(ValueError):
    """A malformed word; ``offset`` is the index in the word where it went wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def no_vars(name: str) -> str | None:
    """A lookup where every variable is unset."""
    return None


def _plain_run(escape: str, stop: str) -> re.Pattern[str]:
    """A pattern matching a run of characters with no special meaning (fast path)."""
    key = (escape, stop)
    pat = _PLAIN_CACHE.get(key)
    if pat is None:
        pat = re.compile("[^" + re.escape("'\"$" + escape + stop) + "]+")
        _PLAIN_CACHE[key] = pat
    return pat


def split_words(text: str, escape: str = "\\") -> list[tuple[str, int]]:
    """Split ``text`` on unquoted whitespace, keeping quotes and escapes; return (word, offset) pairs."""
    if "'" not in text and '"' not in text and escape not in text:
        return [(m.group(), m.start()) for m in _FIELD_RE.finditer(text)]
    fast = _split_fast(text, escape)
    return fast if fast is not None else _split_slow(text, escape)


def _word_re(escape: str) -> re.Pattern[str]:
    """A word: quoted strings, escaped characters and plain runs, glued together."""
    pat = _WORD_CACHE.get(escape)
    if pat is None:
        e = re.escape(escape)
        seg = rf'"(?:[^"{e}]|{e}[\s\S])*"|\'[^\']*\'|{e}[\s\S]|[^\s\'"{e}]+'
        pat = _WORD_CACHE[escape] = re.compile(f"(?:{seg})+")
    return pat


def _split_fast(text: str, escape: str) -> list[tuple[str, int]] | None:
    """split_words by regex; None when a quote is unterminated or an escape ends the text."""
    words = []
    last = 0
    for m in _word_re(escape).finditer(text):
        if text[last : m.start()].strip():
            return None
        words.append((m.group(), m.start()))
        last = m.end()
    if text[last:].strip():
        return None
    return words


def _split_slow(text: str, escape: str) -> list[tuple[str, int]]:
    """split_words one character at a time (handles unterminated quotes like BuildKit)."""
    words: list[tuple[str, int]] = []
    buf: list[str] = []
    start = -1
    quote = ""
    blank_ok = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if start < 0:
            if ch.isspace():
                i += 1
                continue
            start = i
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = text[i]
            buf.append(ch)
            i += 1
            continue
        if ch.isspace():
            if buf or blank_ok:
                words.append(("".join(buf), start))
            buf, start, blank_ok = [], -1, False
            i += 1
            continue
        if ch in "'\"":
            quote, blank_ok = ch, True
        elif ch == escape:
            if i + 1 == n:
                i += 1
                continue
            buf.append(ch)
            i += 1
            ch = text[i]
        buf.append(ch)
        i += 1
    if start >= 0 and (buf or blank_ok):
        words.append(("".join(buf), start))
    return words


def expand_word(word: str, lookup: Lookup, escape: str = "\\") -> str:
    """Process one word: remove quotes, apply escapes, substitute variables."""
    if "$" not in word and "'" not in word and '"' not in word and escape not in word:
        return word
    return _Scan(word, lookup, escape).word(stop="")


def expand_vars_only(text: str, lookup: Lookup, escape: str = "\\") -> str:
    """Substitute variables in free text (an unquoted heredoc's body); quotes stay, ``<escape>$`` is a literal $."""
    if "$" not in text:
        return text
    out: list[str] = []
    scan = _Scan(text, lookup, escape)
    n = len(text)
    while scan.pos < n:
        j = text.find("$", scan.pos)
        if j < 0:
            out.append(text[scan.pos :])
            break
        if j > scan.pos and text[j - 1] == escape:
            out.append(text[scan.pos : j - 1] + "$")
            scan.pos = j + 1
            continue
        out.append(text[scan.pos : j])
        scan.pos = j
        out.append(scan.dollar())
    return "".join(out)


class _Scan:
    """One left-to-right pass over a word."""

    __slots__ = ("text", "pos", "lookup", "esc")

    def __init__(self, text: str, lookup: Lookup, escape: str) -> None:
        self.text = text
        self.pos = 0
        self.lookup = lookup
        self.esc = escape

    def word(self, stop: str) -> str:
        """Process until ``stop`` (consumed) or the end of the text if ``stop`` is ''."""
        text, n, esc = self.text, len(self.text), self.esc
        plain = _plain_run(esc, stop)
        out: list[str] = []
        while self.pos < n:
            ch = text[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(out)
            if ch == esc:
                self.pos += 1
                if self.pos < n:
                    out.append(text[self.pos])
                    self.pos += 1
            elif ch == "'":
                out.append(self.single())
            elif ch == '"':
                out.append(self.double())
            elif ch == "$":
                out.append(self.dollar())
            else:
                m = plain.match(text, self.pos)
                out.append(m.group())
                self.pos = m.end()
        if stop:
            raise SubstitutionError(f"missing '{stop}' in variable substitution", self.pos)
        return "".join(out)

    def single(self) -> str:
        """A single-quoted string: everything literal up to the next quote."""
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            raise SubstitutionError("unterminated single quote", self.pos)
        s = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return s

    def double(self) -> str:
        """A double-quoted string: escapes of ``" $ <escape>`` and substitutions apply."""
        text, n, esc = self.text, len(self.text), self.esc
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < n:
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            if ch == esc and self.pos + 1 < n and text[self.pos + 1] in ('"', "$", esc):
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise SubstitutionError("unterminated double quote", start)

    def dollar(self) -> str:
        """A ``$`` at ``pos``: a substitution, or a literal ``$`` (``$(``, ``$`` at the end...)."""
        text, n = self.text, len(self.text)
        start = self.pos
        self.pos += 1
        if self.pos >= n:
            return "$"
        ch = text[self.pos]
        if ch == "{":
            return self.braced(start)
        name = self.name()
        if not name:
            return "$"
        return self.lookup(name) or ""

    def name(self) -> str:
        """A variable name at ``pos`` (or one special parameter character)."""
        text = self.text
        if self.pos < len(text) and text[self.pos] in _SPECIAL_PARAMS:
            self.pos += 1
            return text[self.pos - 1]
        m = _NAME_RE.match(text, self.pos)
        if not m:
            return ""
        self.pos = m.end()
        return m.group()

    def braced(self, start: int) -> str:
        """``${...}`` with its optional modifier."""
        text, n = self.text, len(self.text)
        self.pos += 1
        name = self.name()
        if not name:
            raise SubstitutionError("bad substitution: expected a variable name after '${'", start)
        if self.pos >= n:
            raise SubstitutionError("missing '}' in variable substitution", start)
        ch = text[self.pos]
        value = self.lookup(name)
        if ch == "}":
            self.pos += 1
            return value or ""
        colon = ch == ":"
        if colon:
            self.pos += 1
            if self.pos >= n:
                raise SubstitutionError("missing '}' in variable substitution", start)
            ch = text[self.pos]
        if ch in "-+?":
            self.pos += 1
            try:
                word = self.word(stop="}")
            except SubstitutionError as exc:
                raise SubstitutionError(str(exc), start) from exc
            return self.modify(name, value, ch, colon, word, start)
        if ch in "#%" and not colon:
            return self.trim(value, start)
        raise SubstitutionError(f"unsupported modifier {'${'}{name}{':' if colon else ''}{ch}...}}", start)

    def modify(self, name: str, value: str | None, op: str, colon: bool, word: str, start: int) -> str:
        """Apply ``-``, ``+`` or ``?`` (with ``:`` an empty value counts as unset)."""
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return value if is_set else word  # type: ignore[return-value]
        if op == "+":
            return word if is_set else ""
        if not is_set:
            raise SubstitutionError(f"{name}: {word or 'is not set'}", start)
        return value  # type: ignore[return-value]

    def trim(self, value: str | None, start: int) -> str:
        """``${VAR#pat}``, ``##``, ``%``, ``%%``: remove the shortest/longest matching prefix/suffix."""
        op = self.text[self.pos]
        self.pos += 1
        longest = self.pos < len(self.text) and self.text[self.pos] == op
        if longest:
            self.pos += 1
        try:
            pattern = self.word(stop="}")
        except SubstitutionError as exc:
            raise SubstitutionError(str(exc), start) from exc
        value = value or ""
        rx = re.compile(fnmatch.translate(pattern), re.DOTALL)
        cuts = range(len(value) + 1)
        order = reversed(cuts) if longest else cuts
        for k in order:
            part = value[:k] if op == "#" else value[len(value) - k :]
            if rx.match(part):
                return value[k:] if op == "#" else value[: len(value) - k]
        return value
