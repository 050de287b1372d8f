"""Executing a parsed template: the tree is compiled once into closures, then run per data.

Each block becomes one generated function (:mod:`codegen`) and each other node
``run(st, dot, vs)`` (``st`` the execution state with the output list, ``dot``
the current data, ``vs`` the template's variable frame), each expression
``ev(st, dot, vs)``; a one-field action such as ``{{ .registryDomain }}`` is an
inline dict lookup and an append. Semantics are those
of ``text/template/exec.go``: a pipeline's nil becomes "no value", a missing
map key follows ``missingkey``, a field of a nil value is an error, ranges over
maps go in sorted key order, ``and``/``or`` short-circuit. Every runtime error
is a TemplateError naming the node's ``file:line:col`` and Go's ``at <...>`` context.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping

from imgbuild.gotemplate import nodes as n
from imgbuild.gotemplate.builtins import BUILTINS
from imgbuild.gotemplate.codegen import straight_line
from imgbuild.gotemplate.calls import ANY, FuncSpec, caller, converters, failure, spec_of
from imgbuild.gotemplate.errors import TemplateError
from imgbuild.gotemplate.gofmt import fmt_value, sort_key
from imgbuild.gotemplate.parse import Tree
from imgbuild.gotemplate.values import NO_VALUE_TEXT, NOVALUE, MethodMap, go_type, truth

__all__ = ["State", "compile_tree", "run_template", "MISSINGKEY", "MAX_DEPTH"]

MISSINGKEY = {"error": 0, "zero": 1, "default": 2, "invalid": 2}
MAX_DEPTH = 64
_UNSET = object()
_SCALARS = (str, int, float, bool, complex, list, tuple, bytes, bytearray)
_PRINT_FAST = frozenset((int, float, bool, list, dict))


class State:
    """One execution: the output pieces, the missingkey mode, the template set, the template depth."""

    __slots__ = ("out", "missing", "tset", "depth")

    def __init__(self, tset: object, missing: int, depth: int = 0) -> None:
        self.out: list[str] = []
        self.missing = missing
        self.tset = tset
        self.depth = depth


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Where:
    """A node of a tree, to build an error message naming its position and Go's ``at <context>`` text."""

    __slots__ = ("tree", "node")

    def __init__(self, tree: Tree, node: object) -> None:
        self.tree, self.node = tree, node

    @property
    def ctx(self) -> str:
        """The node in template syntax, cut at 20 characters as Go does."""
        ctx = str(self.node)
        return ctx if len(ctx) <= 20 else ctx[:20] + "..."

    def error(self, msg: str) -> TemplateError:
        """A TemplateError for ``msg`` at this node."""
        tree = self.tree
        line, col = tree.positions.at(self.node.pos)  # type: ignore[attr-defined]
        head = f"at <{self.ctx}>" if tree.name == tree.src else f'executing "{tree.name}" at <{self.ctx}>'
        return TemplateError(f"{head}: {msg}", tree.src, line, col)


def printable(v: object, w: Where) -> str:
    """The text ``{{ v }}`` prints: Go's Fprint, and ``<no value>`` for nil."""
    if type(v) in _PRINT_FAST:
        return fmt_value(v)
    if v is NOVALUE or v is None:
        return NO_VALUE_TEXT
    if inspect.isroutine(v):
        raise w.error(f"can't print {w.ctx} of type {go_type(v)}")
    return fmt_value(v)


@functools.lru_cache(maxsize=256)
def _method_spec(func: Callable, name: str) -> FuncSpec:
    """The calling convention of a method, read once per function (its bound instances differ per call)."""
    spec = spec_of(name, func)
    if hasattr(func, "__gotypes__") or not spec.params:
        return spec
    return spec._replace(params=spec.params[1:], optional=min(spec.optional, len(spec.params) - 1))  # self


def _method(st: State, attr: Callable, name: str, args: list, w: Where) -> object:
    func = getattr(attr, "__func__", None)
    spec = _method_spec(func, name)._replace(fn=attr) if func is not None else spec_of(name, attr)
    err = spec.arity_error(len(args))
    if err:
        raise w.error(err)
    try:
        return caller(spec, len(args))(args)
    except (TemplateError, RecursionError):
        raise
    except Exception as exc:  # the method's own failure, reported as Go reports an error result
        raise w.error(failure(name, exc)) from exc


