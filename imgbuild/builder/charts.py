"""Images of Helm charts read without rendering them: from merged values and literal templates.

Discovery renders charts (:mod:`imgbuild.builder.helm`); this static read is what a chart
gets when it cannot be rendered, and what :func:`scan_charts` does without a ``render``.

A chart under ``charts/`` is a directory with a ``Chart.yaml`` or a packaged
``.tgz`` (read in memory, never extracted). Its values are ``values.yaml``
deep-merged with sealos' override file ``charts/<chart>.values.yaml`` (later
wins, ``null`` deletes). Images come from:

* the merged values: every string under a key ``image`` (or ending in
  ``Image``) and every ``{registry?, repository, tag|digest}`` map; a map
  without a tag takes the chart's ``appVersion``, as most charts do;
* literal ``image:`` values in ``templates/*.yaml`` that hold no template
  action. A templated reference such as
  ``image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"`` is *not*
  guessed from the template text: the values scan covers it;
* subcharts in ``charts/`` (directories or ``.tgz``, nested at any depth),
  each with its own values merged with the parent's section under its name or
  alias plus the parent's ``global``. A dependency whose ``condition`` (or all
  of whose ``tags``) is a plain ``false`` in the parent's merged values is
  excluded, as helm would; conditions that are not plain booleans are ignored;
* a values section with ``enabled: false`` (``metrics``, ``volumePermissions``)
  is not searched: charts only render its images when it is switched on.
  What was left out is reported as a note.

Known limits, by design: templates are not rendered, so a literal image inside
an ``{{ if }}`` that is false is still counted, and images computed in
templates from values that are not ``image``-like keys are not seen (list
them in ``images/shim``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from imgbuild.builder._helm_chart import read_archive
from imgbuild.builder.yamlscan import Hit, Scalar, decode, is_templated, load_tree, scan_yaml_text, walk_images
from imgbuild.errors import ContextError, UnsafePathError

__all__ = ["ChartScan", "Render", "scan_charts", "merge_values"]

_KEEP = (".yaml", ".yml", ".tgz")


@dataclass
class ChartScan:
    """What scanning ``charts/`` produced: image hits, human notes (disabled subcharts, oddities), warnings."""

    hits: list[Hit] = field(default_factory=list)
    notes: list[tuple[str, int | None, str]] = field(default_factory=list)
    warnings: list[tuple[str, int | None, str]] = field(default_factory=list)


Render = Callable[[Path, str, list[Path], ChartScan], bool]
"""A chart renderer for :func:`scan_charts`: ``(entry, label, override files, scan) -> handled``."""


@dataclass(frozen=True)
class _Chart:
    """One chart's relevant files in memory, keyed by path inside the chart; ``label`` prefixes sources."""

    label: str
    files: dict[str, bytes]

    def where(self, rel: str) -> str:
        return f"{self.label}/{rel}"

    def tree(self, rel: str) -> dict[str, Any] | None:
        data = self.files.get(rel)
        return None if data is None else load_tree(decode(data, self.where(rel)), self.where(rel))


def merge_values(base: Any, override: Any) -> Any:
    """Helm-style deep merge of value trees: maps merge, anything else is replaced, ``null`` deletes."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    out = dict(base)
    for key, val in override.items():
        if isinstance(val, Scalar) and val.kind == "null":
            out.pop(key, None)
        else:
            out[key] = merge_values(out.get(key), val) if key in out else val
    return out


def _read_dir(root: Path, label: str, context: Path, ignored: Callable[[str], bool]) -> _Chart:
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if not name.endswith(_KEEP) or ignored(path.relative_to(context).as_posix()):
                continue
            real = path.resolve()
            if not real.is_relative_to(context):
                raise UnsafePathError("symbolic link points outside the build context", path.relative_to(context).as_posix())
            files[path.relative_to(root).as_posix()] = real.read_bytes()
    return _Chart(label, files)


def _read_tgz(data: bytes, label: str) -> _Chart:
    top, files = read_archive(data, label, lambda rel: rel.endswith(_KEEP))
    return _Chart(f"{label}!{top}", files)


def _meta(chart: _Chart) -> dict[str, Any]:
    meta = chart.tree("Chart.yaml")
    if meta is None:
        raise ContextError("not a helm chart: no Chart.yaml", chart.label)
    return meta


def _text(tree: dict[str, Any], key: str) -> str | None:
    """A Chart.yaml string field as written: ``name: off`` is the text "off" (as Helm reads it), not a boolean."""
    v = tree.get(key)
    return (v.text.strip() or None) if isinstance(v, Scalar) and v.kind != "null" else None


@dataclass(frozen=True)
class _Dep:
    name: str
    key: str
    condition: str | None
    tags: tuple[str, ...]


def _dependencies(chart: _Chart, meta: dict[str, Any]) -> list[_Dep]:
    deps = meta.get("dependencies")
    if deps is None:
        deps = (chart.tree("requirements.yaml") or {}).get("dependencies")
    out = []
    for d in deps if isinstance(deps, list) else []:
        name = _text(d, "name") if isinstance(d, dict) else None
        if not name:
            continue
        tags = d.get("tags")
        tag_names = tuple(t.text for t in tags if isinstance(t, Scalar)) if isinstance(tags, list) else ()
        out.append(_Dep(name, _text(d, "alias") or name, _text(d, "condition"), tag_names))
    return out


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.strip().split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _enabled(dep: _Dep, values: dict[str, Any]) -> tuple[bool, str | None]:
    """Helm's rule: the first condition path that is a plain bool decides; else tags; else enabled."""
    for path in (dep.condition or "").split(","):
        v = _lookup(values, path) if path.strip() else None
        if isinstance(v, Scalar) and v.as_bool() is not None:
            return v.as_bool(), f"condition {path.strip()}={v.text} ({v.file}:{v.line})"
    found = [(t, v) for t in dep.tags if isinstance(v := _lookup(values, f"tags.{t}"), Scalar) and v.as_bool() is not None]
    if found and not any(v.as_bool() for _, v in found):
        t, v = found[0]
        return False, f"tags.{t}={v.text} ({v.file}:{v.line})"
    return True, None


