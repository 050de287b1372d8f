"""Go text/template's parser: tokens -> one tree per template name (the text's own and each define/block).

Follows ``text/template/parse/parse.go``: the same grammar, the same checks at
parse time (an unknown function, an undefined variable, ``{{break}}`` outside a
range, a non-executable pipeline stage), and Go's messages, named
``name:line:col``. Variables are resolved here to slots of the template's
frame, so execution indexes a list instead of searching a stack.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from imgbuild.gotemplate import nodes as n
from imgbuild.gotemplate.errors import TemplateError
from imgbuild.gotemplate.lexer import KEYWORDS, Positions, Token, lex

__all__ = ["Tree", "parse", "unquote", "is_empty"]

_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|([0-7]{3})|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))",
                     re.S)
_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
               "'": "'", '"': '"'}
_OPERAND_START = {"bool", "charconst", "dot", "field", "ident", "number", "nil", "raw", "string", "var", "("}
_NOT_EXECUTABLE = (n.Literal, n.Dot)


@dataclass
class Tree:
    """One named template: its body, the number of variable slots it needs, where it came from."""

    name: str
    src: str
    root: list
    nslots: int
    positions: Positions


class _Marker:
    """``{{end}}`` or ``{{else}}`` as returned by an item list."""

    def __init__(self, word: str, pos: int) -> None:
        self.word, self.pos = word, pos

    def __str__(self) -> str:
        return "{{" + self.word + "}}"


def unquote(text: str) -> str:
    """Go's strconv.Unquote for a "double-quoted", `raw` or 'c' literal; ValueError when malformed."""
    if len(text) < 2 or text[-1] != text[0]:
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body.replace("\r", "")
    out = _ESCAPE.sub(lambda m: _escape(m, quote), body)
    if quote == "'" and len(out) != 1:
        raise ValueError("invalid syntax")
    return out


def _escape(m: re.Match, quote: str) -> str:
    simple, octal, hx, u4, u8, bad = m.groups()
    if simple is not None:
        if simple in "'\"" and simple != quote:
            raise ValueError("invalid syntax")
        return _SIMPLE_ESC[simple]
    if bad is not None:
        raise ValueError("invalid syntax")
    code = int(octal, 8) if octal else int(hx or u4 or u8, 16)
    if code > 0x10FFFF or (u4 or u8) and 0xD800 <= code < 0xE000 or octal and code > 255:
        raise ValueError("invalid syntax")
    return chr(code)


def is_empty(root: list) -> bool:
    """Whether a template body holds only whitespace (Go's IsEmptyTree: such a define replaces nothing)."""
    return all(isinstance(x, n.Text) and not x.text.strip() for x in root)


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "EOF"
    if tok.kind in KEYWORDS:
        return f"<{tok.val}>"
    val = tok.val if len(tok.val) <= 10 else tok.val[:10] + "..."
    return '"' + val.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _number(tok: Token) -> object:
    text = tok.val
    if text.startswith("'"):
        return ord(unquote(text))
    if text.endswith("i") and not text.lower().startswith(("0x", "+0x", "-0x")):
        raise ValueError("complex constants are not supported")
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if re.fullmatch(r"0[0-7_]+", body):
        return sign * int(body.replace("_", ""), 8)
    if re.fullmatch(r"0[xX][0-9a-fA-F_]+|0[oObB][0-7_]+|[0-9][0-9_]*", body):
        return sign * int(body, 0)
    if body[:2] in ("0x", "0X"):
        return sign * float.fromhex(body.replace("_", ""))
    return sign * float(body)


