"""Go text/template's predefined functions: and or not eq ne lt le gt ge len index slice print printf println
html js urlquery call.

They follow ``text/template/funcs.go``: ``eq`` takes several arguments and is
true when the first equals any other; comparing an int with a string is an
error (``incompatible types for comparison``), comparing with nil is not;
``and``/``or`` short-circuit and return an argument, not a boolean (the
executor evaluates them lazily; these bodies serve ``call`` and pipelines).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from imgbuild.gotemplate.calls import gofunc
from imgbuild.gotemplate.errors import FuncError
from imgbuild.gotemplate.gofmt import sprint, sprintf, sprintln
from imgbuild.gotemplate.values import NOVALUE, go_type, is_seq, truth

__all__ = ["BUILTINS"]


def _ind(v: object) -> object:
    return NOVALUE if v is None else v


_BASIC = frozenset(["bool", "int", "float64", "complex128", "string"])


def _basic(v: object) -> str | None:
    """Go's basicKind: the comparable kind of a scalar, None for anything else (nil, lists, maps)."""
    kind = go_type(v)
    return kind if kind in _BASIC else None


@gofunc("value", variadic="value")
def _and(*args: object) -> object:
    for a in args:
        if not truth(a):
            return a
    return args[-1]


@gofunc("value", variadic="value")
def _or(*args: object) -> object:
    for a in args:
        if truth(a):
            return a
    return args[-1]


@gofunc("value")
def _not(v: object) -> bool:
    return not truth(v)


def _equal(a: object, b: object) -> bool:
    k1, k2 = _basic(a), _basic(b)
    if k1 != k2:
        if a is not NOVALUE and b is not NOVALUE:
            raise FuncError("incompatible types for comparison")
        return False
    if k1 is not None:
        return a == b
    if a is NOVALUE or b is NOVALUE:
        return a is b
    if isinstance(a, (list, tuple, Mapping)) or isinstance(b, (list, tuple, Mapping)):
        raise FuncError(f"non-comparable types {go_type(a)}, {go_type(b)}")
    return a == b


@gofunc("value", variadic="value")
def _eq(a: object, *others: object) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    a = _ind(a)
    return any(_equal(a, _ind(b)) for b in others)


@gofunc("value", "value")
def _ne(a: object, b: object) -> bool:
    return not _equal(_ind(a), _ind(b))


def _less(a: object, b: object) -> bool:
    k1, k2 = _basic(_ind(a)), _basic(_ind(b))
    if k1 is None or k2 is None or k1 in ("bool", "complex128"):
        if k1 is not None and k2 is not None and k1 != k2:
            raise FuncError("incompatible types for comparison")
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    return a < b  # type: ignore[operator]


@gofunc("value", "value")
def _lt(a: object, b: object) -> bool:
    return _less(a, b)


@gofunc("value", "value")
def _le(a: object, b: object) -> bool:
    return _less(a, b) or _equal(_ind(a), _ind(b))


@gofunc("value", "value")
def _gt(a: object, b: object) -> bool:
    return not (_less(a, b) or _equal(_ind(a), _ind(b)))


@gofunc("value", "value")
def _ge(a: object, b: object) -> bool:
    return not _less(a, b)


@gofunc("value")
def _len(v: object) -> int:
    if v is None or v is NOVALUE:
        raise FuncError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, Mapping, bytes, bytearray)):
        return len(v)
    raise FuncError(f"len of type {go_type(v)}")


def _int_index(idx: object, size: int, slicing: bool = False) -> int:
    if idx is NOVALUE or idx is None:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise FuncError(f"cannot index slice/array with type {go_type(idx)}")
    if idx < 0 or idx > size or (idx == size and not slicing):
        raise FuncError(f"index out of range: {idx}")
    return idx


@gofunc("value", variadic="value")
def _index(item: object, *indexes: object) -> object:
    if _ind(item) is NOVALUE:
        raise FuncError("index of untyped nil")
    for idx in indexes:
        item = _ind(item)
        if item is NOVALUE:
            raise FuncError("index of untyped nil")
        if isinstance(item, str):
            data = item.encode()
            item = data[_int_index(idx, len(data))]
        elif is_seq(item) or isinstance(item, (bytes, bytearray)):
            item = item[_int_index(idx, len(item))]
        elif isinstance(item, Mapping):
            if idx is NOVALUE or idx is None:
                raise FuncError("value is nil; should be of type string")
            item = item.get(idx)  # type: ignore[call-overload]
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


@gofunc("value", variadic="value")
def _slice(item: object, *indexes: object) -> object:
    item = _ind(item)
    if item is NOVALUE:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    is_str = isinstance(item, str)
    if is_str and len(indexes) == 3:
        raise FuncError("cannot 3-index slice a string")
    if not (is_str or is_seq(item) or isinstance(item, (bytes, bytearray))):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    data = item.encode() if is_str else item
    size = len(data)  # type: ignore[arg-type]
    idx = [0, size]
    for i, x in enumerate(indexes[:2]):
        idx[i] = _int_index(x, size, slicing=True)
    if len(indexes) == 3:
        _int_index(indexes[2], size, slicing=True)
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    part = data[idx[0]:idx[1]]  # type: ignore[index]
    return part.decode("utf-8", "replace") if is_str else list(part)


def _text(args: tuple) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(list(args))


@gofunc(variadic="any")
def _html(*args: object) -> str:
    out = _text(args)
    for a, b in (("&", "&amp;"), ("'", "&#39;"), ('"', "&#34;"), ("<", "&lt;"), (">", "&gt;"), ("\0", "\ufffd")):
        out = out.replace(a, b)
    return out


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


@gofunc(variadic="any")
def _js(*args: object) -> str:
    out = []
    for c in _text(args):
        if c in _JS:
            out.append(_JS[c])
        elif c < " " or not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


@gofunc(variadic="any")
def _urlquery(*args: object) -> str:
    return urllib.parse.quote_plus(_text(args), safe="")


@gofunc(variadic="any")
def _print(*args: object) -> str:
    return sprint(list(args))


@gofunc("string", variadic="any")
def _printf(fmt: str, *args: object) -> str:
    return sprintf(fmt, list(args))


@gofunc(variadic="any")
def _println(*args: object) -> str:
    return sprintln(list(args))


@gofunc("value", variadic="value")
def _call(fn: object, *args: object) -> object:
    fn = _ind(fn)
    if fn is NOVALUE:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type(fn)}")
    return fn(*(None if a is NOVALUE else a for a in args))


BUILTINS = {
    "and": _and, "or": _or, "not": _not, "eq": _eq, "ne": _ne, "lt": _lt, "le": _le, "gt": _gt, "ge": _ge,
    "len": _len, "index": _index, "slice": _slice, "print": _print, "printf": _printf, "println": _println,
    "html": _html, "js": _js, "urlquery": _urlquery, "call": _call,
}