def _subcharts(chart: _Chart) -> list[tuple[str, _Chart]]:
    """Subcharts in ``charts/``: ``(name, chart)`` for directories and ``.tgz`` files, sorted."""
    dirs: dict[str, dict[str, bytes]] = {}
    out = []
    for rel, data in sorted(chart.files.items()):
        parts = rel.split("/")
        if len(parts) == 2 and parts[0] == "charts" and parts[1].endswith(".tgz"):
            sub = _read_tgz(data, chart.where(rel))
            out.append((_text(_meta(sub), "name") or parts[1], sub))
        elif len(parts) > 2 and parts[0] == "charts":
            dirs.setdefault(parts[1], {})["/".join(parts[2:])] = data
    for name, files in sorted(dirs.items()):
        if "Chart.yaml" in files:
            sub = _Chart(chart.where(f"charts/{name}"), files)
            out.append((_text(_meta(sub), "name") or name, sub))
    return out


def _template_hits(chart: _Chart, scan: ChartScan) -> None:
    """Literal (untemplated) ``image:`` values in the chart's templates."""
    for rel, data in sorted(chart.files.items()):
        if not rel.startswith("templates/") or not rel.endswith((".yaml", ".yml")):
            continue
        hits, _note = scan_yaml_text(decode(data, chart.where(rel)), chart.where(rel), "chart-template")
        scan.hits.extend(h for h in hits if not is_templated(h.value))


def _scan_chart(chart: _Chart, overrides: list[dict[str, Any]], scan: ChartScan) -> None:
    """Scan one chart with the given value overrides (lowest first), then its enabled subcharts."""
    meta = _meta(chart)
    if _text(meta, "type") == "library":
        scan.notes.append((chart.where("Chart.yaml"), None, "library chart: no images of its own"))
        return
    values: Any = chart.tree("values.yaml") or {}
    for ov in overrides:
        values = merge_values(values, ov)
    values = values if isinstance(values, dict) else {}
    subs = _subcharts(chart)
    deps = _dependencies(chart, meta)
    instances = [(d, sub) for name, sub in subs for d in deps if d.name == name]
    instances += [(_Dep(name, name, None, ()), sub) for name, sub in subs if not any(d.name == name for d in deps)]
    skip = frozenset(d.key for d, _ in instances)
    excluded: list[tuple[str, Scalar, list[Hit]]] = []
    scan.hits.extend(walk_images(values, "chart-values", loose=True, app_version=_text(meta, "appVersion"),
                                 skip_top=skip, excluded=excluded))
    for path, flag, hits in excluded:
        names = ", ".join(sorted({h.value for h in hits}))
        scan.notes.append((flag.file, flag.line, f"{path}.enabled is false: not bundling {names}"))
    _template_hits(chart, scan)
    for dep, sub in instances:
        on, why = _enabled(dep, values)
        if not on:
            scan.notes.append((sub.label, None, f"subchart {dep.key} disabled by {why}"))
            continue
        section = values.get(dep.key)
        sub_over = [section] if isinstance(section, dict) else []
        if isinstance(values.get("global"), dict):
            sub_over.append({"global": values["global"]})
        _scan_chart(sub, sub_over, scan)


def _override_files(charts_dir: Path, entry: Path, chart_name: str | None) -> list[Path]:
    stem = entry.name[: -len(".tgz")] if entry.name.endswith(".tgz") else entry.name
    names = dict.fromkeys([stem] + ([chart_name] if chart_name else []))
    return [p for n in names if (p := charts_dir / f"{n}.values.yaml").is_file()]


def scan_charts(context: Path, ignored: Callable[[str], bool] = lambda rel: False,
                render: Render | None = None) -> ChartScan:
    """Scan every chart under ``<context>/charts`` (with its ``<chart>.values.yaml``), skipping ``ignored`` paths.

    With ``render`` (see :mod:`.helm`), each chart is first offered to it; the static read
    described above is what a chart it did not handle gets.
    """
    scan = ChartScan()
    charts_dir = context / "charts"
    if not charts_dir.is_dir():
        return scan
    used: set[Path] = set()
    for entry in sorted(charts_dir.iterdir()):
        label = entry.relative_to(context).as_posix()
        if ignored(label):
            continue
        if entry.is_dir() and (entry / "Chart.yaml").is_file():
            chart = _read_dir(entry, label, context, ignored)
        elif entry.is_file() and entry.name.endswith(".tgz"):
            chart = _read_tgz(entry.read_bytes(), label)
        else:
            if entry.is_dir() or not entry.name.endswith(".values.yaml"):
                scan.notes.append((label, None, "not a chart (no Chart.yaml, not a .tgz); ignored"))
            continue
        paths = _override_files(charts_dir, entry, _text(_meta(chart), "name"))
        used.update(paths)
        if render is not None and render(entry, label, paths, scan):
            continue
        overrides = []
        for path in paths:
            rel = path.relative_to(context).as_posix()
            overrides.append(load_tree(decode(path.read_bytes(), rel), rel))
        _scan_chart(chart, overrides, scan)
    for path in sorted(set(charts_dir.glob("*.values.yaml")) - used):
        scan.notes.append((path.relative_to(context).as_posix(), None, "override values for no chart in charts/; unused"))
    return scan
