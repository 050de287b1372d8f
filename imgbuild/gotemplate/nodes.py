"""The parse tree of a Go template: list, text, action, control and operand nodes.

Every node keeps ``pos`` (offset in its source) and ``src`` (the parse name, i.e.
the file it came from), so an execution error names ``file:line:col`` of the
node it failed on. ``str(node)`` writes the node back in template syntax, for
Go's ``at <.x.y>`` context in messages.
"""

from __future__ import annotations

__all__ = [
    "Node", "Text", "Action", "If", "With", "Range", "TemplateCall", "Break", "Continue",
    "Pipe", "Command", "Field", "Variable", "Chain", "Identifier", "Dot", "Nil", "Literal",
]


class Node:
    """A parse-tree node; ``pos`` is its offset in the text it was parsed from."""

    __slots__ = ("pos",)


class Text(Node):
    """Literal text copied to the output."""

    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text

    def __str__(self) -> str:
        return self.text


class Action(Node):
    """``{{ pipeline }}``: prints the pipeline's value unless it declares variables."""

    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: "Pipe") -> None:
        self.pos, self.pipe = pos, pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class If(Node):
    """``{{if pipe}} body {{else}} other {{end}}``; ``else if`` is an If inside ``other``."""

    __slots__ = ("pipe", "body", "other")
    keyword = "if"

    def __init__(self, pos: int, pipe: "Pipe", body: list, other: list | None) -> None:
        self.pos, self.pipe, self.body, self.other = pos, pipe, body, other

    def __str__(self) -> str:
        return "{{" + self.keyword + " " + str(self.pipe) + "}}"


class With(If):
    """``{{with pipe}}``: like if, and the body's dot is the pipeline's value."""

    __slots__ = ()
    keyword = "with"


class Range(If):
    """``{{range [$i, $e :=] pipe}} body {{else}} other {{end}}``."""

    __slots__ = ()
    keyword = "range"


class TemplateCall(Node):
    """``{{template "name" pipe}}`` (a ``block`` also leaves one of these)."""

    __slots__ = ("name", "pipe")

    def __init__(self, pos: int, name: str, pipe: "Pipe | None") -> None:
        self.pos, self.name, self.pipe = pos, name, pipe

    def __str__(self) -> str:
        return f'{{{{template "{self.name}"' + (f" {self.pipe}" if self.pipe else "") + "}}"


class Break(Node):
    """``{{break}}`` inside a range."""

    __slots__ = ()

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{break}}"


class Continue(Break):
    """``{{continue}}`` inside a range."""

    __slots__ = ()

    def __str__(self) -> str:
        return "{{continue}}"


class Pipe(Node):
    """Commands joined by ``|``, optionally declaring (``:=``) or assigning (``=``) variables.

    ``slots`` are the frame slots of the variables in ``decl`` (resolved by the parser).
    """

    __slots__ = ("decl", "slots", "assign", "cmds")

    def __init__(self, pos: int, decl: list[str], slots: list[int], assign: bool, cmds: list["Command"]) -> None:
        self.pos, self.decl, self.slots, self.assign, self.cmds = pos, decl, slots, assign, cmds

    def __str__(self) -> str:
        head = ", ".join(self.decl) + (" = " if self.assign else " := ") if self.decl else ""
        return head + " | ".join(str(c) for c in self.cmds)


class Command(Node):
    """One stage of a pipeline: an operand, or a function/method and its arguments."""

    __slots__ = ("args",)

    def __init__(self, pos: int, args: list[Node]) -> None:
        self.pos, self.args = pos, args

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


class Field(Node):
    """``.a.b``: fields of dot."""

    __slots__ = ("names",)

    def __init__(self, pos: int, names: tuple[str, ...]) -> None:
        self.pos, self.names = pos, names

    def __str__(self) -> str:
        return "".join("." + n for n in self.names)


class Variable(Node):
    """``$x`` or ``$x.a.b`` (``$`` alone is the data the template was executed with); ``slot`` is its frame slot."""

    __slots__ = ("name", "slot", "names")

    def __init__(self, pos: int, name: str, slot: int, names: tuple[str, ...] = ()) -> None:
        self.pos, self.name, self.slot, self.names = pos, name, slot, names

    def __str__(self) -> str:
        return self.name + "".join("." + n for n in self.names)


class Chain(Node):
    """``(pipe).a.b`` or ``func.a``: fields of a term's value."""

    __slots__ = ("node", "names")

    def __init__(self, pos: int, node: Node, names: tuple[str, ...]) -> None:
        self.pos, self.node, self.names = pos, node, names

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + n for n in self.names)


class Identifier(Node):
    """A function name."""

    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def __str__(self) -> str:
        return self.name


class Dot(Node):
    """``.``: the current data."""

    __slots__ = ()

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "."


class Nil(Dot):
    """``nil``: only usable as a function argument."""

    __slots__ = ()

    def __str__(self) -> str:
        return "nil"


class Literal(Node):
    """A constant: string, number, character (an int) or boolean; ``text`` is its source."""

    __slots__ = ("value", "text")

    def __init__(self, pos: int, value: object, text: str) -> None:
        self.pos, self.value, self.text = pos, value, text

    def __str__(self) -> str:
        return self.text
