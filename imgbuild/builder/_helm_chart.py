"""Helm charts read as helm's loader reads them: a directory (minus ``.helmignore``) or a packaged ``.tgz``.

A :class:`Chart` holds what rendering needs, all in memory: ``Chart.yaml`` (its
scalars kept as written, so ``appVersion: 1.10`` stays ``"1.10"``), ``values.yaml``
as helm decodes it (through JSON: every number a float64, keys strings,
timestamps left as text), the files under ``templates/``, the other files
(``.Files``) and the subcharts found in ``charts/`` (directories and ``.tgz``,
nested at any depth; names starting with ``.`` or ``_`` are skipped, as helm does).
A chart directory's ``.helmignore`` is honoured; a link that leaves the build
context is an error, a packaged chart is never extracted to disk, and sizes are
bounded. Anything helm would refuse to load raises :class:`ChartError`.
"""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from imgbuild.errors import ContextError, UnsafePathError

__all__ = ["Chart", "ChartError", "load_chart_dir", "load_chart_archive", "read_archive", "load_values",
           "MAX_CHART_BYTES"]

MAX_CHART_BYTES = 256 * 1024 * 1024
_MAX_FILE = 32 * 1024 * 1024
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Plain = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class ChartError(ContextError):
    """A chart helm could not load or render: bad Chart.yaml or values, a template error; ``where`` names it."""


class _ValuesLoader(_Base):  # type: ignore[misc, valid-type]
    """YAML 1.1 as go-yaml decodes it, except timestamps, which helm's JSON round trip keeps as text."""


_ValuesLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:timestamp"]
    for ch, rs in _Base.yaml_implicit_resolvers.items()
}


def _key(k: object) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    return "null" if k is None else str(k)