def field(st: State, recv: object, name: str, w: Where, args: list | None) -> object:
    """Go's evalField: ``recv.name`` for a map, an object's attribute, or a method call with ``args``."""
    if recv is NOVALUE:
        if st.missing == 0:
            raise w.error(f'nil data; no entry for key "{name}"')
        return NOVALUE
    if recv is None:
        raise w.error(f"nil pointer evaluating interface {{}}.{name}")
    method = recv.go_method(name) if isinstance(recv, MethodMap) else None
    if method is not None:
        return _method(st, method, name, args or [], w)
    if isinstance(recv, Mapping):
        if args:
            raise w.error(f"{name} is not a method but has arguments")
        try:
            return recv[name]
        except KeyError:
            if st.missing == 0:
                raise w.error(f'map has no entry for key "{name}"') from None
            return None if st.missing == 1 else NOVALUE
    attr = _UNSET if isinstance(recv, _SCALARS) or name.startswith("_") else getattr(recv, name, _UNSET)
    if attr is _UNSET:
        raise w.error(f"can't evaluate field {name} in type {go_type(recv)}")
    if callable(attr) and not isinstance(attr, type):
        return _method(st, attr, name, args or [], w)
    if args:
        raise w.error(f"{name} has arguments but cannot be invoked as function")
    return attr


def run_template(st: State, name: str, dot: object, w: Where | None) -> None:
    """Execute template ``name`` of the state's set with ``dot`` (its ``$``), appending to ``st.out``."""
    entry = st.tset.lookup(name)  # type: ignore[attr-defined]
    if entry is None:
        msg = f'template "{name}" not defined'
        raise w.error(msg) if w else TemplateError(msg, name)
    if st.depth >= MAX_DEPTH:
        msg = f"exceeded maximum template depth ({MAX_DEPTH})"
        raise w.error(msg) if w else TemplateError(msg, name)
    fn, nslots = entry
    vs = [_UNSET] * nslots
    vs[0] = dot
    st.depth += 1
    try:
        fn(st, dot, vs)
    finally:
        st.depth -= 1


def _items(val: object, ndecl: int, w: Where) -> object:
    """What ``range`` walks: (key, element) pairs, or None when there is nothing (nil, empty)."""
    if isinstance(val, (list, tuple)):
        return enumerate(val) if val else None
    if isinstance(val, Mapping):
        return [(k, val[k]) for k in sorted(val, key=sort_key)] if val else None
    if val is NOVALUE or val is None:
        return None
    if isinstance(val, int) and not isinstance(val, bool):
        if ndecl > 1:
            raise w.error(f"can't use {val} to iterate over more than one variable")
        return ((i, i) for i in range(val)) if val > 0 else None
    raise w.error(f"range can't iterate over {fmt_value(val)}")


def _raiser(w: Where, msg: str) -> Callable:
    """An evaluator that fails with ``msg`` when run (Go reports these at execution, not at parse)."""
    def run(*_: object) -> object:
        raise w.error(msg)
    return run


