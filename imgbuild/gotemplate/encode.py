"""JSON and YAML as helm's templates write and read them: Go's encoding/json and go-yaml v2 (through JSON).

``go_json`` writes what ``json.Marshal`` writes (sorted keys, ``<>&`` escaped,
``1`` for 1.0, ``0.000061`` not ``6.1e-05``). ``to_yaml`` writes what helm's
``toYaml`` writes: the data goes through JSON (so a whole float is an int), then
go-yaml v2 emits it: keys in go-yaml's natural order (``a1 < a01 < b9 < b10``),
a string that go-yaml would read back as something else (``"true"``, ``"08"``,
``"2024-01-02"``, ``"1_000"``) double-quoted, one starting with an indicator
single-quoted, multi-line ones as ``|`` blocks, long lines folded at 80 columns.
Simple data is written directly; anything else goes through PyYAML's emitter
(a port of the libyaml emitter go-yaml also ports) driven with go-yaml's
choices. Reading (``from_json``/``from_yaml``) gives what Go gives: every
number a float64, YAML 1.1 booleans (``y``, ``on``) as booleans.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import math
import re
from collections.abc import Mapping

import yaml

from imgbuild.gotemplate.gofmt import fmt_value, format_float, json_float
from imgbuild.gotemplate.values import NOVALUE, is_seq

__all__ = ["plain", "go_json", "from_json", "to_yaml", "from_yaml"]


def _key(k: object) -> str:
    return k if isinstance(k, str) else fmt_value(k)


def plain(v: object) -> object:
    """Data as encoding/json sees it: dicts with string keys, lists, scalars (NOVALUE is null)."""
    if v is NOVALUE or v is None or isinstance(v, (str, bool, int, float)):
        return None if v is NOVALUE else v
    if isinstance(v, Mapping):
        return {_key(k): plain(x) for k, x in v.items()}
    if is_seq(v):
        return [plain(x) for x in v]  # type: ignore[union-attr]
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)


def _json_scalar(x: object) -> str | None:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return json_float(x)
    return None


def _escape_html(s: str) -> str:
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace(
        "\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_json(v: object, indent: str | None = None, html: bool = True) -> str:
    """Go's json.Marshal (``indent``: MarshalIndent with that unit) of template data; ValueError for Inf/NaN."""
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
        sep = ": " if indent is not None else ":"
        parts = ([f"{enc(k, depth)}{sep}{enc(val, depth + 1)}" for k, val in sorted(items)]
                 if isinstance(x, dict) else [enc(val, depth + 1) for val in items])
        open_, close = ("{", "}") if isinstance(x, dict) else ("[", "]")
        if indent is None:
            return open_ + ",".join(parts) + close
        pad, inner = "\n" + indent * depth, "\n" + indent * (depth + 1)
        return open_ + inner + ("," + inner).join(parts) + pad + close
    return enc(plain(v), 0)


def _as_go_json(x: object) -> object:
    """Decoded data as Go's json.Unmarshal into interface{} gives it: every number a float64."""
    if isinstance(x, dict):
        return {k: _as_go_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_as_go_json(v) for v in x]
    if isinstance(x, int) and not isinstance(x, bool):
        return float(x)
    if isinstance(x, (datetime.date, datetime.datetime)):
        return x.isoformat()
    return x


def _decode_error(want: type, msg: str) -> object:
    return {"Error": msg} if want is dict else [msg]


def from_json(s: str, want: type) -> object:
    """helm's fromJson (``want`` dict) / fromJsonArray (list): the data, or the error in the result."""
    try:
        data = json.loads(s)
    except ValueError as exc:
        return _decode_error(want, str(exc))
    if not isinstance(data, want):
        return _decode_error(want, f"json: cannot unmarshal {type(data).__name__} into Go value")
    return _as_go_json(data)


class _Loader(yaml.SafeLoader):
    """PyYAML reading as go-yaml v2 does: YAML 1.1's ``y`` and ``n`` are booleans too."""

    bool_values = {**yaml.SafeLoader.bool_values, "y": True, "n": False}


_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