class _Parser:
    def __init__(self, text: str, src: str, funcs: Container[str]) -> None:
        self.toks = lex(text, src)
        self.i = 0
        self.src = src
        self.funcs = funcs
        self.positions = Positions(text)
        self.trees: dict[str, Tree] = {}
        self.reset()

    def reset(self) -> None:
        self.vars: list[tuple[str, int]] = [("$", 0)]
        self.nslots = 1
        self.range_depth = 0

    # token access
    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def next_nonspace(self) -> Token:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek(self) -> Token:
        return self.toks[self.i]

    def peek_nonspace(self) -> Token:
        tok = self.next_nonspace()
        if tok.kind != "eof":
            self.i -= 1
        return tok

    def fail(self, msg: str, pos: int) -> TemplateError:
        line, col = self.positions.at(pos)
        return TemplateError(msg, self.src, line, col)

    def unexpected(self, tok: Token, context: str) -> TemplateError:
        return self.fail(f"unexpected {_describe(tok)} in {context}", tok.pos)

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next_nonspace()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    # top level
    def parse(self, name: str) -> dict[str, Tree]:
        root: list = []
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                mark = self.i
                self.next()
                if self.next_nonspace().kind == "define":
                    self.definition()
                    continue
                self.i = mark
            node = self.text_or_action()
            if isinstance(node, _Marker):
                raise self.fail(f"unexpected {node}", node.pos)
            root.append(node)
        self.add(Tree(name, self.src, root, self.nslots, self.positions))
        return self.trees

    def add(self, tree: Tree) -> None:
        old = self.trees.get(tree.name)
        if old is None or is_empty(old.root):
            self.trees[tree.name] = tree
        elif not is_empty(tree.root):
            raise self.fail(f"template: multiple definition of template {tree.name!r}", tree.root[0].pos)

    def definition(self) -> None:
        tok = self.next_nonspace()
        if tok.kind not in ("string", "raw"):
            raise self.unexpected(tok, "define clause")
        name = self.template_name(tok, "define clause")
        self.expect("right", "define clause")
        self.add(self.body(name, "define clause"))

    def body(self, name: str, context: str) -> Tree:
        """Parse a define/block body up to its {{end}} as a tree of its own (fresh variables)."""
        saved = (self.vars, self.nslots, self.range_depth)
        self.reset()
        root, end = self.item_list()
        if end.word != "end":
            raise self.fail(f"unexpected {end} in {context}", end.pos)
        tree = Tree(name, self.src, root, self.nslots, self.positions)
        self.vars, self.nslots, self.range_depth = saved
        return tree

    def item_list(self) -> tuple[list, _Marker]:
        items: list = []
        while self.peek_nonspace().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker):
                return items, node
            items.append(node)
        raise self.fail("unexpected EOF", self.peek().pos)

    def text_or_action(self) -> object:
        tok = self.next_nonspace()
        if tok.kind == "text":
            return n.Text(tok.pos, tok.val)
        if tok.kind == "left":
            return self.action()
        raise self.unexpected(tok, "input")

    def action(self) -> object:
        tok = self.next_nonspace()
        handler = {
            "block": self.block_control, "break": self.break_control, "continue": self.break_control,
            "else": self.else_control, "end": self.end_control, "if": self.control, "range": self.control,
            "template": self.template_control, "with": self.control,
        }.get(tok.kind)
        if handler is not None:
            return handler(tok)
        self.i -= 1
        return n.Action(self.peek().pos, self.pipeline("command", "right"))

    # control structures
    def control(self, tok: Token) -> n.Node:
        context = tok.kind
        mark = len(self.vars)
        pipe = self.pipeline(context, "right")
        self.range_depth += context == "range"
        body, end = self.item_list()
        self.range_depth -= context == "range"
        other = None
        if end.word == "else":
            nxt = self.peek()
            if context in ("if", "with") and nxt.kind == context:
                self.next()
                other = [self.control(nxt)]
            else:
                other, end = self.item_list()
                if end.word != "end":
                    raise self.fail(f"expected end; found {end}", end.pos)
        del self.vars[mark:]
        cls = {"if": n.If, "with": n.With, "range": n.Range}[context]
        return cls(tok.pos, pipe, body, other)

    def else_control(self, tok: Token) -> _Marker:
        if self.peek_nonspace().kind in ("if", "with"):
            return _Marker("else", tok.pos)
        self.expect("right", "else")
        return _Marker("else", tok.pos)

    def end_control(self, tok: Token) -> _Marker:
        self.expect("right", "end")
        return _Marker("end", tok.pos)

    def break_control(self, tok: Token) -> n.Node:
        self.expect("right", "{{" + tok.kind + "}}")
        if not self.range_depth:
            raise self.fail(f"{{{{{tok.kind}}}}} outside {{{{range}}}}", tok.pos)
        return n.Break(tok.pos) if tok.kind == "break" else n.Continue(tok.pos)

    def template_name(self, tok: Token, context: str) -> str:
        if tok.kind not in ("string", "raw"):
            raise self.unexpected(tok, context)
        try:
            return unquote(tok.val)
        except ValueError as exc:
            raise self.fail(f"{exc} in {tok.val}", tok.pos) from None

    def template_control(self, tok: Token) -> n.Node:
        name = self.template_name(self.next_nonspace(), "template clause")
        pipe = None
        if self.next_nonspace().kind != "right":
            self.i -= 1
            pipe = self.pipeline("template clause", "right")
        return n.TemplateCall(tok.pos, name, pipe)

    def block_control(self, tok: Token) -> n.Node:
        name = self.template_name(self.next_nonspace(), "block clause")
        pipe = self.pipeline("block clause", "right")
        self.add(self.body(name, "block clause"))
        return n.TemplateCall(tok.pos, name, pipe)

    # pipelines
    def pipeline(self, context: str, end: str) -> n.Pipe:
        pos = self.peek_nonspace().pos
        decl, assign = self.declarations(context)
        cmds: list[n.Command] = []
        while True:
            tok = self.next_nonspace()
            if tok.kind == end:
                break
            if tok.kind not in _OPERAND_START:
                raise self.unexpected(tok, context)
            self.i -= 1
            cmds.append(self.command())
        if not cmds:
            raise self.fail(f"missing value for {context}", pos)
        for i, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], _NOT_EXECUTABLE):
                raise self.fail(f"non executable command in pipeline stage {i}", cmd.pos)
        slots = [self.declare(name, assign, p) for name, p in decl]
        return n.Pipe(pos, [name for name, _ in decl], slots, assign, cmds)

    def declarations(self, context: str) -> tuple[list[tuple[str, int]], bool]:
        decl: list[tuple[str, int]] = []
        while self.peek_nonspace().kind == "var":
            mark = self.i
            var = self.next()
            nxt = self.peek_nonspace()
            if nxt.kind in ("declare", "assign"):
                self.next_nonspace()
                decl.append((var.val, var.pos))
                return decl, nxt.kind == "assign"
            if nxt.kind == ",":
                self.next_nonspace()
                decl.append((var.val, var.pos))
                if context == "range" and len(decl) < 2:
                    if self.peek_nonspace().kind in ("var", "right", ")"):
                        continue
                    raise self.fail("range can only initialize variables", nxt.pos)
                raise self.fail(f"too many declarations in {context}", nxt.pos)
            self.i = mark  # "$x" is an operand, not a declaration
            break
        return decl, False

    def declare(self, name: str, assign: bool, pos: int) -> int:
        if assign:
            return self.use_var(name, pos).slot
        self.vars.append((name, self.nslots))
        self.nslots += 1
        return self.nslots - 1

    def use_var(self, name: str, pos: int) -> n.Variable:
        for known, slot in reversed(self.vars):
            if known == name:
                return n.Variable(pos, name, slot)
        raise self.fail(f"undefined variable {name!r}".replace("'", '"'), pos)

    def command(self) -> n.Command:
        cmd = n.Command(self.peek_nonspace().pos, [])
        while True:
            self.peek_nonspace()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", ")"):
                self.i -= 1
            elif tok.kind != "|":
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.fail("empty command", cmd.pos)
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos = self.peek().pos
        names: list[str] = []
        while self.peek().kind == "field":
            names.append(self.next().val[1:])
        if isinstance(node, n.Field):
            return n.Field(node.pos, node.names + tuple(names))
        if isinstance(node, n.Variable):
            return n.Variable(node.pos, node.name, node.slot, node.names + tuple(names))
        if isinstance(node, (n.Literal, n.Dot)):
            raise self.fail(f'unexpected . after term "{node}"', pos)
        return n.Chain(node.pos, node, tuple(names))

    def term(self) -> n.Node | None:
        tok = self.next_nonspace()
        kind = tok.kind
        if kind == "ident":
            if tok.val not in self.funcs:
                raise self.fail(f'function "{tok.val}" not defined', tok.pos)
            return n.Identifier(tok.pos, tok.val)
        if kind in ("dot", "nil"):
            return n.Dot(tok.pos) if kind == "dot" else n.Nil(tok.pos)
        if kind == "var":
            return self.use_var(tok.val, tok.pos)
        if kind == "field":
            return n.Field(tok.pos, (tok.val[1:],))
        if kind == "(":
            return self.pipeline("parenthesized pipeline", ")")
        return self.literal(tok)

    def literal(self, tok: Token) -> n.Node | None:
        try:
            if tok.kind == "bool":
                return n.Literal(tok.pos, tok.val == "true", tok.val)
            if tok.kind in ("number", "charconst"):
                return n.Literal(tok.pos, _number(tok), tok.val)
            if tok.kind in ("string", "raw"):
                return n.Literal(tok.pos, unquote(tok.val), tok.val)
        except (ValueError, OverflowError) as exc:
            what = "illegal number syntax" if tok.kind == "number" else str(exc)
            raise self.fail(f"{what}: {tok.val}", tok.pos) from None
        self.i -= 1
        return None


def parse(text: str, name: str, funcs: Container[str]) -> dict[str, Tree]:
    """Parse ``text`` as template ``name``; return every tree it defines (``name``'s own included)."""
    try:
        return _Parser(text, name, funcs).parse(name)
    except RecursionError:
        raise TemplateError("template nested too deeply", name) from None
