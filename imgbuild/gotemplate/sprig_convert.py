"""Sprig's (and helm's) conversions: int/float64/atoi, integer math, toJson/fromJson, toYaml/fromYaml, semver.

Numbers convert as spf13/cast does (``"0x1F"`` is 31, ``"12.0"`` is 12, junk is
0). JSON is written as Go's encoding/json writes it (sorted keys, ``<>&``
escaped, ``1`` for 1.0) and read as Go reads it into ``interface{}`` (every
number a float64); YAML is written as helm's toYaml writes it (through JSON:
sorted keys, block style, strings that would read as another type in double
quotes, multi-line strings as ``|`` blocks, no trailing newline).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping

import yaml

from imgbuild.gotemplate import semver
from imgbuild.gotemplate.calls import gofunc
from imgbuild.gotemplate.errors import FuncError
from imgbuild.gotemplate.gofmt import fmt_value
from imgbuild.gotemplate.sprig_strings import strval
from imgbuild.gotemplate.values import NOVALUE, is_seq

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


def _json_float(f: float) -> str:
    if not math.isfinite(f):
        raise ValueError(f"json: unsupported value: {fmt_value(f)}")
    if f == int(f) and abs(f) < 1e21:
        return "-0" if f == 0 and math.copysign(1, f) < 0 else str(int(f))
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        text = repr(f).replace("e-0", "e-").replace("e+0", "e+")
        return text if "e" in text else repr(f)
    return repr(f)


def _plain(v: object) -> object:
    """Data as encoding/json sees it: dicts with string keys, lists, scalars (NOVALUE is null)."""
    if v is NOVALUE or v is None or isinstance(v, (str, bool, int, float)):
        return None if v is NOVALUE else v
    if isinstance(v, Mapping):
        return {strval(k): _plain(x) for k, x in v.items()}
    if is_seq(v):
        return [_plain(x) for x in v]  # type: ignore[union-attr]
    if isinstance(v, (bytes, bytearray)):
        import base64
        return base64.b64encode(v).decode()
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)


def _escape_html(s: str) -> str:
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace(
        "\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _json_scalar(x: object) -> str | None:
    """JSON (and so helm's YAML) text of null, a boolean or a number; None for anything else."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return _json_float(x)
    return None


def go_json(v: object, indent: str | None = None, html: bool = True) -> str:
    """Go's json.Marshal (``indent``: MarshalIndent with that unit) of template data."""
    def enc(x: object, depth: int) -> str:
        scalar = _json_scalar(x)
        if scalar is not None:
            return scalar
        if isinstance(x, str):
            s = json.dumps(x, ensure_ascii=False)
            return _escape_html(s) if html else s
        items = list(x.items()) if isinstance(x, dict) else list(x)  # type: ignore[union-attr]
        if not items:
            return "{}" if isinstance(x, dict) else "[]"
        if isinstance(x, dict):
            parts = [f"{enc(k, depth)}:{' ' if indent is not None else ''}{enc(val, depth + 1)}"
                     for k, val in sorted(items)]
        else:
            parts = [enc(val, depth + 1) for val in items]
        open_, close = ("{", "}") if isinstance(x, dict) else ("[", "]")
        if indent is None:
            return open_ + ",".join(parts) + close
        pad, inner = "\n" + indent * depth, "\n" + indent * (depth + 1)
        return open_ + inner + ("," + inner).join(parts) + pad + close
    return enc(_plain(v), 0)


def _from_go_json(x: object) -> object:
    if isinstance(x, dict):
        return {k: _from_go_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_from_go_json(v) for v in x]
    if isinstance(x, int) and not isinstance(x, bool):
        return float(x)
    return x


def _from_json(s: str, want: type) -> object:
    try:
        data = json.loads(s)
    except ValueError as exc:
        return _decode_error(want, str(exc))
    if not isinstance(data, want):
        return _decode_error(want, f"json: cannot unmarshal {type(data).__name__} into Go value")
    return _from_go_json(data)


def _decode_error(want: type, msg: str) -> object:
    return {"Error": msg} if want is dict else [msg]


_BOOLISH = {w for b in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
            for w in (b, b.title(), b.upper())} | {"~"}


class _Loader(yaml.SafeLoader):
    """PyYAML reading as go-yaml v2 does: YAML 1.1's ``y`` and ``n`` are booleans too."""

    bool_values = {**yaml.SafeLoader.bool_values, "y": True, "n": False}


_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """PyYAML writing as go-yaml v2 does: ambiguous strings double-quoted, multi-line ones as blocks."""

    def represent_str(self, data: str) -> yaml.ScalarNode:  # noqa: D102
        if "\n" in data:
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        plain_tag = self.resolve(yaml.ScalarNode, data, (True, False))
        style = '"' if plain_tag != "tag:yaml.org,2002:str" or data in _BOOLISH else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    def represent_float(self, data: float) -> yaml.ScalarNode:  # noqa: D102
        text = _json_float(data)
        tag = "tag:yaml.org,2002:int" if re.fullmatch(r"-?\d+", text) else "tag:yaml.org,2002:float"
        return self.represent_scalar(tag, text)


_Dumper.add_representer(str, _Dumper.represent_str)
_Dumper.add_representer(float, _Dumper.represent_float)


_PLAIN_STR = re.compile(r"[A-Za-z_/][A-Za-z0-9_./=+@()-]*(?: [A-Za-z0-9_./=+@()-]+)*")


class _Fallback(Exception):
    """The data holds something the direct emitter does not write exactly as go-yaml: use PyYAML."""


def _scalar(v: object) -> str:
    scalar = _json_scalar(v)
    if scalar is not None:
        return scalar
    if isinstance(v, str) and v in _BOOLISH:
        return '"' + v + '"'
    if isinstance(v, str) and _PLAIN_STR.fullmatch(v):
        return v
    raise _Fallback


def _emit(v: object, pad: str, out: list[str], lead: str) -> None:
    """Append block YAML of a non-empty dict or list to ``out``; ``lead`` starts the first line."""
    if isinstance(v, dict):
        for i, k in enumerate(sorted(v)):
            if not isinstance(k, str) or not _PLAIN_STR.fullmatch(k):
                raise _Fallback
            key = f'"{k}"' if k in _BOOLISH else k
            _entry(v[k], f"{lead if i == 0 else pad}{key}:", pad + "  ", pad, out)
    else:
        for i, x in enumerate(v):  # type: ignore[attr-defined]
            head = f"{lead if i == 0 else pad}-"
            if isinstance(x, (dict, list)) and x:
                _emit(x, pad + "  ", out, head + " ")
            else:
                out.append(f"{head} {_empty_or_scalar(x)}")


def _entry(x: object, head: str, inner: str, pad: str, out: list[str]) -> None:
    if isinstance(x, dict) and x:
        out.append(head)
        _emit(x, inner, out, inner)
    elif isinstance(x, list) and x:
        out.append(head)
        _emit(x, pad, out, pad)
    else:
        out.append(f"{head} {_empty_or_scalar(x)}")


def _empty_or_scalar(x: object) -> str:
    if isinstance(x, (dict, list)):
        return "{}" if isinstance(x, dict) else "[]"
    return _scalar(x)


def _direct_yaml(data: object) -> str:
    if isinstance(data, (dict, list)):
        if not data:
            return "{}" if isinstance(data, dict) else "[]"
        out: list[str] = []
        _emit(data, "", out, "")
        return "\n".join(out)
    return _scalar(data)


def to_yaml(v: object) -> str:
    """Helm's toYaml: block-style YAML of the data with sorted keys and no trailing newline."""
    data = _plain(v)
    try:
        return _direct_yaml(data)
    except ValueError:  # a value JSON cannot hold (Inf, NaN): helm's toYaml gives ""
        return ""
    except _Fallback:
        pass
    try:
        text = yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=True,
                         allow_unicode=True, width=1 << 30)
    except (yaml.YAMLError, ValueError):
        return ""
    if text.endswith("\n...\n"):
        text = text[:-5]
    return text.removesuffix("\n")