class _Compiler:
    def __init__(self, tree: Tree, resolve: Callable[[str], FuncSpec | None]) -> None:
        self.tree = tree
        self.resolve = resolve

    def where(self, node: object) -> Where:
        return Where(self.tree, node)

    # statements
    def block(self, nodes: list) -> Callable:
        """One function running ``nodes`` in order (see :mod:`codegen`)."""
        parts: list[tuple] = []
        for node in nodes:
            if isinstance(node, n.Text):
                if parts and parts[-1][0] == "text":
                    parts[-1] = ("text", parts[-1][1] + node.text)
                else:
                    parts.append(("text", node.text))
            elif isinstance(node, n.Action) and not node.pipe.decl:
                parts.append(self.action(node))
            else:
                parts.append(("run", self.node(node)))
        if len(parts) == 1 and parts[0][0] == "run":
            return parts[0][1]
        return straight_line(parts, field, printable)

    def node(self, node: object) -> Callable:
        if isinstance(node, n.Action):  # one that declares or assigns variables: it prints nothing
            return self.pipe(node.pipe)
        if isinstance(node, n.Range):
            return self.range_(node)
        if isinstance(node, n.If):
            return self.if_(node)
        if isinstance(node, n.TemplateCall):
            return self.template_call(node)
        exc = _Continue if isinstance(node, n.Continue) else _Break

        def jump(st: State, dot: object, vs: list) -> None:
            raise exc
        return jump

    def action(self, node: n.Action) -> tuple:
        """A printing action as a block part: a field of dot, or an expression."""
        pipe, w = node.pipe, self.where(node)
        first = pipe.cmds[0].args
        if len(pipe.cmds) == 1 and len(first) == 1 and isinstance(first[0], n.Field) and len(first[0].names) == 1:
            return ("field", first[0].names[0], self.where(first[0]), w)
        return ("expr", self.command(pipe.cmds[0], False) if len(pipe.cmds) == 1 else self.pipe(pipe), w)

    def if_(self, node: n.If) -> Callable:
        ev = self.pipe(node.pipe)
        body = self.block(node.body)
        other = self.block(node.other) if node.other is not None else None
        with_ = isinstance(node, n.With)

        def run(st: State, dot: object, vs: list) -> None:
            v = ev(st, dot, vs)
            if truth(v):
                body(st, v if with_ else dot, vs)
            elif other is not None:
                other(st, dot, vs)
        return run

    def range_(self, node: n.Range) -> Callable:
        ev = self.pipe(node.pipe, declare=False)
        body = self.block(node.body)
        other = self.block(node.other) if node.other is not None else None
        slots, w = node.pipe.slots, self.where(node)
        ndecl = len(slots)
        elem = slots[-1] if slots else None
        key = slots[0] if ndecl == 2 else None

        def run(st: State, dot: object, vs: list) -> None:
            items = _items(ev(st, dot, vs), ndecl, w)
            if items is None:
                if other is not None:
                    other(st, dot, vs)
                return
            for k, e in items:  # type: ignore[attr-defined]
                if elem is not None:
                    vs[elem] = e
                    if key is not None:
                        vs[key] = k
                try:
                    body(st, e, vs)
                except _Continue:
                    continue
                except _Break:
                    break
        return run

    def template_call(self, node: n.TemplateCall) -> Callable:
        ev = self.pipe(node.pipe) if node.pipe is not None else None
        name, w = node.name, self.where(node)

        def run(st: State, dot: object, vs: list) -> None:
            run_template(st, name, ev(st, dot, vs) if ev is not None else NOVALUE, w)
        return run

    # expressions
    def pipe(self, pipe: n.Pipe, declare: bool = True) -> Callable:
        first = self.command(pipe.cmds[0], False)
        rest = tuple(self.command(c, True) for c in pipe.cmds[1:])
        slots = tuple(pipe.slots) if declare else ()
        if not rest and not slots:
            def single(st: State, dot: object, vs: list) -> object:
                v = first(st, dot, vs)
                return NOVALUE if v is None else v
            return single

        def run(st: State, dot: object, vs: list) -> object:
            v = first(st, dot, vs)
            for c in rest:
                v = c(st, dot, vs, NOVALUE if v is None else v)
            if v is None:
                v = NOVALUE
            for s in slots:
                vs[s] = v
            return v
        return run

    def command(self, cmd: n.Command, final: bool) -> Callable:
        """``ev(st, dot, vs)`` for a pipeline's first command, ``ev(st, dot, vs, fin)`` for a later one."""
        head, args = cmd.args[0], cmd.args[1:]
        w = self.where(head)
        if isinstance(head, n.Identifier):
            return self.call(head, args, final, self.where(cmd))
        if isinstance(head, (n.Field, n.Chain)) or isinstance(head, n.Variable) and head.names:
            return self.chain(head, args, final, w)
        if args or final:
            return _raiser(w, f"can't give argument to non-function {head}")
        if isinstance(head, n.Nil):
            return _raiser(w, "nil is not a command")
        return self.arg(head)

    def arg(self, node: object) -> Callable:
        """An evaluator for an argument (an operand with no arguments of its own)."""
        if isinstance(node, n.Literal):
            value = node.value
            return lambda st, dot, vs: value
        if isinstance(node, n.Nil):  # Go's untyped nil: the zero value of the parameter it is given to
            return lambda st, dot, vs: NOVALUE
        if isinstance(node, n.Dot):
            return lambda st, dot, vs: dot
        if isinstance(node, n.Pipe):
            return self.pipe(node)
        if isinstance(node, n.Identifier):
            return self.call(node, [], False, self.where(node))
        if isinstance(node, n.Variable) and not node.names:
            return self.variable(node)
        return self.chain(node, [], False, self.where(node))

    def variable(self, node: n.Variable) -> Callable:
        slot, name, w = node.slot, node.name, self.where(node)

        def ev(st: State, dot: object, vs: list) -> object:
            v = vs[slot]
            if v is _UNSET:
                raise w.error(f"undefined variable: {name}")
            return v
        return ev

    def chain(self, node: object, args: list, final: bool, w: Where) -> Callable:
        if isinstance(node, n.Field):
            recv = None
        elif isinstance(node, n.Variable):
            recv = self.variable(n.Variable(node.pos, node.name, node.slot))
        else:
            recv = self.arg(node.node)  # type: ignore[attr-defined]
        names = node.names  # type: ignore[attr-defined]
        if not args and not final:
            return _walk(recv, names, w)
        argevs = tuple(self.arg(a) for a in args)
        head, last = _walk(recv, names[:-1], w) if names[:-1] else recv, names[-1]

        def ev(st: State, dot: object, vs: list, fin: object = None) -> object:
            r = head(st, dot, vs) if head is not None else dot
            values = [a(st, dot, vs) for a in argevs]
            if final:
                values.append(fin)
            return field(st, r, last, w, values)
        return ev

    def call(self, ident: n.Identifier, args: list, final: bool, w: Where) -> Callable:
        spec = self.resolve(ident.name)
        if spec is None:
            return _raiser(w, f'"{ident.name}" is not a defined function')
        argevs = tuple(self.arg(a) for a in args)
        err = spec.arity_error(len(argevs) + final)
        if err:
            return _raiser(w, err)
        if spec.fn is BUILTINS["and"] or spec.fn is BUILTINS["or"]:
            return _lazy_logic(argevs, final, spec.fn is BUILTINS["or"])
        return _invoker(spec, argevs, final, w)


