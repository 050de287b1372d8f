"""Images of Helm charts as ``helm template`` renders them: with helm itself, or with our own engine.

Sealos finds a chart's images by rendering it (``helm template`` semantics,
values from ``values.yaml`` and ``charts/<chart>.values.yaml``) and reading
``image:`` from the output. This module does the same for each chart in a
build context's ``charts/``:

* ``helm="auto"`` (default): the ``helm`` binary when the executor has one on
  its PATH, else the built-in renderer; ``"always"``: the helm binary, an error
  without it; ``"never"``: the built-in renderer only.
* The built-in renderer is helm's loader, dependency processing, values
  coalescing and engine rebuilt on :mod:`imgbuild.gotemplate` (see
  :mod:`._helm_chart`, :mod:`._helm_values`, :mod:`._helm_engine`): subcharts
  with conditions, tags, aliases and import-values, globals, ``.Chart.AppVersion``,
  ``.Release``, ``.Capabilities`` (Kubernetes v1.30.0 as helm 3.15), ``include``,
  ``tpl``, ``required``, ``lookup`` (empty), ``_helpers.tpl`` and sprig.
* The output is split into YAML documents; every ``image:`` value (containers,
  initContainers, ephemeralContainers, CRs) and ``{repository, tag}`` map is an
  image, and so is an ``image:`` line inside a multi-line string (a pod template
  kept in a ConfigMap), as sealos' line scan finds those too. Each is reported
  at the template that rendered it (``file:line`` of its ``image:`` line there).
* A chart that cannot be rendered (a template error, ``fail``/``required``
  firing, a function we lack) falls back to :mod:`.charts`' static read of its
  values and literal templates, with a warning naming the chart and the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

from imgbuild.builder._helm_caps import Capabilities
from imgbuild.builder._helm_chart import Chart, ChartError, load_chart_archive, load_chart_dir, load_values
from imgbuild.builder._helm_engine import RELEASE, Rendered, render_tree
from imgbuild.builder._helm_values import coalesce, resolve_tree
from imgbuild.builder.charts import ChartScan, scan_charts
from imgbuild.builder.yamlscan import Hit, Scalar, load_documents, scan_lines, walk_images
from imgbuild.errors import ImgbuildError, InputError, ToolMissing, UnsafePathError

__all__ = ["HELM_MODES", "RenderedChart", "render_chart", "rendered_hits", "text_hits", "helm_binary",
           "helm_template_hits", "scan_charts_rendered"]

HELM_MODES = ("auto", "always", "never")
_IMAGE_KEY = re.compile(r"""^\s*(?:-\s+)*["']?image["']?\s*:""")
_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")
_MAY_HOLD_IMAGE = re.compile(r"""(?:^[\s-]*|[{,]\s*)["']?(?:image|repository)["']?\s*:[ \t]*[^\s#]""", re.MULTILINE)
_HELM_TIMEOUT = 300.0


class RenderedChart:
    """One chart rendered: its templates' output, and notes (disabled subcharts, missing dependencies)."""

    def __init__(self, files: list[Rendered], notes: list[str]) -> None:
        self.files, self.notes = files, notes


def render_chart(chart: Chart, user_values: dict[str, Any] | None = None, *,
                 capabilities: Capabilities | None = None, release: dict[str, Any] | None = None) -> RenderedChart:
    """Render ``chart`` as ``helm template`` would with ``user_values`` (``-f``); TemplateError/ChartError on failure."""
    notes: list[str] = []
    tree = resolve_tree(chart, user_values or {}, notes)
    values = coalesce(tree, dict(user_values or {}))
    return RenderedChart(render_tree(tree, values, capabilities, release), notes)


def _image_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if _IMAGE_KEY.match(line)]


def _located(hits: list[Hit], source: str | None, file: str) -> list[Hit]:
    """Hits placed on the ``image:`` lines of their template by order (helm binary output: no probing)."""
    lines = [n for n, _ in _image_lines(source)] if source is not None else []
    out = []
    for k, h in enumerate(sorted(hits, key=lambda h: h.line)):
        line = (lines[k] if len(lines) == len(hits) else lines[min(k, len(lines) - 1)]) if lines else 1
        out.append(Hit(h.value, file, line, h.how, h.problem))
    return out


def _with_variables(lines: list[str], n: int) -> str:
    """Line ``n`` (1-based) preceded by the nearest earlier assignments of the ``$variables`` it uses."""
    text = lines[n - 1]
    needed = [v for v in dict.fromkeys(_VARIABLE.findall(text)) if v]
    prefix = []
    for _ in range(3):  # an assignment may use variables assigned before it
        found = []
        for name in needed:
            rx = re.compile(r"\{\{-?\s*\$" + re.escape(name) + r"\s*:?=.*?-?\}\}")
            hit = next((m.group(0) for k in range(n - 2, -1, -1) if (m := rx.search(lines[k]))), None)
            if hit:
                found.append(hit)
        prefix = found + prefix
        needed = [v for a in found for v in _VARIABLE.findall(a.split("=", 1)[1]) if v and v not in needed]
        if not needed:
            break
    return "".join(dict.fromkeys(prefix)) + text