def from_yaml(s: str, want: type) -> object:
    """helm's fromYaml (``want`` dict) / fromYamlArray (list): the data, or the error in the result."""
    try:
        data = yaml.load(s, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return _decode_error(want, f"error converting YAML to JSON: {exc}".replace("\n", " "))
    if data is None:
        return want()
    if not isinstance(data, want):
        return _decode_error(want, "error unmarshaling JSON: cannot unmarshal into Go value")
    return _as_go_json(_keys_to_str(data))


def _keys_to_str(x: object) -> object:
    if isinstance(x, dict):
        return {_key(k): _keys_to_str(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_keys_to_str(v) for v in x]
    return x


# --- go-yaml v2's view of a plain scalar ---------------------------------------------------------------

_V2_NOT_STR = {w for b in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
               for w in (b, b.title(), b.upper())} | {"~", "", ".nan", ".NaN", ".NAN"} | {
    s + w for s in ("", "+", "-") for w in (".inf", ".Inf", ".INF")}
_V2_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_V2_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)")
_V2_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d{1,9})?"
                        r"(?:Z|[+-]\d{2}:\d{2}))|(?: \d{1,2}:\d{1,2}:\d{1,2}(?:\.\d{1,9})?))?")


def _is_timestamp(s: str) -> bool:
    m = _TIMESTAMP.fullmatch(s)
    if m is None:
        return False
    try:
        datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def plain_is_str(s: str) -> bool:
    """Whether go-yaml v2 reads ``s`` written plain back as a string (so it may stay unquoted)."""
    if s in _V2_NOT_STR:
        return False
    if s[0] in "+-.0123456789":
        p = s.replace("_", "")
        if _V2_INT.fullmatch(p) or _V2_FLOAT.fullmatch(p) and math.isfinite(float(p)):
            return False
        if _is_timestamp(s) or _V2_BASE60.fullmatch(s):
            return False
    return True


def _v2_less(a: str, b: str) -> int:
    """go-yaml v2's key order (keyList.Less): runs of digits compare as numbers, non-letters first."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        al, bl = a[i].isalpha(), b[i].isalpha()
        if al and bl:
            return -1 if a[i] < b[i] else 1
        if al or bl:
            return -1 if bl else 1
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai, bi = i, i
        while ai < len(a) and a[ai].isdecimal():
            an, ai = an * 10 + ord(a[ai]) - 48, ai + 1
        while bi < len(b) and b[bi].isdecimal():
            bn, bi = bn * 10 + ord(b[bi]) - 48, bi + 1
        if an != bn:
            return -1 if an < bn else 1
        if ai != bi:
            return -1 if ai < bi else 1
        return -1 if a[i] < b[i] else 1
    return (len(a) > len(b)) - (len(a) < len(b))


_KEY_ORDER = functools.cmp_to_key(_v2_less)


@functools.lru_cache(maxsize=1024)
def _ordered(keys: tuple[str, ...]) -> tuple[str, ...]:
    """``keys`` in go-yaml's order (Python's order when they are all ASCII letters, where the two agree)."""
    if all(k.isascii() and k.isalpha() for k in keys):
        return tuple(sorted(keys))
    return tuple(sorted(keys, key=_KEY_ORDER))


def _float_text(f: float) -> str:
    """A float64 as helm's toYaml writes it: through JSON, so a whole number that fits 64 bits is an int."""
    text = json_float(f)
    if re.fullmatch(r"-?\d+", text) and -(1 << 63) <= int(text) < (1 << 64):  # go-yaml reads it as an int
        return str(int(text))
    return format_float(f)


def _scalar_text(x: object) -> str:
    """A YAML null, boolean or number: JSON's text, except floats (go-yaml writes them its own way)."""
    return _float_text(x) if isinstance(x, float) else _json_scalar(x)  # type: ignore[return-value]


# --- the direct writer for simple data ----------------------------------------------------------------

_SIMPLE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./=+()-]*(?: [A-Za-z0-9_./=+()-]+)*")
_QUOTABLE = re.compile(r'[ !#-\[\]-~]*')


class _Fallback(Exception):
    """Something the direct writer does not write exactly as go-yaml: use the emitter."""


