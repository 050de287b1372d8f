"""Helm's values: dependency processing (conditions, tags, aliases, import-values) and coalescing.

This follows ``helm.sh/helm/v3/pkg/chartutil`` (dependencies.go, coalesce.go)
closely, because the images a chart renders depend on exactly which subcharts
are enabled and which values win:

* :func:`resolve_tree` turns a loaded chart into the tree helm renders: each
  ``dependencies`` entry matched to a chart in ``charts/`` by name (and version
  range), renamed by its ``alias``, charts in ``charts/`` that no entry names
  kept as they are; then ``tags`` (from the top-level values) and ``condition``
  paths (the first that is a boolean wins) switch dependencies off. A dependency
  with no chart in ``charts/`` is reported, not fatal (helm's engine renders
  what is there, as sealos does).
* :func:`coalesce` merges user values over a chart's defaults: maps merge,
  the user's scalars win, a user ``null`` deletes the key; each subchart gets
  its section of the parent's values with the parent's ``global`` merged over
  its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from imgbuild.builder._helm_chart import Chart

__all__ = ["Node", "resolve_tree", "coalesce", "path_value"]


@dataclass
class Node:
    """A chart as rendered: its (possibly aliased) name, its enabled subcharts and its values."""

    chart: Chart
    name: str
    deps: list["Node"] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    enabled_deps: list[dict[str, Any]] = field(default_factory=list)


def path_value(values: Any, path: str) -> tuple[bool, Any]:
    """``(found, value)`` at dotted ``path``, as chartutil.Values.PathValue."""
    node = values
    parts = [p for p in path.split(".") if p]
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return bool(parts), node


def _compatible(constraint: str, version: str) -> bool:
    """helm's IsCompatibleRange: does ``version`` satisfy the semver range ``constraint`` ("" never does)?"""
    from imgbuild.gotemplate.semver import check

    if not constraint.strip():
        return False
    try:
        return check(constraint, version)
    except Exception:  # an invalid range or version never matches, as in helm
        return False


def _instances(chart: Chart) -> list[tuple[Node, dict[str, Any] | None]]:
    """The subcharts to consider, each with its Chart.yaml entry (None for charts no entry matches).

    As helm: a chart in ``charts/`` that no entry matches by name *and* version range is kept
    as is; each entry then takes the first chart of its name (any version when it gives none).
    """
    deps = chart.dependencies()
    out: list[tuple[Node, dict[str, Any] | None]] = []
    for sub in chart.subcharts:
        if not any(d.get("name") == sub.name and _compatible(str(d.get("version") or ""), sub.version) for d in deps):
            out.append((Node(sub, sub.name), None))
    for d in deps:
        version = str(d.get("version") or "")
        for sub in chart.subcharts:
            if sub.name == d.get("name") and (not version or _compatible(version, sub.version)):
                out.append((Node(sub, str(d.get("alias") or sub.name)), d))
                break
    return out


def _tags_enable(dep: dict[str, Any], values: dict[str, Any]) -> tuple[bool, str | None]:
    tags = values.get("tags")
    names = dep.get("tags") if isinstance(dep.get("tags"), list) else []
    if not isinstance(tags, dict) or not names:
        return True, None
    flags = [(t, tags[t]) for t in names if isinstance(tags.get(t), bool)]
    if flags and not any(v for _, v in flags):
        return False, f"tags.{flags[0][0]}=false"
    return True, None


def _enabled(dep: dict[str, Any], values: dict[str, Any], prefix: str) -> tuple[bool, str | None]:
    """Whether a dependency is rendered: tags first, then the first condition path holding a boolean."""
    on, why = _tags_enable(dep, values)
    for cond in str(dep.get("condition") or "").strip().split(","):
        cond = cond.strip()
        found, v = path_value(values, prefix + cond) if cond else (False, None)
        if found and isinstance(v, bool):
            return v, None if v else f"condition {cond}=false"
    return on, why


def resolve_tree(chart: Chart, user: dict[str, Any], notes: list[str]) -> Node:
    """The chart tree helm renders for ``user`` values, disabled dependencies left out (and noted)."""
    root = Node(chart, chart.name)
    _resolve(root, user, "", root, notes)
    return root


