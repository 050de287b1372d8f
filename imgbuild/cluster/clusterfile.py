"""The Clusterfile: one ``Cluster``, any ``Config`` documents, and other documents kept as they were written.

:func:`load_clusterfile` reads a file (or text), renders it as a Go template
when it uses ``{{ }}`` or values are given (``--values``/``--set``, as sealos'
``apply`` does), splits it into YAML documents and composes each, so every
problem is reported as ``file:line: message``. Documents of other kinds
(kubeadm's ``ClusterConfiguration``, a ``KubeletConfiguration`` ...) are kept
byte for byte, with a warning. :meth:`Clusterfile.dump` is byte-stable: a
document whose model did not change is written exactly as it was read; when the
Cluster changed, only the changed top-level section (``metadata``, ``spec`` or
``status``) is rewritten, so a user's comments elsewhere survive in the state
copy imgbuild keeps. New documents are written in sealos' layout (sorted keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from imgbuild.cluster.model import API_VERSION, KIND_CLUSTER, KIND_CONFIG, Cluster, Config
from imgbuild.cluster.parse import parse_cluster, parse_config
from imgbuild.cluster.yamlnodes import Reader, compose
from imgbuild.errors import ClusterfileError

__all__ = ["Document", "Clusterfile", "load_clusterfile", "parse_clusterfile", "to_yaml"]

_MARKER = re.compile(r"---(?=[ \t\r\n]|$)")
_FOREIGN_CLUSTER_GROUPS = ("apps.sealos.io/", "sealer.cloud/", "sealer.aliyun.com/")
_SECTIONS = ("metadata", "spec", "status")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block style, multi-line strings as ``|`` literals, no line folding."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any) -> str:
    """``data`` as block-style YAML with sorted keys, as sealos writes a Clusterfile."""
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                     width=1 << 16)


@dataclass(frozen=True)
class Document:
    """One YAML document of a Clusterfile: its text as written, where it starts, its kind and model."""

    text: str
    line: int
    kind: str = ""
    api_version: str = ""
    loaded: Any = None
    model: Any = None
    spans: Mapping[str, tuple[int, int, int]] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:  # the text holds passwords
        return f"Document(kind={self.kind!r}, line={self.line}, changed={self.model != self.loaded})"

    def render(self) -> str:
        """The document's text: as read when its model is unchanged, else with changed parts rewritten."""
        if self.model == self.loaded:
            return self.text
        if isinstance(self.model, Cluster) and isinstance(self.loaded, Cluster) and self.spans:
            return self._patched()
        return self._marker() + to_yaml(self.model.to_dict())

    def _marker(self) -> str:
        first = self.text.split("\n", 1)[0]
        if not _MARKER.match(first):
            return "---\n" if self.line > 1 else ""
        return first + "\n" if not first[3:].strip() or first[3:].strip().startswith("#") else "---\n"

    def _patched(self) -> str:
        new, old = self.model.to_dict(), self.loaded.to_dict()
        edits: list[tuple[int, int, str]] = []
        for key in _SECTIONS:
            if new[key] == old[key]:
                continue
            sub = self._key_edits(key, old[key], new[key]) if key == "spec" else None
            if sub is not None:
                edits += sub
            elif key in self.spans:
                start, end, col = self.spans[key]
                edits.append((start, end, self._block(key, new[key], col, self.text[start:end].endswith("\n"))))
            else:
                col = next(iter(self.spans.values()))[2]
                pad = "" if not self.text or self.text.endswith("\n") else "\n"
                edits.append((len(self.text), len(self.text), pad + " " * col + self._block(key, new[key], col, True)))
        text = self.text
        for start, end, block in sorted(edits, key=lambda e: e[0], reverse=True):
            text = text[:start] + block + text[end:]
        return text

    @staticmethod
    def _block(key: str, value: Any, indent: int, newline: bool) -> str:
        """``key: value`` as YAML, lines after the first indented by ``indent`` (the first starts at the key)."""
        lines = to_yaml({key: value}).rstrip("\n").split("\n")
        pad = " " * indent
        return "\n".join([lines[0]] + [pad + ln if ln else ln for ln in lines[1:]]) + ("\n" if newline else "")

    def _key_edits(self, section: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list | None:
        """Edits that rewrite only the changed keys of ``section`` (so comments elsewhere in it stay); None if the
        text does not allow it."""
        spans = {k[len(section) + 1:]: v for k, v in self.spans.items() if k.startswith(section + ".")}
        if section not in self.spans or not spans:
            return None
        edits = []
        for key, (start, end, col) in spans.items():
            if key in old and key not in new:
                line_start = self.text.rfind("\n", 0, start) + 1
                if self.text[line_start:start].strip():
                    return None
                edits.append((line_start, end + (self.text[end:end + 1] == "\n"), ""))
            elif key in new and new[key] != old.get(key):
                edits.append((start, end, self._block(key, new[key], col, self.text[start:end].endswith("\n"))))
        added = [key for key in new if key not in spans and new[key] != old.get(key)]
        cols = {col for _, _, col in spans.values()}
        if added and len(cols) != 1:
            return None
        if added:
            end, indent = self.spans[section][1], cols.pop()
            edits.append((end, end, "".join("\n" + " " * indent + self._block(k, new[k], indent, False)
                                            for k in added)))
        return edits


@dataclass(frozen=True)
class Clusterfile:
    """A loaded Clusterfile: its documents in order, the warnings found, and where it came from."""

    documents: tuple[Document, ...]
    name: str = "<Clusterfile>"
    warnings: tuple[str, ...] = ()
    rendered: bool = False

    @property
    def cluster(self) -> Cluster:
        """The Cluster document's model."""
        return next(d.model for d in self.documents if d.kind == KIND_CLUSTER and d.api_version == API_VERSION)

    @property
    def configs(self) -> tuple[Config, ...]:
        """The Config documents, in file order."""
        return tuple(d.model for d in self.documents if isinstance(d.model, Config))

    @property
    def others(self) -> tuple[Document, ...]:
        """Documents of other kinds, kept as written (kubeadm configs and the like)."""
        return tuple(d for d in self.documents if d.kind and d.model is None)

    def with_cluster(self, cluster: Cluster) -> "Clusterfile":
        """A copy whose Cluster is ``cluster`` (written back by :meth:`dump`)."""
        docs = tuple(replace(d, model=cluster) if isinstance(d.model, Cluster) else d for d in self.documents)
        return replace(self, documents=docs)

    def with_configs(self, configs: Iterable[Config]) -> "Clusterfile":
        """A copy with these Config documents: same-named ones replaced in place, new ones appended, others dropped."""
        wanted = {c.name: c for c in configs}
        docs = []
        for d in self.documents:
            if isinstance(d.model, Config):
                if d.model.name in wanted:
                    docs.append(replace(d, model=wanted.pop(d.model.name)))
                continue
            docs.append(d)
        docs.extend(Document("---\n", 0, KIND_CONFIG, API_VERSION, None, c) for c in wanted.values())
        return replace(self, documents=tuple(docs))

    def dump(self) -> str:
        """The Clusterfile as text: unchanged documents byte for byte, changed ones rewritten."""
        return "".join(_joinable(d.render()) if i < len(self.documents) - 1 else d.render()
                       for i, d in enumerate(self.documents))

    @classmethod
    def new(cls, cluster: Cluster, configs: Iterable[Config] = (), name: str = "<generated>") -> "Clusterfile":
        """A Clusterfile written from models (as ``imgbuild gen`` prints it)."""
        docs = [Document("", 1, KIND_CLUSTER, API_VERSION, None, cluster)]
        docs += [Document("---\n", 0, KIND_CONFIG, API_VERSION, None, c) for c in configs]
        return cls(documents=tuple(docs), name=name)


def _joinable(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _segments(text: str) -> list[tuple[str, int]]:
    """``text`` cut before every ``---`` document marker: (segment, first line), joined they give ``text``.

    ``%`` directive lines stay with the document they precede.
    """
    out: list[tuple[str, int]] = []
    start, start_line = 0, 1
    pos, line, directives = 0, 1, False
    for raw in text.splitlines(keepends=True):
        if _MARKER.match(raw) and pos > 0 and not directives:
            out.append((text[start:pos], start_line))
            start, start_line = pos, line
        directives = raw.startswith("%") or (directives and (not raw.strip() or raw.startswith("#")))
        pos += len(raw)
        line += 1
    out.append((text[start:], start_line))
    return out


def _kind(r: Reader, root: Node) -> tuple[str, str]:
    values = {}
    for key_node, value_node in root.value:
        if isinstance(key_node, ScalarNode) and key_node.value in ("kind", "apiVersion"):
            values[key_node.value] = value_node.value if isinstance(value_node, ScalarNode) else ""
    if not values.get("kind"):
        r.problem(root, "document has no kind")
    return values.get("kind", ""), values.get("apiVersion", "")


def _spans(text: str, root: MappingNode) -> dict[str, tuple[int, int, int]]:
    """(start, end, column) of the top-level sections and of the keys of ``spec`` (``spec.image``), from the key
    through its last value; {} when the text is not safe to patch (flow style, ``...`` markers, odd anchors)."""
    if root.flow_style or "\n...\n" in f"\n{text}":
        return {}
    spans = _key_spans(root, len(text), _SECTIONS)
    if spans is None:
        return {}
    spec = next((v for k, v in root.value if isinstance(k, ScalarNode) and k.value == "spec"), None)
    if "spec" in spans and isinstance(spec, MappingNode) and not spec.flow_style:
        sub = _key_spans(spec, spans["spec"][1], None)
        if sub is not None:
            spans.update({f"spec.{k}": v for k, v in sub.items()})
    return spans


def _key_spans(node: MappingNode, limit: int, keys: tuple[str, ...] | None) -> dict[str, tuple[int, int, int]] | None:
    bounds = [k.start_mark.index for k, _ in node.value] + [limit]
    spans = {}
    for i, (key, value) in enumerate(node.value):
        if not isinstance(key, ScalarNode) or (keys is not None and key.value not in keys):
            continue
        end = _last_end(value)
        if not key.start_mark.index <= value.start_mark.index <= end <= bounds[i + 1]:
            return None
        spans[key.value] = (key.start_mark.index, end, key.start_mark.column)
    return spans


def _last_end(node: Node) -> int:
    while not isinstance(node, ScalarNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    return node.end_mark.index


def _document(r: Reader, text: str, line: int, seen: dict[str, int]) -> Document:
    r.line_offset = line - 1
    root = compose(text, r.name, line - 1)
    if root is None:
        return Document(text, line)
    if not isinstance(root, MappingNode):
        r.problem(root, "a Clusterfile document must be a mapping (apiVersion, kind, ...)")
        return Document(text, line)
    kind, api_version = _kind(r, root)
    model = None
    if kind in (KIND_CLUSTER, KIND_CONFIG) and api_version == API_VERSION:
        model = parse_cluster(r, root) if kind == KIND_CLUSTER else parse_config(r, root)
        key = kind if kind == KIND_CLUSTER else f"Config {getattr(model, 'name', '')}"
        if model is not None and key in seen:
            r.problem(root, f"a second {key} document (the first is at line {seen[key]})")
        seen.setdefault(key, r.line(root))
    elif kind == KIND_CLUSTER and api_version.startswith(_FOREIGN_CLUSTER_GROUPS):
        r.problem(root, f"apiVersion {api_version!r} is not supported; imgbuild reads {API_VERSION}")
    elif kind:
        r.warn(root, f"document of kind {kind} ({api_version or 'no apiVersion'}) is kept as written, not used")
    spans = _spans(text, root) if kind == KIND_CLUSTER else {}
    return Document(text, line, kind, api_version, model, model, spans)


def parse_clusterfile(text: str, name: str = "<Clusterfile>", *, rendered: bool = False) -> Clusterfile:
    """Parse Clusterfile ``text`` (no templating); raises the first ClusterfileError, ``.problems`` lists all."""
    r = Reader(name)
    seen: dict[str, int] = {}
    docs = tuple(_document(r, segment, line, seen) for segment, line in _segments(text))
    if KIND_CLUSTER not in seen and not r.problems:
        r.line_offset = 0
        r.problems.append(ClusterfileError(f"no Cluster document (apiVersion: {API_VERSION}, kind: Cluster)",
                                           f"{name}:1"))
    r.raise_first()
    return Clusterfile(documents=docs, name=name, warnings=tuple(r.warnings), rendered=rendered)


def _read(source: str | bytes | Path) -> tuple[str, str]:
    if isinstance(source, str) and "\n" not in source and not source.lstrip().startswith(("{", "---")):
        source = Path(source)
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise ClusterfileError(f"cannot read Clusterfile: {exc.strerror}", str(source)) from exc
        name = str(source)
    else:
        data, name = source, "<Clusterfile>"
    if isinstance(data, str):
        return data, name
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ClusterfileError("Clusterfile is not UTF-8 text", f"{name}:{line}") from exc


def load_clusterfile(path_or_text: str | bytes | Path, *, values: Iterable[Path] = (), sets: Iterable[str] = (),
                     env: Mapping[str, str] | None = None, name: str | None = None) -> Clusterfile:
    """Load a Clusterfile from a path (a ``Path``, or a one-line ``str`` not starting with ``{`` or ``---``) or text.

    With ``{{`` in it, or values given, it is first rendered as a Go template with ``.Values`` from the values
    files and ``--set`` expressions (``env "X"`` reads ``env``); problems in the result then point at lines of
    the rendered text, named ``FILE (rendered):LINE``.
    """
    from imgbuild.cluster.values import load_values, render_clusterfile

    text, source_name = _read(path_or_text)
    name = name or source_name
    values, sets = list(values), list(sets)
    if "{{" in text or values or sets:
        text = render_clusterfile(text, load_values(values, sets), name, env)
        return parse_clusterfile(text, f"{name} (rendered)", rendered=True)
    return parse_clusterfile(text, name)
