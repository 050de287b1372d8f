"""Straight-line Python for a template block: texts and simple prints inlined, other nodes called.

A block (a template body, or the body of an if/with/range) is a sequence of
texts and actions. Running it as a loop over one closure per node costs a call
per node and scatters the work over many small objects; this module instead
writes one Python function per block, whose lines append the texts, look a
field up in dot (``{{ .registryDomain }}``) or print an evaluator's value, and
call the closures of the other nodes (if, range, ...). The generated source
holds only generated names (``t0``, ``k1``, ``n2``): every constant, key and
closure is bound through the function's namespace, never written as code.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["straight_line"]

_SHORT = 4


def _closure(part: tuple, field: Callable, printable: Callable) -> Callable:
    kind = part[0]
    if kind == "text":
        text = part[1]
        return lambda st, dot, vs: st.out.append(text)
    if kind == "field":
        name, fw, aw = part[1:]

        def print_field(st: object, dot: object, vs: list) -> None:
            v = dot[name] if type(dot) is dict and name in dot else field(st, dot, name, fw, None)
            st.out.append(v if type(v) is str else printable(v, aw))  # type: ignore[attr-defined]
        return print_field
    if kind == "expr":
        ev, aw = part[1:]

        def print_expr(st: object, dot: object, vs: list) -> None:
            v = ev(st, dot, vs)
            st.out.append(v if type(v) is str else printable(v, aw))  # type: ignore[attr-defined]
        return print_expr
    return part[1]


def _looped(fns: list[Callable]) -> Callable:
    if len(fns) == 1:
        return fns[0]
    seq = tuple(fns)

    def run(st: object, dot: object, vs: list) -> None:
        for f in seq:
            f(st, dot, vs)
    return run


def _field_lines(i: int) -> list[str]:
    return [f"    if isd and k{i} in dot:",
            f"        v = dot[k{i}]",
            "    else:",
            f"        v = F(st, dot, k{i}, fw{i}, None)",
            f"    w(v if type(v) is str else P(v, aw{i}))"]


def straight_line(parts: list[tuple], field: Callable, printable: Callable) -> Callable:
    """One ``run(st, dot, vs)`` doing ``parts`` in order.

    Parts are ``("text", s)``, ``("field", name, field_where, action_where)`` (print dot's field),
    ``("expr", ev, action_where)`` (print ``ev(st, dot, vs)``) and ``("run", fn)`` (call ``fn(st, dot, vs)``).
    A short block (compiling Python source costs more than it saves there) gets a loop over closures.
    """
    if len(parts) <= _SHORT:
        return _looped([_closure(p, field, printable) for p in parts])
    ns: dict[str, object] = {"F": field, "P": printable, "D": dict}
    lines = ["def run(st, dot, vs):", "    w = st.out.append", "    isd = type(dot) is D"]
    for i, part in enumerate(parts):
        kind = part[0]
        if kind == "text":
            ns[f"t{i}"] = part[1]
            lines.append(f"    w(t{i})")
        elif kind == "field":
            ns[f"k{i}"], ns[f"fw{i}"], ns[f"aw{i}"] = part[1:]
            lines.extend(_field_lines(i))
        elif kind == "expr":
            ns[f"e{i}"], ns[f"aw{i}"] = part[1:]
            lines.append(f"    v = e{i}(st, dot, vs)")
            lines.append(f"    w(v if type(v) is str else P(v, aw{i}))")
        else:
            ns[f"n{i}"] = part[1]
            lines.append(f"    n{i}(st, dot, vs)")
    exec(compile("\n".join(lines) + "\n", "<gotemplate block>", "exec"), ns)  # noqa: S102 - generated names only
    return ns["run"]  # type: ignore[return-value]
