"""Rendering a resolved chart tree as helm's engine does (``helm.sh/helm/v3/pkg/engine``).

Every template of the chart and its enabled subcharts goes into one template
set, named by its full path (``app/templates/x.yaml``,
``app/charts/db/templates/y.yaml``), parsed deepest first so that a parent's
``define`` wins over a subchart's of the same name. Each template runs with
its own chart's data: ``.Values`` (the subchart's section for a subchart),
``.Chart`` (Go field names: ``.Chart.Name``, ``.Chart.AppVersion``...),
``.Release`` (``release-name`` in ``default``, as ``helm template``),
``.Capabilities``, ``.Files``, ``.Template`` (``Name``, ``BasePath``) and
``.Subcharts``. Missing keys print nothing (``missingkey=zero``, ``<no value>``
removed); ``include``, ``tpl`` and ``required`` behave as helm's, ``lookup``
finds nothing. Partials (``_*.tpl``) and library charts' files are not output.
"""

from __future__ import annotations

import base64
import functools
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from imgbuild.builder._helm_caps import Capabilities
from imgbuild.builder._helm_chart import Chart
from imgbuild.builder._helm_funcs import HELM_FUNCS
from imgbuild.builder._helm_values import Node
from imgbuild.gotemplate import NO_VALUE_TEXT, FuncError, Template, TemplateError
from imgbuild.gotemplate.values import MethodMap

__all__ = ["Rendered", "ChartMeta", "Files", "render_tree", "RELEASE"]

RELEASE = {"Name": "release-name", "Namespace": "default", "IsUpgrade": False, "IsInstall": True,
           "Revision": 1, "Service": "Helm"}


@dataclass(frozen=True)
class Rendered:
    """One rendered template: its name in the set, the chart it belongs to, its path there, and its text.

    ``probe(file, line, text)`` renders one source line of the chart (``text``, line ``line`` of
    ``file``) with this template's data, or gives None when it does not render on its own: how a
    found image is traced back to the ``image:`` line that wrote it.
    """

    name: str
    chart: Chart
    rel: str
    source: str
    text: str
    probe: Callable[[str, int, str], str | None] = field(repr=False, compare=False)


class _Obj:
    """A Go struct for templates: attributes with Go's field names; prints as ``{...}``."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __str__(self) -> str:
        return "{" + " ".join(str(v) for v in self.__dict__.values()) + "}"


def _s(meta: dict[str, Any], key: str) -> str:
    v = meta.get(key)
    return v if isinstance(v, str) else ""


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


class ChartMeta(_Obj):
    """``.Chart``: Chart.yaml with Go's field names (Name, Version, AppVersion ...) and IsRoot."""

    def __init__(self, chart: Chart, name: str, deps: list[dict[str, Any]], is_root: bool) -> None:
        m = chart.meta
        maint = [_Obj(Name=_s(x, "name"), Email=_s(x, "email"), URL=_s(x, "url"))
                 for x in m.get("maintainers") or [] if isinstance(x, dict)]
        dep_objs = [_Obj(Name=_s(d, "name"), Version=_s(d, "version"), Repository=_s(d, "repository"),
                         Condition=_s(d, "condition"), Tags=_strs(d.get("tags")), Enabled=True,
                         ImportValues=d.get("import-values") or [], Alias=_s(d, "alias")) for d in deps]
        annotations = m.get("annotations")
        super().__init__(
            Name=name, Version=_s(m, "version"), AppVersion=_s(m, "appVersion"), Description=_s(m, "description"),
            Type=_s(m, "type"), KubeVersion=_s(m, "kubeVersion"), Home=_s(m, "home"), Icon=_s(m, "icon"),
            APIVersion=_s(m, "apiVersion"), Condition=_s(m, "condition"), Tags=_s(m, "tags"),
            Keywords=_strs(m.get("keywords")), Sources=_strs(m.get("sources")), Maintainers=maint,
            Annotations=dict(annotations) if isinstance(annotations, dict) else {},
            Dependencies=dep_objs, Deprecated=_s(m, "deprecated") == "true", IsRoot=is_root)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """gobwas/glob with '/' separators: ``*`` and ``?`` stay in one path part, ``**`` crosses them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        ch = pattern[i]
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class Files(MethodMap):
    """``.Files``: the chart's non-template files (path -> bytes, a map ``range`` walks), with helm's Get, GetBytes,
    Glob, Lines, AsConfig and AsSecrets."""

    def Get(self, name: str) -> str:  # noqa: N802 - helm's method names
        """The file's content as text ('' if absent)."""
        return self.get(name, b"").decode("utf-8", "replace")

    def GetBytes(self, name: str) -> bytes:  # noqa: N802
        """The file's content as bytes."""
        return self.get(name, b"")

    def Glob(self, pattern: str) -> "Files":  # noqa: N802
        """The files whose path matches ``pattern``."""
        rx = _glob_regex(pattern)
        return Files({k: v for k, v in self.items() if rx.match(k)})

    def Lines(self, name: str) -> list[str]:  # noqa: N802
        """The file's lines (no trailing empty line)."""
        text = self.Get(name)
        return text[:-1].split("\n") if text.endswith("\n") else (text.split("\n") if text else [])

    def AsConfig(self) -> str:  # noqa: N802
        """The files as a ConfigMap ``data`` block (base name: content)."""
        from imgbuild.gotemplate.sprig_convert import to_yaml

        return to_yaml({posixpath.basename(k): v.decode("utf-8", "replace") for k, v in self.items()})

    def AsSecrets(self) -> str:  # noqa: N802
        """The files as a Secret ``data`` block (base name: base64)."""
        from imgbuild.gotemplate.sprig_convert import to_yaml

        return to_yaml({posixpath.basename(k): base64.b64encode(v).decode() for k, v in self.items()})



