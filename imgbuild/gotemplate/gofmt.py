"""Go's fmt for template values: Sprint, Sprintln, Sprintf (the verbs templates use) and strconv.Quote.

Values print as Go prints the ``interface{}`` values that decoded YAML/JSON
holds: ``map[a:1 b:[x y]]`` (keys sorted), ``<nil>``, floats in Go's shortest
``%g`` form (``1e+06``, ``1.5``), ``%!d(string=x)`` for a verb that does not fit,
``%!d(MISSING)`` and ``%!(EXTRA ...)`` for a wrong number of arguments.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from decimal import Decimal

from imgbuild.gotemplate.values import NOVALUE, go_type, is_seq

__all__ = ["sprint", "sprintln", "sprintf", "fmt_value", "quote", "quote_rune", "format_float", "json_float", "sort_key"]

_SPEC = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.?)", re.S)
_PLAIN_ASCII = re.compile(r'[ !#-\[\]-~]*')
_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
        "\\": "\\\\"}


def _shortest(f: float) -> tuple[str, int]:
    """The shortest round-trip digits of ``abs(f)`` and the decimal point position (0.DIGITS x 10^dp)."""
    sign, digits, exp = Decimal(repr(abs(f))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, len(text) + int(exp)


def _special(f: float) -> str | None:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return None


def format_float(f: float, exp_from: int = 6, exp_below: int = -4) -> str:
    """Go's %v for a float64 (strconv 'g', shortest): exponent form below 1e-4 and from 1e6 (``1e+06``).

    ``exp_from``/``exp_below`` move the thresholds (encoding/json: 'f' between 1e-6 and 1e21, and
    exponents without a leading zero: see :func:`json_float`).
    """
    special = _special(f)
    if special:
        return special
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, dp = _shortest(f)
    sign = "-" if f < 0 else ""
    exp = dp - 1
    if exp < exp_below or exp >= exp_from:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def json_float(f: float) -> str:
    """encoding/json's float64: fixed notation from 1e-6 to 1e21, else ``1e-7``/``1e+21``; ValueError for Inf/NaN."""
    if not math.isfinite(f):
        raise ValueError(f"json: unsupported value: {format_float(f)}")
    text = format_float(f, exp_from=21, exp_below=-6)
    return re.sub(r"e-0(\d)$", r"e-\1", text)


def quote(s: str, ascii_only: bool = False) -> str:
    """Go's strconv.Quote (``ascii_only``: QuoteToASCII)."""
    if _PLAIN_ASCII.fullmatch(s):
        return '"' + s + '"'
    return '"' + "".join(_quote_char(c, '"', ascii_only) for c in s) + '"'


def quote_rune(r: int) -> str:
    """Go's strconv.QuoteRune, for %q of an integer."""
    try:
        c = chr(r)
    except (ValueError, OverflowError):
        c = "\ufffd"
    return "'" + _quote_char(c, "'", False) + "'"


def _quote_char(c: str, q: str, ascii_only: bool) -> str:
    if c == q:
        return "\\" + c
    if c in _ESC:
        return _ESC[c]
    o = ord(c)
    if c.isprintable() and not (ascii_only and o >= 0x80) and not 0xD800 <= o < 0xE000:
        return c
    if o < 0x80:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def fmt_value(v: object, sharp: bool = False) -> str:
    """``%v`` (``sharp``: ``%#v``) of one value."""
    if isinstance(v, str):
        return quote(v) if sharp else v
    if v is None or v is NOVALUE:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in v) + "]"
    if is_seq(v):
        inner = (", " if sharp else " ").join(fmt_value(x, sharp) for x in v)
        return "[]interface {}{" + inner + "}" if sharp else "[" + inner + "]"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: sort_key(kv[0]))
        if sharp:
            return "map[string]interface {}{" + ", ".join(
                f"{fmt_value(k, True)}:{fmt_value(x, True)}" for k, x in items) + "}"
        return "map[" + " ".join(f"{fmt_value(k)}:{fmt_value(x)}" for k, x in items) + "]"
    return str(v)


