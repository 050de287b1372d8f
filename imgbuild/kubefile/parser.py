"""The Kubefile parser: text in, a :class:`~imgbuild.kubefile.model.Kubefile` out, in one pass.

It reads logical lines (:mod:`.lines`), splits each into keyword, flags and
arguments (:mod:`.context`), reads heredoc bodies for RUN/COPY/ADD, and hands
the line to the keyword's parser (:mod:`.instructions`, :mod:`.sealer`) with
the variables in scope. Scoping follows Docker: ARGs before the first FROM are
global and only FROM sees them; a stage sees an ARG once it declares it (a
bare ``ARG NAME`` re-declares a global one), ENV wins over ARG, ``--build-arg``
values win over defaults, and a stage built FROM an earlier stage inherits its
ENV. BuildKit's automatic platform ARGs (TARGETOS, TARGETARCH, ...) are known.
The first syntax error raises :class:`~imgbuild.errors.KubefileError`.
"""

from __future__ import annotations

import difflib
import platform as _platform
from dataclasses import dataclass, field, replace
from typing import Mapping

from imgbuild.errors import KubefileError
from imgbuild.kubefile import model as m
from imgbuild.kubefile.context import LineCtx, parse_flags, split_command
from imgbuild.kubefile.instructions import DOCKER_PARSERS
from imgbuild.kubefile.lines import LineReader, LogicalLine, find_heredocs
from imgbuild.kubefile.sealer import SEALER_PARSERS

__all__ = ["parse", "KEYWORDS", "platform_args"]

