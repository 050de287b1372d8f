"""Sprig's list, dict, default and type functions: list/dict/get/set/merge/dig, first/rest/uniq/has, default,
empty, coalesce, ternary, required, fail, kindOf/typeOf.

Lists are Python lists (a Go ``[]interface{}``), dicts are dicts; functions that
Go sprig makes mutate (``set``, ``unset``, ``merge``) mutate here too and return
the dict. ``merge`` keeps the destination's non-empty values (mergo without
override), ``mergeOverwrite`` lets the sources win; both recurse into dicts.
``empty`` is Go's zero test: nil, false, 0, "" and empty lists and maps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from imgbuild.gotemplate.calls import gofunc
from imgbuild.gotemplate.errors import FuncError
from imgbuild.gotemplate.sprig_convert import to_int
from imgbuild.gotemplate.sprig_strings import strval
from imgbuild.gotemplate.values import NOVALUE, go_kind, go_type, is_seq, truth

__all__ = ["DATA_FUNCS"]


def _empty(v: object) -> bool:
    return not truth(v)


def _as_list(v: object, what: str) -> list:
    if is_seq(v):
        return list(v)  # type: ignore[arg-type]
    raise FuncError(f"Cannot {what} on type {go_type(v)}")


@gofunc("any", variadic="any")
def _default(d: object, *given: object) -> object:
    return d if not given or _empty(given[0]) else given[0]


@gofunc("any", "any", "bool")
def _ternary(vt: object, vf: object, cond: bool) -> object:
    return vt if cond else vf


@gofunc("string", "any")
def _required(msg: str, val: object) -> object:
    if val is None or val == "" and isinstance(val, str):
        raise FuncError(msg)
    return val


@gofunc("string")
def _fail(msg: str) -> str:
    raise FuncError(msg)


@gofunc(variadic="any")
def _dict(*args: object) -> dict:
    out: dict = {}
    for i in range(0, len(args), 2):
        out[strval(args[i])] = args[i + 1] if i + 1 < len(args) else ""
    return out


def _need_map(d: object) -> Mapping:
    if d is None:
        raise FuncError("assignment to entry in nil map")
    return d  # type: ignore[return-value]


def _set(d: dict, key: str, value: object) -> dict:
    _need_map(d)[key] = value  # type: ignore[index]
    return d


def _unset(d: dict, key: str) -> dict:
    if d is not None:
        d.pop(key, None)
    return d


def _deep_merge(dst: dict, src: Mapping, overwrite: bool) -> None:
    for k, sv in src.items():
        dv = dst.get(k, NOVALUE)
        if isinstance(dv, dict) and isinstance(sv, Mapping):
            _deep_merge(dv, sv, overwrite)
        elif dv is NOVALUE and sv is None and not overwrite:
            continue  # mergo leaves a nil source value out of a map that lacks the key
        elif dv is NOVALUE or overwrite or _empty(dv):
            dst[k] = copy.deepcopy(sv) if isinstance(sv, (dict, list)) else sv


def _merger(overwrite: bool):
    @gofunc("map", variadic="map")
    def merge(dst: dict, *srcs: Mapping) -> dict:
        dst = {} if dst is None else dst
        for src in srcs:
            if src is not None:
                _deep_merge(dst, src, overwrite)
        return dst
    return merge


def _deep_copy(v: object) -> object:
    if v is None:
        raise FuncError("deepCopy of nil")
    return copy.deepcopy(v)


@gofunc(variadic="any")
def _dig(*args: object) -> object:
    if len(args) < 3:
        raise FuncError("dig needs at least three arguments")
    d, default, keys = args[-1], args[-2], args[:-2]
    for k in keys:
        if not isinstance(k, str):
            raise FuncError(f"interface conversion: interface {{}} is {go_type(k)}, not string")
    for k in keys:
        if not isinstance(d, Mapping):
            raise FuncError(f"interface conversion: interface {{}} is {go_type(d)}, not map[string]interface {{}}")
        if k not in d:
            return default
        d = d[k]
    return d


def _keys(*dicts: Mapping) -> list:
    return [k for d in dicts if d for k in d]


def _pluck(name: str, *dicts: Mapping) -> list:
    return [d[name] for d in dicts if d and name in d]


def _pick(d: Mapping, *keys: str) -> dict:
    return {k: d[k] for k in keys if d and k in d}


def _omit(d: Mapping, *keys: str) -> dict:
    return {k: v for k, v in (d or {}).items() if k not in keys}


def _index_of(items: list, needle: object) -> int:
    for i, x in enumerate(items):
        if type(x) is type(needle) and x == needle:
            return i
    return -1


@gofunc("any")
def _uniq(v: object) -> list:
    out: list = []
    for x in _as_list(v, "uniq"):
        if _index_of(out, x) < 0:
            out.append(x)
    return out


@gofunc("any", "any")
def _has(needle: object, haystack: object) -> bool:
    if haystack is None:
        return False
    return _index_of(_as_list(haystack, "find has"), needle) >= 0


@gofunc("any", variadic="any")
def _without(v: object, *omit: object) -> list:
    return [x for x in _as_list(v, "find without") if _index_of(list(omit), x) < 0]


@gofunc(variadic="any")
def _concat(*lists: object) -> list:
    out: list = []
    for x in lists:
        if not is_seq(x):
            raise FuncError(f"Cannot concat type {go_type(x)} as list")
        out.extend(x)  # type: ignore[arg-type]
    return out


def _slicer(what: str, pick, empty: object = None):
    @gofunc("any")
    def fn(v: object) -> object:
        items = _as_list(v, f"find {what}")
        return pick(items) if items else empty
    return fn


@gofunc("any", variadic="any")
def _slice(v: object, *indices: object) -> object:
    """Sprig's slice, which shadows Go's builtin in helm and sealos: lists only, ``slice L [start [end]]``."""
    if not is_seq(v):
        raise FuncError(f"list should be type of slice or array but {go_kind(v)}")
    items = list(v)  # type: ignore[arg-type]
    if not items:
        return None
    start = to_int(indices[0]) if indices else 0
    end = to_int(indices[1]) if len(indices) > 1 else len(items)
    if not 0 <= start <= end <= len(items):
        raise FuncError(f"runtime error: slice bounds out of range [{start}:{end}] with capacity {len(items)}")
    return items[start:end]


@gofunc("any", "any")
def _push(v: object, x: object) -> list:
    return _as_list(v, "push") + [x]


@gofunc("any", "any")
def _prepend(v: object, x: object) -> list:
    return [x] + _as_list(v, "prepend")


def _until_step(start: int, stop: int, step: int) -> list[int]:
    if stop < start:
        return list(range(start, stop, step)) if step < 0 else []
    return list(range(start, stop, step)) if step > 0 else []


@gofunc("int")
def _until(count: int) -> list[int]:
    return _until_step(0, count, 1 if count >= 0 else -1)


@gofunc(variadic="int")
def _seq(*p: int) -> str:
    if len(p) == 1:
        inc = -1 if p[0] < 1 else 1
        nums = _until_step(1, p[0] + inc, inc)
    elif len(p) == 2:
        inc = -1 if p[1] < p[0] else 1
        nums = _until_step(p[0], p[1] + inc, inc)
    elif len(p) == 3:
        inc = -1 if p[2] < p[0] else 1
        nums = [] if inc < 0 and p[1] > 0 else _until_step(p[0], p[2] + inc, p[1])
    else:
        nums = []
    return " ".join(map(str, nums))


A, S, M = "any", "string", "map"
DATA_FUNCS: dict[str, object] = {
    "default": _default, "ternary": _ternary, "required": _required, "fail": _fail, "dict": _dict,
    "empty": gofunc(A)(_empty), "coalesce": gofunc(variadic=A)(lambda *v: next((x for x in v if not _empty(x)), None)),
    "all": gofunc(variadic=A)(lambda *v: all(map(truth, v))), "any": gofunc(variadic=A)(lambda *v: any(map(truth, v))),
    "list": gofunc(variadic=A)(lambda *v: list(v)), "tuple": gofunc(variadic=A)(lambda *v: list(v)),
    "get": gofunc(M, S)(lambda d, k: d[k] if d and k in d else ""), "set": gofunc(M, S, A)(_set),
    "unset": gofunc(M, S)(_unset), "hasKey": gofunc(M, S)(lambda d, k: bool(d) and k in d),
    "keys": gofunc(variadic=M)(_keys), "values": gofunc(M)(lambda d: list((d or {}).values())),
    "pluck": gofunc(S, variadic=M)(_pluck), "pick": gofunc(M, variadic=S)(_pick), "omit": gofunc(M, variadic=S)(_omit),
    "merge": _merger(False), "mergeOverwrite": _merger(True), "deepCopy": gofunc(A)(_deep_copy), "dig": _dig,
    "append": _push, "push": _push, "prepend": _prepend, "first": _slicer("first", lambda x: x[0]),
    "last": _slicer("last", lambda x: x[-1]), "rest": _slicer("rest", lambda x: x[1:], []),
    "initial": _slicer("initial", lambda x: x[:-1], []), "reverse": gofunc(A)(lambda v: _as_list(v, "reverse")[::-1]),
    "slice": _slice, "uniq": _uniq, "has": _has, "without": _without, "concat": _concat,
    "compact": gofunc(A)(lambda v: [x for x in _as_list(v, "compact") if not _empty(x)]),
    "until": _until, "untilStep": gofunc("int", "int", "int")(_until_step), "seq": _seq,
    "kindOf": gofunc(A)(go_kind), "kindIs": gofunc(S, A)(lambda t, v: go_kind(v) == t),
    "typeOf": gofunc(A)(go_type), "typeIs": gofunc(S, A)(lambda t, v: go_type(v) == t),
    "typeIsLike": gofunc(S, A)(lambda t, v: t in (go_type(v), "*" + go_type(v))),
    "deepEqual": gofunc(A, A)(lambda a, b: a == b),
}
