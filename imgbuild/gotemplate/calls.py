"""Calling template functions as Go does: arity checks, Go parameter types, errors as ``error calling f: ...``.

A function written for templates declares its Go parameter types with
:func:`gofunc` (``string``, ``int``, ``bool``, ``float64``, ``map``, ``list``,
``any``, and ``value`` for builtins that see Go's invalid "no value" itself).
Go rejects a nil or a wrongly typed argument for a typed parameter
(``invalid value; expected string``), so ``{{ .missing | upper }}`` fails in
helm and fails here too. A plain Python callable (``Template.funcs``) gets
``any`` parameters, its arity taken from its signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import NamedTuple

from imgbuild.gotemplate.values import NOVALUE, go_type, is_seq

__all__ = ["ANY", "gofunc", "FuncSpec", "spec_of", "converter", "converters", "caller", "failure", "ArgTypeError"]


class FuncSpec(NamedTuple):
    """How to call one function: its Go parameter types, variadic tail type, and the callable."""

    name: str
    fn: Callable
    params: tuple[str, ...]
    optional: int
    variadic: str | None

    def arity_error(self, got: int) -> str | None:
        """The Go message when ``got`` arguments do not fit, else None."""
        fixed = len(self.params)
        if self.variadic is not None:
            return None if got >= fixed else f"wrong number of args for {self.name}: want at least {fixed} got {got}"
        if fixed - self.optional <= got <= fixed:
            return None
        return f"wrong number of args for {self.name}: want {fixed} got {got}"

    def type_of(self, i: int) -> str:
        """The Go type of argument ``i``."""
        return self.params[i] if i < len(self.params) else self.variadic or "any"


def gofunc(*params: str, variadic: str | None = None) -> Callable[[Callable], Callable]:
    """Declare a template function's Go parameter types (and the type of its ``...`` tail)."""
    def mark(fn: Callable) -> Callable:
        if not inspect.isfunction(fn):  # a builtin such as str.upper takes no attributes: wrap it
            inner = fn

            def fn(*args: object) -> object:
                return inner(*args)
        fn.__gotypes__ = (tuple(params), variadic)  # type: ignore[attr-defined]
        return fn
    return mark


def spec_of(name: str, fn: Callable) -> FuncSpec:
    """The calling convention of ``fn``: declared with :func:`gofunc`, or read from its signature."""
    declared = getattr(fn, "__gotypes__", None)
    if declared is not None:
        return FuncSpec(name, fn, declared[0], 0, declared[1])
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return FuncSpec(name, fn, (), 0, "any")
    params, optional, variadic = [], 0, None
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            params.append("any")
            optional += p.default is not p.empty
        elif p.kind is p.VAR_POSITIONAL:
            variadic = "any"
    return FuncSpec(name, fn, tuple(params), optional, variadic)


class ArgTypeError(Exception):
    """An argument that does not fit its Go parameter type (``invalid value; expected string``)."""


def _any(v: object) -> object:
    return None if v is NOVALUE else v


ANY = _any  # the converter of an ``interface{}`` parameter: Go's invalid value becomes nil


def _value(v: object) -> object:
    return v


def _typed(kind: str) -> Callable[[object], object]:
    fits, go_name = _FITS[kind], _GO_NAMES[kind]
    exact = {"string": str, "int": int, "bool": bool, "map": dict, "list": list}.get(kind)

    def conv(v: object) -> object:
        if type(v) is exact:
            return v
        if v is NOVALUE:  # Go's invalid value: the zero value of a map or list, an error otherwise
            if kind in ("map", "list"):
                return None
            raise ArgTypeError(f"invalid value; expected {go_name}")
        if v is None:  # a nil interface (a null map entry) fits no typed parameter
            raise ArgTypeError(f"wrong type for value; expected {go_name}; got interface {{}}")
        if fits(v):
            return float(v) if kind == "float64" else v
        raise ArgTypeError(f"wrong type for value; expected {go_name}; got {go_type(v)}")
    return conv


def converter(kind: str) -> Callable[[object], object]:
    """The function that checks and converts an argument for Go parameter type ``kind``."""
    return _any if kind == "any" else _value if kind == "value" else _typed(kind)


_GO_NAMES = {"string": "string", "int": "int", "bool": "bool", "float64": "float64",
             "map": "map[string]interface {}", "list": "[]interface {}"}
_FITS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "float64": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "map": lambda v: isinstance(v, Mapping),
    "list": is_seq,
}


def failure(name: str, exc: Exception) -> str:
    """Go's message for a function that failed with ``exc``."""
    if isinstance(exc, ArgTypeError):
        return str(exc)
    if isinstance(exc, ZeroDivisionError):
        return f"error calling {name}: runtime error: integer divide by zero"
    return f"error calling {name}: {exc or type(exc).__name__}"


def converters(spec: FuncSpec, nargs: int) -> tuple[Callable[[object], object], ...]:
    """The converters of ``nargs`` arguments to ``spec``, by position."""
    return tuple(converter(spec.type_of(i)) for i in range(nargs))


def caller(spec: FuncSpec, nargs: int) -> Callable[[list], object]:
    """A function calling ``spec`` with ``nargs`` evaluated arguments, each checked for its Go type."""
    fn = spec.fn
    convs = converters(spec, nargs)
    if all(c is _any for c in convs):
        return lambda values: fn(*[None if v is NOVALUE else v for v in values])
    return lambda values: fn(*[c(v) for c, v in zip(convs, values)])