def sort_key(k: object) -> tuple:
    """Go's map key order (fmtsort): numbers by value before strings in byte order."""
    if isinstance(k, (int, float)) and not isinstance(k, bool):
        return (0, k, "")
    return (1, 0, str(k))


def sprint(args: list) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    prev_str = True
    for i, a in enumerate(args):
        is_str = isinstance(a, str)
        if i and not is_str and not prev_str:
            out.append(" ")
        out.append(fmt_value(a))
        prev_str = is_str
    return "".join(out)


def sprintln(args: list) -> str:
    """fmt.Sprintln: operands separated by spaces, then a newline."""
    return " ".join(fmt_value(a) for a in args) + "\n"


class _Spec:
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "width", "prec", "verb")

    def __init__(self, flags: str, width: int | None, prec: int | None, verb: str) -> None:
        self.minus, self.plus, self.sharp = "-" in flags, "+" in flags, "#" in flags
        self.space, self.zero = " " in flags, "0" in flags and "-" not in flags
        self.width, self.prec, self.verb = width, prec, verb

    def pad(self, s: str, numeric: bool = False) -> str:
        if self.width is None or len(s) >= self.width:
            return s
        fill = self.width - len(s)
        if self.minus:
            return s + " " * fill
        if self.zero and numeric and s[:1] in "+- " and s[:1]:
            return s[0] + "0" * fill + s[1:]
        return ("0" if self.zero else " ") * fill + s


@functools.lru_cache(maxsize=512)
def _segments(fmt: str) -> tuple:
    """A format string split once into literal text and (flags, width, prec, verb) directives."""
    out: list = []
    pos = 0
    while True:
        i = fmt.find("%", pos)
        if i < 0:
            out.append(fmt[pos:])
            return tuple(x for x in out if x != "")
        out.append(fmt[pos:i])
        m = _SPEC.match(fmt, i)
        out.append(m.groups())
        pos = m.end()


def sprintf(fmt: str, args: list) -> str:
    """fmt.Sprintf for the verbs b c d e E f F g G o O q s t T U v x X and %%."""
    out: list[str] = []
    argi = 0
    for seg in _segments(fmt):
        if type(seg) is str:
            out.append(seg)
            continue
        flags, width, prec, verb = seg
        if not flags and width is None and prec is None and verb in "sdv" and argi < len(args):
            a = args[argi]
            if type(a) is str and verb != "d" or type(a) is int and verb != "s":
                out.append(a if type(a) is str else str(a))
                argi += 1
                continue
        width, argi = _star(width, args, argi)
        prec, argi = _star(prec, args, argi) if prec is not None else (None, argi)
        if verb == "%":
            out.append("%")
        elif not verb:
            out.append("%!(NOVERB)")
        elif argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_format(_Spec(flags, width, prec, verb), args[argi]))
            argi += 1
    if argi < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{go_type(a)}={fmt_value(a)}" for a in args[argi:]) + ")")
    return "".join(out)


def _star(text: str | None, args: list, argi: int) -> tuple[int | None, int]:
    if text == "*":
        if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
            return args[argi], argi + 1
        return None, argi + 1
    return (int(text) if text else (0 if text == "" else None)), argi


def _bad(spec: _Spec, v: object) -> str:
    if v is None:
        return f"%!{spec.verb}(<nil>)"
    return f"%!{spec.verb}({go_type(v)}={fmt_value(v)})"