def _yaml_plain(x: object) -> object:
    if isinstance(x, dict):
        return {strval(k) if not isinstance(k, str) else k: _yaml_plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_yaml_plain(v) for v in x]
    if isinstance(x, (datetime.date, datetime.datetime)):
        return x.isoformat()
    return _from_go_json(x)


def _from_yaml(s: str, want: type) -> object:
    try:
        data = yaml.load(s, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return _decode_error(want, f"error converting YAML to JSON: {exc}".replace("\n", " "))
    if data is None:
        return want()
    if not isinstance(data, want):
        return _decode_error(want, "error unmarshaling JSON: cannot unmarshal into Go value")
    return _yaml_plain(data)


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
    "divf": gofunc(A, variadic=A)(_divf), "maxf": gofunc(A, variadic=A)(lambda a, *v: max(map(to_float, (a, *v)))),
    "minf": gofunc(A, variadic=A)(lambda a, *v: min(map(to_float, (a, *v)))),
    "toJson": gofunc(A)(_safe(go_json)), "toRawJson": gofunc(A)(_safe(lambda v: go_json(v, html=False))),
    "toPrettyJson": gofunc(A)(_safe(lambda v: go_json(v, indent="  "))),
    "fromJson": gofunc(S)(lambda s: _from_json(s, dict)), "fromJsonArray": gofunc(S)(lambda s: _from_json(s, list)),
    "toYaml": gofunc(A)(to_yaml), "fromYaml": gofunc(S)(lambda s: _from_yaml(s, dict)),
    "fromYamlArray": gofunc(S)(lambda s: _from_yaml(s, list)),
    "semver": gofunc(S)(_semver), "semverCompare": gofunc(S, S)(semver.check),
}
