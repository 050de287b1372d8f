"""YAML-aware scanning for image references, with file:line for every value.

Files are composed (not constructed) with PyYAML's SafeLoader so every scalar
keeps its start mark. Go-template actions (``{{ ... }}``) are masked first:
a line holding only actions becomes blank (``{{- if }}``, ``{{ include ... |
nindent 4 }}``) and an inline action becomes a placeholder that is put back
into the value afterwards, so a templated value is seen *as written* and can
be reported instead of guessed. A file that still does not parse is read by a
careful line scanner that only looks at ``image:`` keys on uncommented lines.

The result of a scan is a list of :class:`Hit` (raw value, file, line, how);
deciding whether a value is a valid reference is the caller's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import yaml

from imgbuild.errors import ContextError

__all__ = [
    "Hit",
    "Scalar",
    "TEMPLATE_MARKERS",
    "is_templated",
    "mask_templates",
    "load_tree",
    "load_documents",
    "walk_images",
    "scan_yaml_text",
    "scan_lines",
    "decode",
]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TEMPLATE_MARKERS = ("{{", "}}", "${", "$(")
_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_TOKEN = re.compile(r"__imgbuild_tmpl_(\d+)__")
_ONLY_TOKENS = re.compile(r"\s*(?:__imgbuild_tmpl_\d+__\s*)+")
_KINDS = {
    "tag:yaml.org,2002:str": "str",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null",
}
_TRUE = {"true", "yes", "on", "y"}


@dataclass(frozen=True)
class Hit:
    """A raw candidate image value and where it was written (1-based line); ``problem`` if unusable."""

    value: str
    file: str
    line: int
    how: str
    problem: str | None = None

    @property
    def templated(self) -> bool:
        """True if the value holds template syntax and cannot be known before install."""
        return is_templated(self.value)


@dataclass(frozen=True)
class Scalar:
    """A YAML scalar as written, with its resolved kind and location."""

    text: str
    kind: str
    file: str
    line: int

    @property
    def is_str(self) -> bool:
        """True for a non-empty string scalar."""
        return self.kind == "str" and self.text.strip() != ""

    def as_bool(self) -> bool | None:
        """The boolean this scalar holds, or None if it is not a plain boolean."""
        return self.text.lower() in _TRUE if self.kind == "bool" else None

    def as_text(self) -> str | None:
        """The value as a string if it is a string or number (tags like ``1.20``), else None."""
        if self.kind in ("str", "int", "float") and self.text.strip():
            return self.text.strip()
        return None


def is_templated(value: str) -> bool:
    """True if ``value`` contains Go-template or shell-variable syntax."""
    return any(m in value for m in TEMPLATE_MARKERS)


def decode(data: bytes, where: str) -> str:
    """Decode file bytes as UTF-8 (BOM allowed) or raise ContextError naming the file."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContextError(f"not a UTF-8 text file: {exc.reason} at byte {exc.start}", where) from exc


def mask_templates(text: str) -> tuple[str, list[str]]:
    """Mask Go-template actions, keeping line numbers; return the text and the actions masked."""
    actions: list[str] = []

    def repl(m: re.Match[str]) -> str:
        actions.append(m.group(0))
        return f"__imgbuild_tmpl_{len(actions) - 1}__" + "\n" * m.group(0).count("\n")

    masked = _ACTION.sub(repl, text)
    if not actions:
        return text, actions
    lines = ["" if _ONLY_TOKENS.fullmatch(line) else line for line in masked.split("\n")]
    return "\n".join(lines), actions


def _unmask(value: str, actions: list[str]) -> str:
    if not actions:
        return value
    return _TOKEN.sub(lambda m: actions[int(m.group(1))], value)


def _to_tree(node: yaml.Node, file: str, actions: list[str]) -> Any:
    """A composed node as dicts, lists and :class:`Scalar` leaves (``<<`` merges applied)."""
    if isinstance(node, yaml.ScalarNode):
        kind = _KINDS.get(node.tag, "other")
        return Scalar(_unmask(str(node.value), actions), kind, file, node.start_mark.line + 1)
    if isinstance(node, yaml.SequenceNode):
        return [_to_tree(n, file, actions) for n in node.value]
    out: dict[str, Any] = {}
    for key_node, val_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        val = _to_tree(val_node, file, actions)
        if key_node.tag == "tag:yaml.org,2002:merge":
            for merged in val if isinstance(val, list) else [val]:
                if isinstance(merged, dict):
                    for k, v in merged.items():
                        out.setdefault(k, v)
            continue
        out[_unmask(str(key_node.value), actions)] = val
    return out


def load_documents(text: str, file: str, *, templates: bool = True) -> list[Any]:
    """Every non-empty document of ``text`` as a tree; raises yaml.YAMLError if it does not parse."""
    actions: list[str] = []
    if templates:
        text, actions = mask_templates(text)
    return [_to_tree(n, file, actions) for n in yaml.compose_all(text, Loader=_Loader) if n is not None]