def _format(spec: _Spec, v: object) -> str:
    verb = spec.verb
    if verb == "T":
        return spec.pad(go_type(v))
    if verb == "v" and not isinstance(v, (int, float)) or v is None:
        return spec.pad(fmt_value(v, spec.sharp)) if verb == "v" else _bad(spec, v)
    if isinstance(v, bool):
        return spec.pad(fmt_value(v)) if verb in "tv" else _bad(spec, v)
    if isinstance(v, int):
        return _format_int(spec, v)
    if isinstance(v, float):
        return _format_float(spec, v)
    if isinstance(v, str):
        return _format_str(spec, v)
    if isinstance(v, (bytes, bytearray)) and verb in "sqxX":
        return _format_str(spec, v.decode("utf-8", "replace"))
    if is_seq(v):
        return "[" + " ".join(_format(_Spec("", None, spec.prec, verb), x) for x in v) + "]"
    if isinstance(v, Mapping):
        inner = _Spec("", None, spec.prec, verb)
        return "map[" + " ".join(f"{_format(inner, k)}:{_format(inner, x)}" for k, x in
                                 sorted(v.items(), key=lambda kv: sort_key(kv[0]))) + "]"
    return spec.pad(str(v)) if verb in "sv" else _bad(spec, v)


def _sign(spec: _Spec, neg: bool) -> str:
    return "-" if neg else "+" if spec.plus else " " if spec.space else ""


def _format_int(spec: _Spec, v: int) -> str:
    verb = spec.verb
    if verb == "c":
        return spec.pad(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd")
    if verb == "q":
        return spec.pad(quote_rune(v))
    if verb == "U":
        return spec.pad(f"U+{v:04X}" + (f" '{chr(v)}'" if spec.sharp and 0 <= v <= 0x10FFFF else ""))
    bases = {"d": (10, ""), "v": (10, ""), "b": (2, "0b"), "o": (8, "0"), "O": (8, "0o"), "x": (16, "0x"),
             "X": (16, "0X")}
    if verb not in bases:
        return _format_float(spec, float(v)) if verb in "eEfFgG" else _bad(spec, v)
    base, prefix = bases[verb]
    digits = {10: "{:d}", 2: "{:b}", 8: "{:o}", 16: "{:x}"}[base].format(abs(v))
    if verb == "X":
        digits = digits.upper()
    if spec.prec is not None:
        digits = digits.zfill(spec.prec) if spec.prec or v else ""
    if not (spec.sharp or verb == "O") or base == 10:
        prefix = ""
    return spec.pad(_sign(spec, v < 0) + prefix + digits, numeric=spec.prec is None)


def _format_float(spec: _Spec, v: float) -> str:
    verb = spec.verb
    if verb not in "eEfFgGv":
        return _bad(spec, v)
    special = _special(v)
    if special:
        body = special.lstrip("+") if not spec.plus else special
        return spec.pad(body)
    if verb in "vgG" and spec.prec is None:
        body = format_float(abs(v)) if verb in "vg" else format_float(abs(v)).upper()
    else:
        prec = 6 if spec.prec is None else spec.prec
        body = f"{abs(v):.{prec}{'f' if verb in 'fF' else 'e' if verb in 'eE' else 'g'}}"
        body = body.upper() if verb in "EG" else body
    neg = math.copysign(1, v) < 0
    return spec.pad(_sign(spec, neg) + body, numeric=True)


def _format_str(spec: _Spec, s: str) -> str:
    verb = spec.verb
    if spec.prec is not None and verb in "sqv":
        s = s[:spec.prec]
    if verb in "sv":
        return spec.pad(s)
    if verb == "q":
        if spec.sharp and "`" not in s and all(c.isprintable() or c == "\t" for c in s):
            return spec.pad("`" + s + "`")
        return spec.pad(quote(s, ascii_only=spec.plus))
    if verb in "xX":
        data = s.encode()
        if spec.prec is not None:
            data = data[:spec.prec]
        sep = " " if spec.space else ""
        pre = ("0x" if verb == "x" else "0X") if spec.sharp else ""
        body = sep.join(pre + f"{b:02x}" for b in data) if sep else pre + data.hex()
        return spec.pad(body.upper() if verb == "X" and not pre else body if verb == "x" else
                        pre + body[len(pre):].upper())
    return _bad(spec, s)