def _invoker(spec: FuncSpec, argevs: tuple, final: bool, w: Where) -> Callable:
    """The evaluator of a function call: arguments evaluated, checked for their Go types, failures located."""
    fn, name = spec.fn, spec.name
    convs = converters(spec, len(argevs) + final)

    def fail(exc: Exception) -> TemplateError:
        if isinstance(exc, (TemplateError, RecursionError)):
            raise exc
        return w.error(failure(name, exc))
    fast = _fast_invoker(fn, convs, argevs, final, fail)
    if fast is not None:
        return fast

    untyped = all(c is ANY for c in convs)

    def ev(st: State, dot: object, vs: list, fin: object = None) -> object:
        values = [a(st, dot, vs) for a in argevs]
        if final:
            values.append(fin)
        try:
            if untyped:
                return fn(*[None if v is NOVALUE else v for v in values])
            return fn(*[c(v) for c, v in zip(convs, values)])
        except Exception as exc:  # a function's own failure: Go's error result
            raise fail(exc) from exc
    return ev


def _fast_invoker(fn: Callable, convs: tuple, argevs: tuple, final: bool, fail: Callable) -> Callable | None:
    """Evaluators without an argument list for the common shapes: ``f x``, ``x | f``, ``x | f y``."""
    if len(convs) == 1 and final:
        c0 = convs[0]

        def ev1f(st: State, dot: object, vs: list, fin: object) -> object:
            try:
                return fn(c0(fin))
            except Exception as exc:  # a function's own failure: Go's error result
                raise fail(exc) from exc
        return ev1f
    if len(convs) == 1:
        c0, a0 = convs[0], argevs[0]

        def ev1(st: State, dot: object, vs: list) -> object:
            try:
                return fn(c0(a0(st, dot, vs)))
            except Exception as exc:  # a function's own failure: Go's error result
                raise fail(exc) from exc
        return ev1
    if len(convs) == 2 and final:
        (c0, c1), a0 = convs, argevs[0]

        def ev2f(st: State, dot: object, vs: list, fin: object) -> object:
            try:
                return fn(c0(a0(st, dot, vs)), c1(fin))
            except Exception as exc:  # a function's own failure: Go's error result
                raise fail(exc) from exc
        return ev2f
    return None


def _walk(recv: Callable | None, names: tuple[str, ...], w: Where) -> Callable:
    """An evaluator of ``recv.a.b`` (``recv`` None: dot) without arguments."""
    if len(names) == 1:
        name = names[0]

        def one(st: State, dot: object, vs: list) -> object:
            r = recv(st, dot, vs) if recv is not None else dot
            if type(r) is dict and name in r:
                return r[name]
            return field(st, r, name, w, None)
        return one

    def many(st: State, dot: object, vs: list) -> object:
        r = recv(st, dot, vs) if recv is not None else dot
        for name in names:
            r = r[name] if type(r) is dict and name in r else field(st, r, name, w, None)
        return r
    return many


def _lazy_logic(argevs: tuple, final: bool, is_or: bool) -> Callable:
    """Go's short-circuit and/or: the first argument that decides, else the last one."""
    def ev(st: State, dot: object, vs: list, fin: object = None) -> object:
        v: object = NOVALUE
        for a in argevs:
            v = a(st, dot, vs)
            if truth(v) == is_or:
                return v
        return fin if final else v
    return ev


def compile_tree(tree: Tree, resolve: Callable[[str], FuncSpec | None]) -> Callable:
    """Compile ``tree`` into ``run(st, dot, vs)``; ``resolve`` maps a function name to its FuncSpec."""
    try:
        return _Compiler(tree, resolve).block(tree.root)
    except RecursionError:
        raise TemplateError("template nested too deeply", tree.src) from None