def load_tree(text: str, file: str) -> dict[str, Any]:
    """A single-document YAML file (Chart.yaml, values.yaml) as a tree; ContextError if invalid."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        raise ContextError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", where) from exc
    if node is None:
        return {}
    tree = _to_tree(node, file, [])
    if not isinstance(tree, dict):
        raise ContextError("expected a mapping at the top of the file", file)
    return tree


def _is_image_key(key: str, loose: bool) -> bool:
    return key == "image" or (loose and key.lower().endswith("image"))


def _map_image(d: dict[str, Any], key: str | None, app_version: str | None, how: str) -> Hit | None:
    """An image composed from a ``{registry?, repository, tag|digest}`` map, or None if ``d`` is not one."""
    def text(name: str) -> Scalar | None:
        v = d.get(name)
        return v if isinstance(v, Scalar) and v.as_text() is not None else None

    imageish = key is not None and key.lower().endswith("image")
    repo, tag, digest, registry = text("repository"), text("tag"), text("digest"), text("registry")
    if repo is None and imageish and (tag or digest):
        repo = text("name")
    if repo is None or repo.kind != "str" or (not (tag or digest) and not imageish):
        return None
    value = repo.as_text() or ""
    if registry is not None:
        value = f"{(registry.as_text() or '').rstrip('/')}/{value}"
    problem = None
    if tag is not None:
        value += f":{tag.as_text()}"
    elif digest is None and app_version:
        value += f":{app_version}"
    elif digest is None:
        problem = "image map without tag or digest" + (" (and no chart appVersion)" if how.startswith("chart") else "")
    if digest is not None:
        value += f"@{digest.as_text()}"
    where = repo
    for part in (tag, digest):
        if part is not None and part.file != repo.file:
            where = part
    return Hit(value, where.file, where.line, how, problem)


def _disabled(node: dict[str, Any]) -> Scalar | None:
    flag = node.get("enabled")
    return flag if isinstance(flag, Scalar) and flag.as_bool() is False else None


def walk_images(tree: Any, how: str, *, loose: bool = False, app_version: str | None = None,
                skip_top: frozenset[str] = frozenset(),
                excluded: list[tuple[str, Scalar, list[Hit]]] | None = None) -> Iterator[Hit]:
    """Yield every ``image:`` string and image map in ``tree``.

    ``loose`` (chart values) also accepts keys ending in ``Image``; with ``excluded`` given, a
    mapping whose ``enabled`` is a plain ``false`` is not searched and its would-be hits are
    appended to ``excluded`` as ``(key path, enabled scalar, hits)``.
    """
    stack: list[tuple[Any, str | None, str]] = [(tree, None, "")]
    while stack:
        node, key, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, None, f"{path}[{i}]") for i, item in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        if excluded is not None and path and (flag := _disabled(node)) is not None:
            inner = list(walk_images(node, how, loose=loose, app_version=app_version))
            if inner:
                excluded.append((path, flag, inner))
            continue
        hit = _map_image(node, key, app_version, how)
        if hit is not None:
            yield hit
            continue
        children = []
        for k, v in node.items():
            if not path and k in skip_top:
                continue
            if isinstance(v, Scalar):
                if _is_image_key(k, loose) and v.is_str:
                    yield Hit(v.text.strip(), v.file, v.line, how)
            else:
                children.append((v, k, f"{path}.{k}" if path else k))
        stack.extend(reversed(children))


def scan_yaml_text(text: str, file: str, how: str) -> tuple[list[Hit], str | None]:
    """Hits from a (possibly templated, multi-document) YAML text, plus a note if the line scanner was used."""
    try:
        docs = load_documents(text, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        note = f"not valid YAML{line} ({getattr(exc, 'problem', None) or 'parse error'}); scanned line by line"
        return scan_lines(text, file, f"{how}-line-scan"), note
    hits: list[Hit] = []
    for doc in docs:
        hits.extend(walk_images(doc, how))
    return hits, None


_IMAGE_LINE = re.compile(r"""^\s*(?:-\s+)*(?P<q>["']?)image(?P=q)\s*:(?:\s+(?P<v>.*))?$""")


def _line_value(raw: str) -> str | None:
    """The scalar value after ``image:`` on one line, unquoted, without a trailing comment."""
    raw = raw.strip()
    if not raw or raw[0] in "|>&*!" or raw in ("~", "null", "Null", "NULL"):
        return None
    if raw[0] in "\"'":
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else None
    if raw.startswith(("{", "[")) and not raw.startswith("{{"):
        return None
    value = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    return value or None


def scan_lines(text: str, file: str, how: str) -> list[Hit]:
    """The fallback: ``image: value`` on uncommented lines, for files that are not valid YAML."""
    hits = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        m = _IMAGE_LINE.match(line)
        if m and m.group("v") is not None:
            value = _line_value(m.group("v"))
            if value:
                hits.append(Hit(value, file, n, how))
    return hits
