"""Go's text/template in Python, with sprig's common functions: ``*.tmpl`` files, Clusterfile values, charts.

Use::

    from imgbuild.gotemplate import render, Template, TemplateError
    render("addr: {{ .registryDomain }}:{{ .registryPort | default 5000 }}", env)
    t = Template.parse(text, name="etc/registry.yml.tmpl")     # parse once ...
    t.execute(data)                                             # ... run per host
    t.funcs({"include": lambda name, d: t.execute_named(name, d)})

The semantics are Go's (``text/template`` of Go 1.22): ``{{- -}}`` trimming,
comments, pipelines, variables, if/else if/with/else with/range (lists, maps in
sorted key order, ints; break/continue; else), define/template/block,
parenthesised pipelines, Go literals, the builtins, truth, ``missingkey``
(``error``: ``map has no entry for key "x"``; ``default``/``zero``: prints
``<no value>`` as Go does; Helm's renderer removes that text, as helm does),
Go's argument types (``{{ .missing | upper }}`` is ``invalid value; expected
string``) and Go's fmt for printing values (``1e+06``, ``map[a:1]``).
Errors are :class:`TemplateError` (exit 2) with ``where="name:line:col"``.

Why our own: the package index was searched for a Python implementation of Go
templates. ``go-template`` (0.0.3, 2019, one release) and
``cognihub-pygotemplate`` (0.0.2, no distribution installable here) wrap Go's
own engine through cgo, which needs a Go toolchain or a shared library built
for each platform; ``go2jinja`` converts templates to Jinja, whose semantics
(truth, missing keys, whitespace, printing) differ. None is maintained, pure
Python or Go-accurate, so this package implements the engine (lexer, parser,
closure compiler) and the sprig subset real images and charts use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from imgbuild.gotemplate.calls import gofunc
from imgbuild.gotemplate.errors import FuncError, TemplateError
from imgbuild.gotemplate.template import Template
from imgbuild.gotemplate.values import NO_VALUE_TEXT

__all__ = ["render", "Template", "TemplateError", "FuncError", "gofunc", "NO_VALUE_TEXT"]


def render(text: str, data: Mapping | object, *, name: str = "<template>", missingkey: str = "error",
           funcs: Mapping[str, Callable] | None = None) -> str:
    """Parse and execute ``text`` once with ``data``; TemplateError (name:line:col) on any failure."""
    return Template.parse(text, name=name, funcs=funcs, missingkey=missingkey).execute(data)