def _direct_str(s: str, room: int) -> str:
    if " " in s and len(s) > room:
        raise _Fallback  # go-yaml folds long lines at spaces
    if not plain_is_str(s):
        if _QUOTABLE.fullmatch(s):
            return '"' + s + '"'
        raise _Fallback
    if _SIMPLE.fullmatch(s) and not s.startswith("-"):
        return s
    raise _Fallback


def _direct(v: object, pad: str, out: list[str], lead: str) -> None:
    if isinstance(v, dict):
        for i, k in enumerate(_ordered(tuple(v))):
            key = _direct_str(k, 40) if len(k) < 40 else _fail()
            _direct_entry(v[k], f"{lead if i == 0 else pad}{key}:", pad, out)
    else:
        for i, x in enumerate(v):  # type: ignore[attr-defined]
            head = f"{lead if i == 0 else pad}-"
            if isinstance(x, (dict, list)) and x:
                _direct(x, pad + "  ", out, head + " ")
            else:
                out.append(f"{head} {_direct_leaf(x, 78 - len(head))}")


def _direct_entry(x: object, head: str, pad: str, out: list[str]) -> None:
    if isinstance(x, dict) and x:
        out.append(head)
        _direct(x, pad + "  ", out, pad + "  ")
    elif isinstance(x, list) and x:
        out.append(head)
        _direct(x, pad, out, pad)
    else:
        out.append(f"{head} {_direct_leaf(x, 78 - len(head))}")


def _direct_leaf(x: object, room: int) -> str:
    if isinstance(x, (dict, list)):
        return "{}" if isinstance(x, dict) else "[]"
    if isinstance(x, str):
        if "\n" in x:
            raise _Fallback
        return _direct_str(x, room)
    return _scalar_text(x)


def _fail() -> str:
    raise _Fallback


# --- the emitter path ---------------------------------------------------------------------------------

def _scalar_event(x: object) -> yaml.ScalarEvent:
    if not isinstance(x, str):
        return yaml.ScalarEvent(None, None, (True, True), _scalar_text(x), style=None)
    if "\n" in x:
        style = "|"
    elif plain_is_str(x) and not _V2_BASE60.fullmatch(x):
        style = None
    else:
        style = '"'
    return yaml.ScalarEvent(None, None, (True, True), x, style=style)


def _events(x: object, out: list) -> None:
    if isinstance(x, dict):
        out.append(yaml.MappingStartEvent(None, None, True, flow_style=not x))
        for k in _ordered(tuple(x)):
            out.append(_scalar_event(k))
            _events(x[k], out)
        out.append(yaml.MappingEndEvent())
    elif isinstance(x, list):
        out.append(yaml.SequenceStartEvent(None, None, True, flow_style=not x))
        for item in x:
            _events(item, out)
        out.append(yaml.SequenceEndEvent())
    else:
        out.append(_scalar_event(x))


class _Dumper(yaml.SafeDumper):
    """PyYAML's emitter with libyaml's rule that an empty scalar may be a simple key (``"": x``)."""

    def check_simple_key(self) -> bool:  # noqa: D102
        event = self.event
        if isinstance(event, yaml.ScalarEvent) and event.value == "":
            return True
        return super().check_simple_key()


def _emitted(data: object) -> str:
    events: list = [yaml.StreamStartEvent(), yaml.DocumentStartEvent(explicit=False)]
    _events(data, events)
    events += [yaml.DocumentEndEvent(explicit=False), yaml.StreamEndEvent()]
    text = yaml.emit(events, Dumper=_Dumper, allow_unicode=True, width=80)
    return text[:-4] if text.endswith("\n...\n") else text  # PyYAML ends an open-ended document: go-yaml does not


def to_yaml(v: object) -> str:
    """Helm's toYaml: go-yaml v2's block YAML of the data (through JSON), without the trailing newline."""
    data = plain(v)
    if not _finite(data):  # json.Marshal fails on Inf/NaN, and helm's toYaml then gives ""
        return ""
    try:
        if isinstance(data, (dict, list)) and data:
            out: list[str] = []
            _direct(data, "", out, "")
            return "\n".join(out)
        return _direct_leaf(data, 78)
    except _Fallback:
        return _emitted(data).removesuffix("\n")


def _finite(x: object) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    return True
