"""Sprig's string functions: case, trim, split/join, quote, indent, regex, encodings and hashes.

Each follows its Go original (sprig v3 as helm ships it, with Go's strings
package underneath): argument order (``trimPrefix PREFIX S``, ``replace OLD NEW S``),
Go parameter types (a non-string where a string is declared is an error), and
Go's quirks (``title`` capitalises after an apostrophe; ``b64dec`` of bad
input returns the error text). Regular expressions are Python's ``re`` with Go's
``(?<name>)``, ``\\z`` and ``[[:alpha:]]`` forms translated; replacement
strings use Go's ``$1``/``${name}`` syntax.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import string
import uuid
import zlib

from imgbuild.gotemplate.calls import gofunc
from imgbuild.gotemplate.errors import FuncError
from imgbuild.gotemplate.gofmt import fmt_value, quote
from imgbuild.gotemplate.values import is_seq

__all__ = ["STRING_FUNCS", "strval", "strslice"]


def strval(v: object) -> str:
    """Sprig's strval: a string as is, bytes decoded, anything else as Go's %v prints it."""
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    return fmt_value(v)


def strslice(v: object) -> list[str]:
    """Sprig's strslice: a list's non-nil elements as strings, a scalar as a one-element list."""
    if is_seq(v):
        return [strval(x) for x in v if x is not None]  # type: ignore[union-attr]
    return [] if v is None else [strval(v)]


def _is_sep(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c == "_")
    return not (c.isalpha() or c.isdigit()) and c.isspace()


def _title(s: str) -> str:
    out, prev = [], " "
    for c in s:
        out.append(c.upper() if _is_sep(prev) else c)
        prev = c
    return "".join(out)


def _untitle(s: str) -> str:
    out, prev = [], " "
    for c in s:
        out.append(c.lower() if prev.isspace() else c)
        prev = c
    return "".join(out)


def _camelcase(s: str) -> str:
    conn = "_- \t"
    out, i = [], 0
    while i < len(s) and s[i] in conn:
        out.append(s[i])
        i += 1
    upper_next = True
    for j in range(i, len(s)):
        c = s[j]
        if c in conn:
            if j + 1 == len(s) or s[j + 1] in conn:
                out.append(c)
            upper_next = True
            continue
        out.append(c.upper() if upper_next else c)
        upper_next = False
    return "".join(out)


_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*[a-z]*|[0-9]+[a-z]*|[^\W_]+")


def _cased(s: str, sep: str) -> str:
    words = []
    for chunk in re.split(r"[\s_\-]+", s):
        words.extend(_WORDS.findall(chunk))
    return sep.join(w.lower() for w in words)


def _trunc(c: int, s: str) -> str:
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


def _go_split(s: str, sep: str, n: int = -1) -> list[str]:
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        return chars if n < 0 or n >= len(chars) else chars[:n - 1] + ["".join(chars[n - 1:])]
    return s.split(sep) if n < 0 else s.split(sep, n - 1)


def _indexed(parts: list[str]) -> dict[str, str]:
    return {f"_{i}": p for i, p in enumerate(parts)}


def _repeat(count: int, s: str) -> str:
    if count < 0:
        raise FuncError("strings: negative Repeat count")
    return s * count


def _substr(start: int, end: int, s: str) -> str:
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    if start > end:
        raise FuncError(f"runtime error: slice bounds out of range [{start}:{end}]")
    return s[start:end]


def _abbrev(width: int, s: str) -> str:
    if width < 4 or len(s) <= width:
        return s
    return s[:width - 3] + "..."


def _b64dec(s: str) -> str:
    try:
        return base64.b64decode(s.encode(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return f"illegal base64 data: {exc}"


def _b32dec(s: str) -> str:
    try:
        return base64.b32decode(s.encode()).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return f"illegal base32 data: {exc}"


_POSIX = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
          "space": r" \t\r\n\v\f", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f", "word": r"\w"}


def go_regex(pattern: str) -> re.Pattern:
    """Compile a Go (RE2) regular expression with Python's re; FuncError when it does not compile."""
    py = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)
    py = re.sub(r"(?<!\\)\\z", r"\\Z", py)
    py = re.sub(r"\[:(\w+):\]", lambda m: _POSIX.get(m.group(1), m.group(0)), py)
    try:
        return re.compile(py)
    except re.error as exc:
        raise FuncError(f"error parsing regexp: {exc}: `{pattern}`") from None


_EXPAND = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")


def _expand(m: re.Match, repl: str) -> str:
    def one(x: re.Match) -> str:
        if x.group(1):
            return "$"
        name = x.group(2) or x.group(3)
        try:
            got = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:
            return ""
        return got or ""
    return _EXPAND.sub(one, repl)


def _regex_replace(regex: str, s: str, repl: str) -> str:
    return go_regex(regex).sub(lambda m: _expand(m, repl), s)


def _regex_match(regex: str, s: str) -> bool:
    try:
        return go_regex(regex).search(s) is not None
    except FuncError:
        return False