def _traced(f: Rendered, hits: list[Hit]) -> list[Hit]:
    """Hits placed on the source line that wrote them: the template's own ``image:`` lines, then its chart's partials.

    Each candidate line is rendered on its own (:attr:`Rendered.probe`, with the ``$variables``
    it uses assigned as in its file); the first whose output holds the image wins, a line not
    taken yet preferred. An image no line renders alone keeps the order-based guess.
    """
    own = f.chart.where(f.rel)
    sources = [(own, f.source)] + [(f.chart.where(rel), text) for rel, text in f.chart.templates
                                   if rel.rsplit("/", 1)[-1].startswith("_")]
    candidates = []
    for file, text in sources:
        lines = text.splitlines()
        candidates += [(file, n, _with_variables(lines, n)) for n, _ in _image_lines(text)]
    guessed = {id(h): g for h, g in zip(sorted(hits, key=lambda h: h.line), _located(hits, f.source, own))}
    out, taken = [], set()
    for h in sorted(hits, key=lambda h: h.line):
        matches = [(file, n) for file, n, text in candidates
                   if h.value in {x.value for x in scan_lines(f.probe(file, n, text) or "", file, "")}]
        match = next((m for m in matches if m not in taken), matches[0] if matches else None)
        taken.add(match)
        out.append(Hit(h.value, *match, h.how, h.problem) if match else guessed[id(h)])
    return out


def _embedded(tree: Any, how: str) -> list[Hit]:
    """``image:`` lines inside multi-line string values (pod templates kept in ConfigMaps)."""
    out: list[Hit] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, Scalar) and "\n" in node.text and "image" in node.text:
            out.extend(Hit(h.value, node.file, node.line, how) for h in scan_lines(node.text, node.file, how))
    return out


