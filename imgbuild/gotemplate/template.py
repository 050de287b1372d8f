"""A set of named templates sharing functions, as Go's ``*template.Template`` is.

Parse once, execute many times: each template is compiled to closures on first
use and kept until the functions change. ``add`` parses more text into the set
(a later ``define`` replaces an earlier one unless it is empty, as in Go), which
is how a chart's files and their ``_helpers.tpl`` share their defines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from imgbuild.gotemplate.builtins import BUILTINS
from imgbuild.gotemplate.calls import FuncSpec, spec_of
from imgbuild.gotemplate.errors import TemplateError
from imgbuild.gotemplate.execute import MISSINGKEY, State, compile_tree, run_template
from imgbuild.gotemplate.parse import Tree, is_empty, parse
from imgbuild.gotemplate.sprig import SPRIG
from imgbuild.gotemplate.values import NOVALUE

__all__ = ["Template"]


class _Known:
    """The function names a parse may use: the set's functions and Go's builtins."""

    def __init__(self, funcs: Mapping[str, Callable]) -> None:
        self.funcs = funcs

    def __contains__(self, name: object) -> bool:
        return name in self.funcs or name in BUILTINS


def _mode(missingkey: str) -> int:
    try:
        return MISSINGKEY[missingkey]
    except KeyError:
        raise TemplateError(f"unrecognized missingkey option {missingkey!r} (error, zero, default)") from None


class Template:
    """A parsed template set: named trees, their functions, and a missingkey default for executions."""

    def __init__(self, name: str = "<template>", funcs: Mapping[str, Callable] | None = None,
                 missingkey: str = "error") -> None:
        self.name = name
        self.missingkey = missingkey
        _mode(missingkey)
        self._funcs: dict[str, Callable] = {**SPRIG, **(funcs or {})}
        self._specs: dict[str, FuncSpec] = {}
        self._trees: dict[str, Tree] = {}
        self._compiled: dict[str, tuple[Callable, int]] = {}

    @classmethod
    def parse(cls, text: str, name: str = "<template>", funcs: Mapping[str, Callable] | None = None,
              missingkey: str = "error") -> "Template":
        """Parse ``text`` as template ``name`` (with its defines) into a new set; TemplateError names name:line."""
        return cls(name, funcs, missingkey).add(text, name)

    def add(self, text: str, name: str) -> "Template":
        """Parse ``text`` as template ``name`` into this set (functions must be known before, as in Go)."""
        trees = parse(text, name, _Known(self._funcs))
        for tname, tree in trees.items():
            old = self._trees.get(tname)
            if old is not None and is_empty(tree.root) and not is_empty(old.root):
                continue
            self._trees[tname] = tree
            self._compiled.pop(tname, None)
        return self

    def funcs(self, extra: Mapping[str, Callable]) -> "Template":
        """Add or replace functions (Helm's include, tpl, required ...); returns the set."""
        self._funcs.update(extra)
        self._specs.clear()
        self._compiled.clear()
        return self

    def names(self) -> list[str]:
        """The names of the templates in the set, sorted."""
        return sorted(self._trees)

    def __contains__(self, name: object) -> bool:
        return name in self._trees

    def lookup(self, name: str) -> tuple[Callable, int] | None:
        """The compiled template ``name`` and its frame size, or None when the set has no such template."""
        entry = self._compiled.get(name)
        if entry is None:
            tree = self._trees.get(name)
            if tree is None:
                return None
            entry = self._compiled[name] = (compile_tree(tree, self._resolve), tree.nslots)
        return entry

    def _resolve(self, name: str) -> FuncSpec | None:
        spec = self._specs.get(name)
        if spec is None:
            fn = self._funcs.get(name) or BUILTINS.get(name)
            if fn is None:
                return None
            spec = self._specs[name] = spec_of(name, fn)
        return spec

    def execute(self, data: object, missingkey: str | None = None) -> str:
        """Run the set's main template (its name) on ``data``; return the text."""
        return self.execute_named(self.name, data, missingkey)

    def execute_named(self, name: str, data: object, missingkey: str | None = None) -> str:
        """Run template ``name`` of the set on ``data`` (helm's ``include``); TemplateError on failure."""
        st = State(self, _mode(missingkey or self.missingkey))
        try:
            run_template(st, name, NOVALUE if data is None else data, None)
        except RecursionError:
            raise TemplateError("execution nested too deeply (a template or include calling itself, or "
                                "self-referencing data)", name) from None
        return "".join(st.out)