def _resolve(node: Node, user: dict[str, Any], prefix: str, root: Node, notes: list[str]) -> None:
    chart = node.chart
    candidates = _instances(chart)
    names = {sub.name for sub in chart.subcharts}
    for d in chart.dependencies():
        if d.get("name") not in names:
            notes.append(f"{chart.where('Chart.yaml')}: dependency {d.get('name')} is not in charts/; not rendered")
    node.deps = [n for n, _ in candidates]
    top = coalesce(root, copy.deepcopy(user))
    off: dict[str, str] = {}
    for sub, dep in candidates:
        on, why = (True, None) if dep is None else _enabled(dep, top, prefix)
        if not on:
            off[sub.name] = f"{sub.chart.label}: subchart {sub.name} disabled by {why}"
    node.deps = [sub for sub, _ in candidates if sub.name not in off]
    node.enabled_deps = [{**d, "name": sub.name} for sub, d in candidates if d is not None and sub.name not in off]
    notes.extend(off.values())
    for sub in node.deps:
        _resolve(sub, user, f"{prefix}{sub.name}.", root, notes)
    _import_values(node, candidates)


def _import_values(node: Node, candidates: list[tuple[Node, dict[str, Any] | None]]) -> None:
    """``import-values``: a child's tables copied under the parent, the parent's own values winning."""
    wanted = [(sub, d) for sub, d in candidates if d is not None and d.get("import-values") and sub in node.deps]
    if not wanted:
        return
    cvals = coalesce(node, {})
    imported: dict[str, Any] = {}
    for sub, d in wanted:
        for item in d["import-values"]:
            if isinstance(item, dict):
                child, parent = str(item.get("child", "")), str(item.get("parent", "."))
            else:
                child, parent = f"exports.{item}", "."
            found, table = path_value(cvals, f"{sub.name}.{child}")
            if found and isinstance(table, dict):
                _coalesce_tables(imported, _path_map(parent, copy.deepcopy(table)))
    node.values = _coalesce_tables(cvals, imported)


def _path_map(path: str, data: dict[str, Any]) -> dict[str, Any]:
    if path in (".", ""):
        return data
    for part in reversed([p for p in path.split(".") if p]):
        data = {part: data}
    return data


def _coalesce_tables(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    """Merge ``src`` under ``dst`` (``dst`` wins; a ``null`` in ``dst`` deletes the key)."""
    for key, val in src.items():
        if key in dst and dst[key] is None:
            del dst[key]
        elif key not in dst:
            dst[key] = val
        elif isinstance(val, dict) and isinstance(dst[key], dict):
            _coalesce_tables(dst[key], val)
    return dst


def _chart_values(node: Node) -> dict[str, Any]:
    return copy.deepcopy(node.values if node.values else node.chart.values)


def _coalesce_values(node: Node, v: dict[str, Any]) -> None:
    for key, val in _chart_values(node).items():
        if key in v:
            if v[key] is None:
                del v[key]
            elif isinstance(v[key], dict) and isinstance(val, dict):
                _coalesce_tables(v[key], val)
        else:
            v[key] = val


def _coalesce_globals(dest: dict[str, Any], src: dict[str, Any]) -> None:
    """The parent's ``global`` merged over the subchart's (scalars replaced, tables merged top-down)."""
    dg = dest.get("global", {})
    sg = src.get("global", {})
    if not isinstance(dg, dict) or not isinstance(sg, dict):
        return
    for key, val in sg.items():
        if isinstance(val, dict):
            vv = copy.deepcopy(val)
            if key in dg and isinstance(dg[key], dict):
                _merge_tables(vv, dg[key])
            if key not in dg or isinstance(dg[key], dict):
                dg[key] = vv
        elif not isinstance(dg.get(key), dict):
            dg[key] = val
    dest["global"] = dg


def _merge_tables(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, val in src.items():
        if key not in dst:
            dst[key] = val
        elif isinstance(val, dict) and isinstance(dst[key], dict):
            _merge_tables(dst[key], val)


def coalesce(node: Node, dest: dict[str, Any]) -> dict[str, Any]:
    """``dest`` (user values, changed in place) with the chart's defaults and its subcharts' sections merged in."""
    _coalesce_values(node, dest)
    for sub in node.deps:
        section = dest.get(sub.name)
        if section is None:
            section = dest[sub.name] = {}
        if not isinstance(section, dict):
            from imgbuild.builder._helm_chart import ChartError

            raise ChartError(f"type mismatch on {sub.name}: values for a subchart must be a map", node.chart.label)
        _coalesce_globals(section, dest)
        dest[sub.name] = coalesce(sub, section)
    return dest
