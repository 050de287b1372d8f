"""Reading a composed YAML node tree so that every value knows its ``file:line``.

The Clusterfile loader composes YAML (``yaml.compose`` with libyaml when it is
there) instead of constructing Python objects, so each value keeps the mark of
where it was written, and a plain scalar keeps its text as written (``port:
0022`` stays ``"0022"``, a password ``0123`` is not read as octal). A
:class:`Reader` collects every problem it finds, so one load reports them all;
the first becomes the :class:`~imgbuild.errors.ClusterfileError` raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from imgbuild.errors import ClusterfileError

__all__ = ["Reader", "compose", "to_data", "NULL_TAG", "MERGE_TAG"]

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ERRORS = (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError)


def compose(text: str, name: str, line_offset: int = 0) -> Node | None:
    """The node tree of one YAML document, or None when it is empty; a syntax error names file:line."""
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 if mark else 1) + line_offset
        raise ClusterfileError(f"invalid YAML: {exc.problem or exc.context}", f"{name}:{line}") from exc
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1 + line_offset
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or " ")
        raise ClusterfileError(f"invalid YAML: character #x{char:04x} is not allowed", f"{name}:{line}") from exc
    except _ERRORS as exc:
        raise ClusterfileError(f"invalid YAML: {str(exc).splitlines()[0]}", f"{name}:{line_offset + 1}") from exc


def to_data(node: Node) -> Any:
    """The plain Python value of ``node`` (for fields imgbuild keeps but does not read); ValueError if it has none."""
    try:
        return yaml.constructor.SafeConstructor().construct_document(node)
    except _ERRORS as exc:
        raise ValueError(f"cannot read value: {exc}") from exc


@dataclass
class Reader:
    """Typed access to nodes of one document; problems are collected with their file:line."""

    name: str
    line_offset: int = 0
    problems: list[ClusterfileError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def line(self, node: Node) -> int:
        """The line ``node`` starts on, counted from 1 in the whole file."""
        return node.start_mark.line + 1 + self.line_offset

    def where(self, node: Node) -> str:
        """``file:line`` of ``node``."""
        return f"{self.name}:{self.line(node)}"

    def problem(self, node: Node, message: str) -> None:
        """Record a problem at ``node``."""
        self.problems.append(ClusterfileError(message, self.where(node)))

    def reported(self, node: Node | None) -> bool:
        """True if a problem was already recorded at ``node``'s line (so a second one would only repeat it)."""
        return node is not None and any(p.where == self.where(node) for p in self.problems)

    def warn(self, node: Node, message: str) -> None:
        """Record a warning (``file:line: message``) at ``node``."""
        self.warnings.append(f"{self.where(node)}: {message}")

    def raise_first(self) -> None:
        """Raise the first problem (with ``.problems`` listing all), if there is one."""
        if self.problems:
            first = self.problems[0]
            first.problems = list(self.problems)
            raise first

    def items(self, node: Node, what: str) -> Iterator[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping; a non-mapping or duplicate key is a problem."""
        if not isinstance(node, MappingNode):
            if not self.is_null(node):
                self.problem(node, f"{what} must be a mapping, not {_kind(node)}")
            return
        try:
            yaml.constructor.SafeConstructor().flatten_mapping(node)  # resolve '<<' merge keys in place
        except _ERRORS as exc:
            self.problem(node, f"{what}: {exc}")
            return
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, f"{what} has a key that is not a string")
                continue
            key = key_node.value
            if key in seen:
                self.problem(key_node, f"{what}.{key} is given twice (first at line {self.line(seen[key])})")
                continue
            seen[key] = key_node
            yield key, key_node, value_node

    def string(self, node: Node, what: str) -> str | None:
        """A scalar's text as written (None for null); a collection is a problem (None)."""
        if isinstance(node, ScalarNode):
            return None if node.tag == NULL_TAG else node.value
        self.problem(node, f"{what} must be a string, not {_kind(node)}")
        return None

    def strings(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A sequence of strings as (text, node) pairs; null is an empty list."""
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{what} must be a list, not {_kind(node)}")
            return []
        out = []
        for item in node.value:
            text = self.string(item, f"{what} item")
            if text is not None:
                out.append((text, item))
            elif isinstance(item, ScalarNode):
                self.problem(item, f"{what} has an empty item")
        return out

    def sequence(self, node: Node, what: str) -> list[Node]:
        """The items of a sequence; null is empty, anything else a problem."""
        if isinstance(node, SequenceNode):
            return list(node.value)
        if not self.is_null(node):
            self.problem(node, f"{what} must be a list, not {_kind(node)}")
        return []

    def data(self, node: Node, what: str) -> Any:
        """The plain Python value of ``node``; unreadable is a problem (None)."""
        try:
            return to_data(node)
        except ValueError as exc:
            self.problem(node, f"{what}: {exc}")
            return None

    @staticmethod
    def is_null(node: Node) -> bool:
        """True for ``~``, ``null`` or an empty value."""
        return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{node.value!r}" if len(node.value) < 40 else "a scalar"