def _regex_find_all(regex: str, s: str, n: int) -> list[str]:
    found = [m.group(0) for m in go_regex(regex).finditer(s)]
    return found if n < 0 else found[:n]


def _regex_split(regex: str, s: str, n: int) -> list[str]:
    if n == 0:
        return []
    return go_regex(regex).split(s, maxsplit=0 if n < 0 else n - 1)


def _random(chars: str):
    @gofunc("int")
    def rand(count: int) -> str:
        return "".join(secrets.choice(chars) for _ in range(max(count, 0)))
    return rand


def _quote(*args: object) -> str:
    if len(args) == 1 and type(args[0]) is str:
        return quote(args[0])
    return " ".join(quote(strval(a)) for a in args if a is not None)


def _squote(*args: object) -> str:
    return " ".join(f"'{strval(a)}'" for a in args if a is not None)


def _cat(*args: object) -> str:
    return " ".join(fmt_value(a) for a in args if a is not None)


def _sort_alpha(v: object) -> list[str]:
    return sorted(strslice(v)) if is_seq(v) else [strval(v)]


S, I, A = "string", "int", "any"
_TYPED = {
    "upper": ((S,), str.upper), "lower": ((S,), str.lower), "title": ((S,), _title), "untitle": ((S,), _untitle),
    "trim": ((S,), str.strip), "trimAll": ((S, S), lambda cut, s: s.strip(cut)),
    "trimall": ((S, S), lambda cut, s: s.strip(cut)),
    "trimPrefix": ((S, S), lambda p, s: s.removeprefix(p)), "trimSuffix": ((S, S), lambda p, s: s.removesuffix(p)),
    "trunc": ((I, S), _trunc), "replace": ((S, S, S), lambda old, new, s: s.replace(old, new)),
    "repeat": ((I, S), _repeat), "contains": ((S, S), lambda sub, s: sub in s),
    "hasPrefix": ((S, S), lambda p, s: s.startswith(p)), "hasSuffix": ((S, S), lambda p, s: s.endswith(p)),
    "split": ((S, S), lambda sep, s: _indexed(_go_split(s, sep))),
    "splitList": ((S, S), lambda sep, s: _go_split(s, sep)),
    "splitn": ((S, I, S), lambda sep, n, s: _indexed(_go_split(s, sep, n))),
    "join": ((S, A), lambda sep, v: sep.join(strslice(v))),
    "indent": ((I, S), lambda n, s: " " * n + s.replace("\n", "\n" + " " * n)),
    "nindent": ((I, S), lambda n, s: "\n" + " " * n + s.replace("\n", "\n" + " " * n)),
    "nospace": ((S,), lambda s: "".join(c for c in s if not c.isspace())),
    "camelcase": ((S,), _camelcase), "snakecase": ((S,), lambda s: _cased(s, "_")),
    "kebabcase": ((S,), lambda s: _cased(s, "-")), "substr": ((I, I, S), _substr), "abbrev": ((I, S), _abbrev),
    "plural": ((S, S, I), lambda one, many, n: one if n == 1 else many),
    "regexMatch": ((S, S), _regex_match), "regexFind": ((S, S), lambda r, s: (go_regex(r).search(s) or [""])[0]),
    "regexFindAll": ((S, S, I), _regex_find_all), "regexReplaceAll": ((S, S, S), _regex_replace),
    "regexReplaceAllLiteral": ((S, S, S), lambda r, s, repl: go_regex(r).sub(lambda m: repl, s)),
    "regexSplit": ((S, S, I), _regex_split), "regexQuoteMeta": ((S,), re.escape),
    "b64enc": ((S,), lambda s: base64.b64encode(s.encode()).decode()), "b64dec": ((S,), _b64dec),
    "b32enc": ((S,), lambda s: base64.b32encode(s.encode()).decode()), "b32dec": ((S,), _b32dec),
    "sha256sum": ((S,), lambda s: hashlib.sha256(s.encode()).hexdigest()),
    "sha1sum": ((S,), lambda s: hashlib.sha1(s.encode()).hexdigest()),  # noqa: S324 - what sprig computes
    "adler32sum": ((S,), lambda s: str(zlib.adler32(s.encode()))),
    "toString": ((A,), strval), "toStrings": ((A,), strslice),
    "sortAlpha": ((A,), _sort_alpha),
}
_VARIADIC = {"quote": _quote, "squote": _squote, "cat": _cat}

STRING_FUNCS: dict[str, object] = {name: gofunc(*params)(fn) for name, (params, fn) in _TYPED.items()}
STRING_FUNCS.update({name: gofunc(variadic="any")(fn) for name, fn in _VARIADIC.items()})
STRING_FUNCS.update({
    "randAlphaNum": _random(string.ascii_letters + string.digits), "randAlpha": _random(string.ascii_letters),
    "randNumeric": _random(string.digits), "randAscii": _random("".join(map(chr, range(33, 127)))),
    "uuidv4": gofunc()(lambda: str(uuid.uuid4())),
})
