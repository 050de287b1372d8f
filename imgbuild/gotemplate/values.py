"""How Python data looks to a Go template: nil vs "no value", Go type and kind names, truth.

Template data is what YAML/JSON decoding gives (dict, list, str, int, float,
bool, None) plus any object with attributes (Helm's ``.Chart``, ``.Files``).
Go distinguishes a nil interface (a map entry that is null: Python ``None``)
from an invalid value (a missing key with ``missingkey=default``: :data:`NOVALUE`);
the engine keeps both, because Go prints and chains them differently.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["NOVALUE", "NO_VALUE_TEXT", "MethodMap", "go_type", "go_kind", "truth", "is_seq"]

NO_VALUE_TEXT = "<no value>"


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key gives unless missingkey=error."""

    __slots__ = ()

    def __repr__(self) -> str:
        return NO_VALUE_TEXT

    def __bool__(self) -> bool:
        return False


NOVALUE = _NoValue()


class MethodMap(dict):
    """A Go map type with methods (Helm's ``.Files`` is ``map[string][]byte`` with ``Get``, ``Glob``...).

    ``.Name`` calls the subclass's capitalised method ``Name`` when it has one, as Go resolves a method before a
    map key; any other name is a key. ``range``, ``len`` and ``index`` see the map.
    """

    def go_method(self, name: str) -> object | None:
        """The bound method ``name`` (a capitalised method of the subclass), or None: ``name`` is a key."""
        if not name[:1].isupper():
            return None
        attr = getattr(type(self), name, None)
        return getattr(self, name) if callable(attr) else None


def is_seq(v: object) -> bool:
    """Whether ``v`` is a Go slice to the template (list or tuple)."""
    return isinstance(v, (list, tuple))


def go_type(v: object) -> str:
    """The Go type name of ``v`` as fmt's %T and sprig's typeOf print it."""
    if v is None or v is NOVALUE:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (bytes, bytearray)):
        return "[]uint8"
    if is_seq(v):
        return "[]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    return type(v).__name__


def go_kind(v: object) -> str:
    """The reflect.Kind name of ``v`` as sprig's kindOf gives it."""
    if v is None or v is NOVALUE:
        return "invalid"
    if isinstance(v, (bool, int, float, str)):
        return go_type(v)
    if isinstance(v, (bytes, bytearray)) or is_seq(v):
        return "slice"
    if isinstance(v, Mapping):
        return "map"
    return "func" if callable(v) else "struct"


_PLAIN = frozenset((bool, int, float, str, list, dict, tuple))


def truth(v: object) -> bool:
    """Go's truth: false for nil, false, 0, and empty strings, lists and maps; true for anything else."""
    if type(v) in _PLAIN:
        return bool(v)
    if v is None or v is NOVALUE:
        return False
    if isinstance(v, (bool, int, float, complex, str, bytes, bytearray, list, tuple, Mapping)):
        return bool(v)
    return True
