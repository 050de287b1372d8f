"""The one error the Go-template engine raises, and the marker funcs raise to fail a call.

Everything that goes wrong while parsing or executing a template is a
:class:`TemplateError` (an :class:`~imgbuild.errors.InputError`, exit 2: the
template or its data is what the user fixes), with ``where`` =
``"name:line:col"``. Line numbers are 1-based and columns 0-based byte offsets,
as Go's text/template reports them, so they match what helm prints.
"""

from __future__ import annotations

from imgbuild.errors import InputError

__all__ = ["TemplateError", "FuncError"]


class TemplateError(InputError):
    """A template that does not parse, or whose execution failed; ``where`` is ``name:line:col``."""

    def __init__(self, message: str, name: str | None = None, line: int | None = None,
                 col: int | None = None) -> None:
        where = None
        if name is not None:
            where = name if line is None else f"{name}:{line}" if col is None else f"{name}:{line}:{col}"
        super().__init__(message, where)
        self.name = name
        self.line = line
        self.col = col


class FuncError(Exception):
    """Raised by a template function to fail its call: becomes ``error calling NAME: message``."""