@dataclass(frozen=True)
class _Entry:
    text: str
    data: dict[str, Any]
    base: str
    chart: Chart
    rel: str


def _collect(node: Node, values: Any, parent_path: str | None, common: dict[str, Any],
             out: dict[str, _Entry]) -> dict[str, Any]:
    """The template data of ``node`` (helm's recAllTpls) and its templates, keyed by full name, into ``out``."""
    path = node.name if parent_path is None else f"{parent_path}/charts/{node.name}"
    subcharts: dict[str, Any] = {}
    data = {"Chart": ChartMeta(node.chart, node.name, node.enabled_deps, parent_path is None),
            "Files": Files(node.chart.files), "Values": values if isinstance(values, dict) else {},
            "Subcharts": subcharts, **common}
    for dep in node.deps:
        section = data["Values"].get(dep.name)
        subcharts[dep.name] = _collect(dep, section, path, common, out)
    for rel, text in node.chart.templates:
        if node.chart.is_library and not posixpath.basename(rel).startswith("_"):
            continue
        out[f"{path}/{rel}"] = _Entry(text, data, f"{path}/templates", node.chart, rel)
    return data


def _order(names: list[str]) -> list[str]:
    """helm's sortTemplates: more path parts first, then reverse lexical order."""
    return sorted(names, key=lambda n: (n.count("/"), n), reverse=True)


class _Renderer:
    """One chart tree's template set with helm's include and tpl bound to it."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self.entries = entries
        self.tpls: dict[str, str] = {}
        self.probes: dict[tuple[int, str, int], str | None] = {}
        self.set = Template("<helm>", {**HELM_FUNCS, "include": self.include, "tpl": self.tpl}, missingkey="zero")
        for name in _order(list(entries)):
            self.set.add(entries[name].text, name)

    def include(self, name: str, data: object = None) -> str:
        """helm's include: run a named template and return its text."""
        if not isinstance(name, str) or name not in self.set:
            raise FuncError(f'template: no template "{name}" associated with template "gotpl"')
        return self.set.execute_named(name, data)

    def tpl(self, text: str, data: object = None) -> str:
        """helm's tpl: render ``text`` as a template with ``data`` (defines of the chart usable)."""
        key = self.tpls.get(text)
        if key is None:
            where = data.get("Template", {}).get("Name") if isinstance(data, dict) else None
            key = self.tpls[text] = f"{where or 'tpl'}#tpl{len(self.tpls)}"
            self.set.add(str(text), key)
        return self.set.execute_named(key, data).replace(NO_VALUE_TEXT, "")

    def data(self, name: str) -> dict[str, Any]:
        e = self.entries[name]
        return {**e.data, "Template": {"Name": name, "BasePath": e.base}}

    def probe(self, name: str, file: str, line: int, text: str) -> str | None:
        """One source line rendered alone with template ``name``'s data; None if it does not render alone."""
        key = (id(self.entries[name].data), file, line)
        if key not in self.probes:
            probe_name = f"{file}#line{line}"
            try:
                if probe_name not in self.set:
                    self.set.add(text, probe_name)
                self.probes[key] = self.set.execute_named(probe_name, self.data(name)).replace(NO_VALUE_TEXT, "")
            except Exception:  # a line that needs its surrounding range/with/define: not traceable this way
                self.probes[key] = None
        return self.probes[key]

    def run(self, name: str) -> str:
        data = self.data(name)
        try:
            return self.set.execute_named(name, data).replace(NO_VALUE_TEXT, "")
        except TemplateError as exc:
            raise _located(exc, self.entries) from exc


def _located(exc: TemplateError, entries: dict[str, _Entry]) -> TemplateError:
    """``exc`` with its template named as the user finds it in the context (``charts/x/templates/y``)."""
    e = entries.get(exc.name or "")
    if e is None:
        return exc
    return TemplateError(exc.message, e.chart.where(e.rel), exc.line, exc.col)


def render_tree(root: Node, values: dict[str, Any], caps: Capabilities | None = None,
                release: dict[str, Any] | None = None) -> list[Rendered]:
    """Render every non-partial template of ``root`` with the coalesced ``values``; TemplateError on failure."""
    common = {"Release": dict(release or RELEASE), "Capabilities": caps or Capabilities()}
    entries: dict[str, _Entry] = {}
    _collect(root, values, None, common, entries)
    try:
        r = _Renderer(entries)
    except TemplateError as exc:
        raise _located(exc, entries) from exc
    out = []
    for name in _order(list(entries)):
        if posixpath.basename(name).startswith("_"):
            continue
        e = entries[name]
        out.append(Rendered(name, e.chart, e.rel, e.text, r.run(name), functools.partial(r.probe, name)))
    return out