PARSERS = {**DOCKER_PARSERS, **SEALER_PARSERS}
KEYWORDS = tuple(sorted([*PARSERS, "ONBUILD"]))
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")
_ONBUILD_FORBIDDEN = ("ONBUILD", "FROM", "MAINTAINER")
# Docker's predefined ARGs: usable with --build-arg without being declared.
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
_PREDEFINED = frozenset(_PROXIES) | frozenset(p.lower() for p in _PROXIES)
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def platform_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs for this machine (TARGETPLATFORM, BUILDARCH, ...)."""
    arch = _ARCHES.get(_platform.machine().lower(), _platform.machine().lower() or "amd64")
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out.update({f"{prefix}PLATFORM": f"linux/{arch}", f"{prefix}OS": "linux", f"{prefix}ARCH": arch})
        out[f"{prefix}VARIANT"] = "v7" if arch == "arm" else ""
    return out


@dataclass
class _StageState:
    """A stage being built."""

    index: int
    from_: m.From
    parent: int | None
    env: dict[str, str]
    args: dict[str, str | None] = field(default_factory=dict)
    instructions: list[m.Instruction] = field(default_factory=list)

    def lookup(self, name: str) -> str | None:
        """ENV first, then the ARGs declared in this stage."""
        value = self.env.get(name)
        return value if value is not None else self.args.get(name)

    def freeze(self) -> m.Stage:
        """The finished, immutable stage."""
        f = self.from_
        return m.Stage(
            index=self.index, name=f.name, base=f.image, platform=f.platform, from_=f,
            instructions=tuple(self.instructions), args=dict(self.args), env=dict(self.env), parent=self.parent,
        )  # fmt: skip


class _Parser:
    """One parse of one file."""

    def __init__(self, text: str, filename: str, build_args: Mapping[str, str] | None) -> None:
        self.reader = LineReader(text, filename)
        self.filename = filename
        self.build_args = dict(build_args or {})
        self.auto = {**platform_args(), **{k: v for k, v in self.build_args.items() if k in platform_args()}}
        self.used: set[str] = set()
        self.global_decls: list[m.ArgDecl] = []
        self.global_vals: dict[str, str | None] = {}
        self.done: list[m.Stage] = []
        self.cur: _StageState | None = None

    def global_lookup(self, name: str) -> str | None:
        """Global ARGs (declared before the first FROM), then the automatic platform ARGs."""
        if name in self.global_vals:
            return self.global_vals[name]
        return self.auto.get(name)

    def run(self) -> m.Kubefile:
        """Parse every line and assemble the Kubefile."""
        seen_any = False
        while (ll := self.reader.next_line()) is not None:
            seen_any = True
            self.line(ll)
        if self.cur is not None:
            self.done.append(self.cur.freeze())
        if not seen_any:
            raise KubefileError("the Kubefile is empty: it has no instructions", self.filename, 1, 1, None)
        if not self.done:
            raise KubefileError(
                "no FROM instruction: a Kubefile needs at least one stage (FROM image)",
                self.filename, 1, 1, self.reader.source(1),
            )  # fmt: skip
        unused = sorted(k for k in self.build_args if k not in self.used and k not in _PREDEFINED)
        return m.Kubefile(
            filename=self.filename, directives=dict(self.reader.directives), global_args=tuple(self.global_decls),
            stages=tuple(self.done), unused_build_args=tuple(unused), source=tuple(self.reader.lines),
        )  # fmt: skip

    def line(self, ll: LogicalLine) -> None:
        """Parse one logical line and apply its effect on the scope."""
        ctx = self.context(ll)
        if self.cur is None and ctx.keyword not in ("ARG", "FROM"):
            raise ctx.error("only ARG may come before the first FROM", 0)
        ctx.lookup = self.global_lookup if (self.cur is None or ctx.keyword == "FROM") else self.cur.lookup
        if ctx.keyword == "ONBUILD":
            inst = self.onbuild(ctx)
        else:
            inst = PARSERS[ctx.keyword](ctx)
        self.apply(ctx, inst)

    def context(self, ll: LogicalLine) -> LineCtx:
        """Split the line, check the keyword and flags, read any heredoc bodies."""
        word, kw_off, raw_flags, args_off = split_command(ll.text, self.reader.escape)
        keyword = word.upper()
        ctx = LineCtx(self.reader, ll, keyword, raw_flags, args_off)
        if keyword not in PARSERS and keyword != "ONBUILD":
            raise ctx.error(_unknown(word), kw_off, bare=True)
        ctx.flags = parse_flags(ctx)
        if not ctx.rest.strip():
            raise ctx.error("missing argument", len(ll.text.rstrip()))
        if keyword in _HEREDOC_KEYWORDS and "<<" in ctx.rest and ctx.json_list() is None:
            specs = find_heredocs(ctx.rest)
            ctx.heredocs = tuple(self.reader.read_heredoc(s, ll.line) for s in specs)
            ctx.end_line = self.reader.pos
        return ctx

    def onbuild(self, ctx: LineCtx) -> m.Onbuild:
        """``ONBUILD <instruction>``: check the trigger parses, keep it raw."""
        sub_text = ctx.ll.text[ctx.args_off :]
        word, _, raw_flags, args_off = split_command(sub_text, self.reader.escape)
        trigger = word.upper()
        if trigger in _ONBUILD_FORBIDDEN:
            raise ctx.error(f"{trigger} is not allowed as an ONBUILD trigger", ctx.args_off)
        if trigger not in PARSERS:
            raise ctx.error(_unknown(word), ctx.args_off, bare=True)
        # Every variable is "set" here: the trigger is substituted in the child build, not now.
        sub = LineCtx(self.reader, ctx.ll.slice(ctx.args_off), trigger, raw_flags, args_off, lambda _n: "_")
        sub.flags = parse_flags(sub)
        if not sub.rest.strip():
            raise sub.error("missing argument", len(sub_text.rstrip()))
        PARSERS[trigger](sub)
        return m.Onbuild(**ctx.base(), trigger_keyword=trigger, expression=sub_text.strip())

    def apply(self, ctx: LineCtx, inst: m.Instruction) -> None:
        """Record the instruction and update stages, ARGs and ENV."""
        if isinstance(inst, m.From):
            self.start_stage(ctx, inst)
        elif isinstance(inst, m.Arg):
            inst = self.declare(inst)
            if self.cur is None:
                self.global_decls.extend(inst.decls)
                return
            self.cur.instructions.append(inst)
        else:
            assert self.cur is not None
            if isinstance(inst, m.Env):
                self.cur.env.update(inst.pairs)
            self.cur.instructions.append(inst)

    def start_stage(self, ctx: LineCtx, inst: m.From) -> None:
        """Close the current stage and open a new one (inheriting ENV from a parent stage)."""
        if self.cur is not None:
            self.done.append(self.cur.freeze())
        parent = None
        for st in self.done:
            if st.name is not None and st.name == inst.image.lower():
                parent = st.index
        env = dict(self.done[parent].env) if parent is not None else {}
        self.cur = _StageState(index=len(self.done), from_=inst, parent=parent, env=env)

    def declare(self, inst: m.Arg) -> m.Arg:
        """Give each declared ARG its effective value and bring it into scope."""
        scope = self.global_vals if self.cur is None else self.cur.args
        decls = []
        for d in inst.decls:
            if d.name in self.build_args:
                value: str | None = self.build_args[d.name]
                self.used.add(d.name)
            elif d.default is not None:
                value = d.default
            elif self.cur is not None:
                value = self.global_lookup(d.name)
            else:
                value = self.auto.get(d.name)
            decls.append(replace(d, value=value))
        for d in decls:
            scope[d.name] = d.value
        return replace(inst, decls=tuple(decls))


def _unknown(word: str) -> str:
    """'unknown instruction' with the closest valid keyword, if any is close."""
    close = difflib.get_close_matches(word.upper(), KEYWORDS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown instruction {word!r}{hint}"


def parse(text: str, *, filename: str = "Kubefile", build_args: Mapping[str, str] | None = None) -> m.Kubefile:
    """Parse Kubefile ``text``; raise KubefileError (file, line, column) at the first syntax error."""
    return _Parser(text, filename, build_args).run()