def _jsonish(v: Any) -> Any:
    """Data as helm's values are after sigs.k8s.io/yaml: numbers float64, keys strings."""
    if isinstance(v, dict):
        return {_key(k): _jsonish(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonish(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def load_values(text: str, where: str) -> dict[str, Any]:
    """A values file as helm reads it (first document, numbers as float64); ChartError if it is not a map."""
    try:
        docs = list(yaml.load_all(text, Loader=_ValuesLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        raise ChartError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", at) from exc
    data = docs[0] if docs else None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChartError("values must be a map at the top of the file", where)
    return _jsonish(data)


def _load_plain(text: str, where: str) -> dict[str, Any]:
    """Chart.yaml / requirements.yaml with every scalar as written (helm reads these fields as strings)."""
    try:
        data = yaml.load(text, Loader=_Plain)
    except yaml.YAMLError as exc:
        raise ChartError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", where) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChartError("expected a map at the top of the file", where)
    return data


@dataclass
class Chart:
    """One loaded chart: metadata, default values, templates, other files and subcharts, all in memory."""

    label: str
    meta: dict[str, Any]
    values: dict[str, Any]
    templates: list[tuple[str, str]]
    files: dict[str, bytes]
    subcharts: list["Chart"] = field(default_factory=list)
    requirements: list[Any] | None = None

    @property
    def name(self) -> str:
        """The chart's name (Chart.yaml ``name``)."""
        return str(self.meta.get("name") or "")

    @property
    def version(self) -> str:
        """The chart's version."""
        return str(self.meta.get("version") or "")

    @property
    def is_library(self) -> bool:
        """True for ``type: library`` (helm renders none of its manifests)."""
        return self.meta.get("type") == "library"

    def dependencies(self) -> list[dict[str, Any]]:
        """The ``dependencies`` of Chart.yaml (or requirements.yaml for apiVersion v1), as maps."""
        deps = self.meta.get("dependencies")
        if deps is None:
            deps = self.requirements
        return [d for d in deps if isinstance(d, dict) and d.get("name")] if isinstance(deps, list) else []

    def where(self, rel: str) -> str:
        """``label/rel``: a path inside the chart as the user can find it."""
        return f"{self.label}/{rel}"


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ChartError(f"not a UTF-8 text file: {exc.reason} at byte {exc.start}", where) from exc


def _build(label: str, files: dict[str, bytes]) -> Chart:
    """Sort a chart's files as helm's loader does; load subcharts from ``charts/``."""
    if "Chart.yaml" not in files:
        raise ChartError("not a helm chart: no Chart.yaml", label)
    meta = _load_plain(_decode(files["Chart.yaml"], f"{label}/Chart.yaml"), f"{label}/Chart.yaml")
    if not meta.get("name"):
        raise ChartError("Chart.yaml has no name", f"{label}/Chart.yaml")
    values: dict[str, Any] = {}
    templates: list[tuple[str, str]] = []
    other: dict[str, bytes] = {}
    subs: dict[str, dict[str, bytes]] = {}
    requirements = None
    for rel in sorted(files):
        data = files[rel]
        if rel == "values.yaml":
            values = load_values(_decode(data, f"{label}/{rel}"), f"{label}/{rel}")
        elif rel == "requirements.yaml":
            requirements = _load_plain(_decode(data, f"{label}/{rel}"), f"{label}/{rel}").get("dependencies")
        elif rel in ("Chart.yaml", "Chart.lock", "requirements.lock", "values.schema.json"):
            continue
        elif rel.startswith("templates/"):
            templates.append((rel, _decode(data, f"{label}/{rel}")))
        elif rel.startswith("charts/") and not rel.endswith(".prov"):
            top, _, rest = rel[len("charts/"):].partition("/")
            subs.setdefault(top, {})[rest] = data
        else:
            other[rel] = data
    chart = Chart(label, meta, values, templates, other, requirements=requirements)
    chart.subcharts = [sub for name, group in sorted(subs.items()) if (sub := _subchart(chart, name, group))]
    return chart


def _subchart(parent: Chart, name: str, group: dict[str, bytes]) -> Chart | None:
    """A subchart from ``charts/<name>``: a packaged chart or a directory; None for what helm skips."""
    if name[:1] in ("_", "."):
        return None
    if name.endswith(".tgz") and "" in group:
        return load_chart_archive(group[""], parent.where(f"charts/{name}"))
    if "Chart.yaml" not in group:
        return None  # helm refuses a charts/ entry that is not a chart; a stray README is left alone here
    return _build(parent.where(f"charts/{name}"), {k: v for k, v in group.items() if k})


def read_archive(data: bytes, label: str, keep: Callable[[str], bool] = lambda rel: True) -> tuple[str, dict[str, bytes]]:
    """A packaged chart's top directory and its regular files (paths below the top) that ``keep`` accepts.

    Read in memory, never extracted: an entry that escapes the archive is UnsafePathError, an
    oversized one or an unreadable archive ContextError naming ``label``.
    """
    files: dict[str, bytes] = {}
    top: str | None = None
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            for m in tf:
                norm = posixpath.normpath(m.name)
                if m.name.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in m.name:
                    raise UnsafePathError(f"chart archive entry escapes the archive: {m.name!r}", label)
                head, _, rel = norm.partition("/")
                top = top or head
                if not rel or not m.isreg() or m.name == "pax_global_header" or not keep(rel):
                    continue
                if m.size > _MAX_FILE or total + m.size > MAX_CHART_BYTES:
                    raise ContextError(f"chart archive entry too large: {m.name} ({m.size} bytes)", label)
                total += m.size
                fh = tf.extractfile(m)
                files[rel] = fh.read() if fh is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ContextError(f"not a readable chart archive: {exc}", label) from exc
    return top or "", files


def load_chart_archive(data: bytes, label: str) -> Chart:
    """A packaged chart (``helm package`` output) read in memory; ``label`` names it in messages."""
    top, files = read_archive(data, label)
    return _build(f"{label}!{top}", files)


class _HelmIgnore:
    """``.helmignore`` rules: gitignore-like, a pattern without ``/`` matching the base name, ``!`` negating."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[str, bool, bool]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            line = line[1:] if neg else line
            dir_only = line.endswith("/")
            self.rules.append((line.strip("/") if dir_only else line.lstrip("/"), neg, dir_only))
        self.rules.append(("templates/.?*", False, False))  # helm's default: hidden files in templates/

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """True if the chart path ``rel`` is left out."""
        out = False
        for pat, neg, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            target = rel if "/" in pat else posixpath.basename(rel)
            if fnmatch.fnmatchcase(target, pat):
                out = not neg
        return out


def load_chart_dir(root: Path, label: str, context: Path, ignored: Callable[[str], bool] = lambda rel: False) -> Chart:
    """A chart directory inside the build ``context`` (links must stay inside it), minus ignored paths."""
    rules = _HelmIgnore((root / ".helmignore").read_text("utf-8", "replace") if (root / ".helmignore").is_file() else "")
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not rules.ignored((base / d).relative_to(root).as_posix(), True))
        for name in sorted(filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            if rel == ".helmignore" or rules.ignored(rel, False) or ignored(path.relative_to(context).as_posix()):
                continue
            real = path.resolve()
            if not real.is_relative_to(context):
                raise UnsafePathError("symbolic link points outside the build context", path.relative_to(context).as_posix())
            if not real.is_file():
                continue
            size = real.stat().st_size
            total += size
            if size > _MAX_FILE or total > MAX_CHART_BYTES:
                raise ContextError(f"chart file too large: {rel} ({size} bytes)", label)
            files[rel] = real.read_bytes()
    return _build(label, files)