def _documents(text: str) -> list[tuple[int, str]]:
    """The documents of ``text`` that can hold an image, cut as helm's SplitManifests cuts them, with line offsets.

    ``---`` need not end its line (``---# comment`` starts a document); a document with no
    ``image:`` or ``repository:`` holding a value (a CRD schema, RBAC) is not parsed at all.
    """
    out, pos, line = [], 0, 0
    for m in [*_SEPARATOR.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        doc = text[pos:end]
        if _MAY_HOLD_IMAGE.search(doc):
            out.append((line, doc))
        if m is not None:
            line += doc.count("\n") + m.group(0).count("\n")
            pos = m.end()
    return out


def text_hits(text: str, file: str, how: str) -> tuple[list[Hit], str | None]:
    """Image hits in rendered manifests ``text`` (line numbers in ``text``), and a note for a document that is not YAML."""
    hits: list[Hit] = []
    note = None
    for offset, chunk in _documents(text):
        try:
            docs = load_documents(chunk, file, templates=False)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {offset + mark.line + 1} of its output" if mark is not None else ""
            note = note or f"rendered output is not valid YAML{at}; scanned line by line"
            found = scan_lines(chunk, file, how)
        else:
            found = [h for doc in docs for h in (*walk_images(doc, how), *_embedded(doc, f"{how}-embedded"))]
        hits.extend(Hit(h.value, h.file, h.line + offset, h.how, h.problem) for h in found)
    return hits, note


def rendered_hits(rendered: RenderedChart, how: str = "helm-render") -> tuple[list[Hit], list[tuple[str, None, str]]]:
    """The image hits of a rendered chart, placed at their templates, and notes for unreadable output."""
    hits: list[Hit] = []
    notes: list[tuple[str, None, str]] = []
    for f in rendered.files:
        if f.rel.endswith("NOTES.txt") or not f.text.strip():
            continue
        where = f.chart.where(f.rel)
        found, note = text_hits(f.text, where, how)
        hits.extend(_traced(f, found))
        if note:
            notes.append((where, None, note))
    return hits, notes


def helm_binary(executor) -> bool:
    """True if ``helm version`` runs through ``executor``."""
    if executor is None:
        return False
    try:
        return executor.run(["helm", "version", "--short"], check=False, timeout=60).ok
    except (ToolMissing, OSError):
        return False


def helm_template_hits(executor, entry: Path, label: str, values_files: list[Path],
                       context: Path) -> tuple[list[Hit], list[tuple[str, None, str]]]:
    """Run ``helm template`` on one chart; hits placed at ``label/<template>``. ContextError if helm fails."""
    argv = ["helm", "template", RELEASE["Name"], str(entry), "--namespace", RELEASE["Namespace"]]
    for vf in values_files:
        argv += ["--values", str(vf)]
    res = executor.run(argv, check=False, timeout=_HELM_TIMEOUT)
    if not res.ok:
        raise ChartError(f"helm template failed: {res.tail(3).strip() or f'exit {res.exit_code}'}", label)
    hits: list[Hit] = []
    notes: list[tuple[str, None, str]] = []
    for source, text in _split_sources(res.stdout):
        rel = source.split("/", 1)[1] if "/" in source else source
        where = f"{label}/{rel}"
        disk = context / where
        found, note = text_hits(text, where, "helm-template")
        hits.extend(_located(found, disk.read_text("utf-8", "replace") if disk.is_file() else None, where))
        if note:
            notes.append((where, None, note))
    return hits, notes


def _split_sources(stdout: str) -> list[tuple[str, str]]:
    """``helm template`` output as (template path, its documents), from its ``# Source:`` comments."""
    parts: dict[str, list[str]] = {}
    marks = list(_SOURCE.finditer(stdout))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(stdout)
        parts.setdefault(m.group(1).strip(), []).append(stdout[m.end():end])
    return [(src, "\n---\n".join(chunks)) for src, chunks in parts.items()]


def _user_values(paths: list[Path], context: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for p in paths:
        rel = p.relative_to(context).as_posix()
        merged = _merge_plain(merged, load_values(p.read_text("utf-8", "replace"), rel))
    return merged


def _merge_plain(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Later values files over earlier ones, as helm merges several ``-f`` files (maps merge, rest replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge_plain(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _ChartRenderer:
    """The per-chart callback :func:`scan_charts` calls: render (helm or built-in), or leave it to the static read."""

    def __init__(self, context: Path, ignored: Callable[[str], bool], mode: str, executor) -> None:
        if mode not in HELM_MODES:
            raise InputError(f"--helm must be auto, always or never, not {mode!r}")
        self.context, self.ignored, self.mode, self.executor = context, ignored, mode, executor
        self._binary: bool | None = None

    @property
    def use_binary(self) -> bool:
        """Whether charts go to the helm binary (asked once, when the first chart comes)."""
        if self._binary is None:
            self._binary = self.mode != "never" and helm_binary(self.executor)
            if self.mode == "always" and not self._binary:
                raise ToolMissing("helm", "install helm, or use --helm auto (the built-in renderer when helm is absent)")
        return self._binary

    def __call__(self, entry: Path, label: str, overrides: list[Path], scan: ChartScan) -> bool:
        reasons = []
        if self.use_binary:
            try:
                hits, notes = helm_template_hits(self.executor, entry, label, overrides, self.context)
                return self._take(scan, hits, notes)
            except ImgbuildError as exc:
                reasons.append(str(exc))
                if self.mode == "always":
                    return self._fallback(scan, label, reasons)
        try:
            chart = self._load(entry, label)
            rendered = render_chart(chart, _user_values(overrides, self.context))
        except UnsafePathError:
            raise
        except InputError as exc:  # the static read raises again if the chart itself is unreadable
            reasons.append(str(exc))
            return self._fallback(scan, label, reasons)
        except (RecursionError, ValueError, TypeError, KeyError, AttributeError) as exc:
            reasons.append(f"built-in renderer: {type(exc).__name__}: {exc}")
            return self._fallback(scan, label, reasons)
        hits, notes = rendered_hits(rendered)
        scan.notes.extend((n.split(": ", 1)[0], None, n.split(": ", 1)[1]) for n in rendered.notes)
        return self._take(scan, hits, notes)

    def _load(self, entry: Path, label: str) -> Chart:
        if entry.is_dir():
            return load_chart_dir(entry, label, self.context, self.ignored)
        return load_chart_archive(entry.read_bytes(), label)

    @staticmethod
    def _take(scan: ChartScan, hits: list[Hit], notes: list[tuple[str, None, str]]) -> bool:
        scan.hits.extend(hits)
        scan.notes.extend(notes)
        return True

    @staticmethod
    def _fallback(scan: ChartScan, label: str, reasons: list[str]) -> bool:
        why = "; ".join(reasons)
        scan.warnings.append((label, None, f"cannot render the chart ({why}); its images are read from its values "
                                           "and literal templates instead, which can differ from what helm renders"))
        return False


def scan_charts_rendered(context: Path, ignored: Callable[[str], bool] = lambda rel: False, *, helm: str = "auto",
                         executor=None) -> ChartScan:
    """Images of every chart under ``<context>/charts`` as rendered (see the module doc), static read as fallback."""
    return scan_charts(context, ignored, render=_ChartRenderer(context, ignored, helm, executor))
