"""Sprig's (and helm's) conversions: int/float64/atoi, integer and float math, toJson/toYaml and back, semver.

Numbers convert as spf13/cast does (``"0x1F"`` is 31, ``"12.0"`` is 12, junk is
0); integer math is Go's (``div -7 2`` is -3); JSON and YAML are
:mod:`~imgbuild.gotemplate.encode`'s, written and read as Go and helm do.
"""

from __future__ import annotations

import math
import re

from imgbuild.gotemplate import semver
from imgbuild.gotemplate.calls import gofunc
from imgbuild.gotemplate.encode import from_json, from_yaml, go_json, to_yaml
from imgbuild.gotemplate.errors import FuncError

__all__ = ["CONVERT_FUNCS", "to_int", "to_float", "go_json", "to_yaml"]

_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)")


def to_int(v: object) -> int:
    """spf13/cast ToInt64: numbers truncated, bools 1/0, strings parsed with Go's base prefixes, else 0."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) else 0
    if isinstance(v, str):
        s = re.sub(r"\.0+$", "", v) if "." in v else v
        if not _INT.fullmatch(s):
            return 0
        body = s.lstrip("+-").replace("_", "")
        sign = -1 if s.startswith("-") else 1
        if len(body) > 1 and body[0] == "0" and body[1].isdigit():
            return sign * int(body, 8)
        return sign * int(body, 0)
    return 0


def to_float(v: object) -> float:
    """spf13/cast ToFloat64: numbers, bools 1/0, numeric strings, else 0."""
    if isinstance(v, (bool, int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return 0.0
    return 0.0


def _atoi(s: str) -> int:
    return int(s) if re.fullmatch(r"[+-]?[0-9]+", s) else 0


def _div(a: object, b: object) -> int:
    x, y = to_int(a), to_int(b)
    if y == 0:
        raise ZeroDivisionError
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def _mod(a: object, b: object) -> int:
    x, y = to_int(a), to_int(b)
    return x - _div(x, y) * y


def _divf(a: object, *v: object) -> float:
    """Sprig's divf (decimal division): a divided by each of v in turn."""
    q = to_float(a)
    for x in v:
        d = to_float(x)
        if d == 0:
            raise FuncError("decimal division by 0")
        q /= d
    return q + 0.0


def _semver(text: str) -> semver.Version:
    return semver.parse_version(text)


def _safe(fn):
    def wrapped(v: object) -> str:
        try:
            return fn(v)
        except (ValueError, TypeError, RecursionError):
            return ""
    return wrapped


def _minmax(pick):
    @gofunc("any", variadic="any")
    def fn(a: object, *rest: object) -> int:
        return pick([to_int(a), *map(to_int, rest)])
    return fn


A, S = "any", "string"
CONVERT_FUNCS: dict[str, object] = {
    "int": gofunc(A)(to_int), "int64": gofunc(A)(to_int), "float64": gofunc(A)(to_float),
    "atoi": gofunc(S)(_atoi), "add": gofunc(variadic=A)(lambda *v: sum(map(to_int, v))),
    "add1": gofunc(A)(lambda a: to_int(a) + 1), "sub": gofunc(A, A)(lambda a, b: to_int(a) - to_int(b)),
    "mul": gofunc(A, variadic=A)(lambda a, *v: math.prod([to_int(a), *map(to_int, v)])),
    "div": gofunc(A, A)(_div), "mod": gofunc(A, A)(_mod), "max": _minmax(max), "min": _minmax(min),
    "floor": gofunc(A)(lambda a: float(math.floor(to_float(a)))),
    "ceil": gofunc(A)(lambda a: float(math.ceil(to_float(a)))),
    "addf": gofunc(variadic=A)(lambda *v: math.fsum(map(to_float, v)) + 0.0),
    "subf": gofunc(A, variadic=A)(lambda a, *v: to_float(a) - math.fsum(map(to_float, v)) + 0.0),
    "mulf": gofunc(A, variadic=A)(lambda a, *v: math.prod([to_float(a), *map(to_float, v)]) + 0.0),
    "divf": gofunc(A, variadic=A)(_divf), "maxf": gofunc(A, variadic=A)(lambda a, *v: max(map(to_float, (a, *v))) + 0.0),
    "minf": gofunc(A, variadic=A)(lambda a, *v: min(map(to_float, (a, *v)))),
    "toJson": gofunc(A)(_safe(go_json)), "toRawJson": gofunc(A)(_safe(lambda v: go_json(v, html=False))),
    "toPrettyJson": gofunc(A)(_safe(lambda v: go_json(v, indent="  "))),
    "fromJson": gofunc(S)(lambda s: from_json(s, dict)), "fromJsonArray": gofunc(S)(lambda s: from_json(s, list)),
    "toYaml": gofunc(A)(to_yaml), "fromYaml": gofunc(S)(lambda s: from_yaml(s, dict)),
    "fromYamlArray": gofunc(S)(lambda s: from_yaml(s, list)),
    "semver": gofunc(S)(_semver), "semverCompare": gofunc(S, S)(semver.check),
}
