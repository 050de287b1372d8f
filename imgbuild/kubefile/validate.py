"""Semantic checks of a parsed Kubefile; every problem is collected, none stops the others.

:func:`check` looks at what the grammar alone cannot: duplicate stage names,
``COPY --from`` naming a stage that is not built yet (or neither a stage nor a
plausible image), sealer's rules (LAUNCH and CMDS once, last, in the final
stage; LAUNCH naming only known apps and never beside CMD; APPCMDS/APPENV for
a declared app; an app defined once) and, with a build context, COPY/ADD/APP
sources that are missing from it or would escape it. ``registry`` is the one
source a context may lack: as in sealos, the build makes it from the images
the context needs (:func:`made_by_build`).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Iterable

from imgbuild.errors import KubefileError
from imgbuild.kubefile import model as m

__all__ = ["check", "made_by_build", "BUILT_REGISTRY"]

_REF_RE = re.compile(
    r"([a-zA-Z0-9.-]+(:\d+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"(:[\w][\w.-]{0,127})?(@[a-z0-9]+:[0-9a-fA-F]{32,})?"
)
_URL_PREFIXES = ("http://", "https://", "git@", "git://")
_GLOB_CHARS = ("*", "?", "[")
BUILT_REGISTRY = "registry"


def made_by_build(src: str) -> bool:
    """True for a COPY/ADD source naming ``registry/`` (``registry``, ``./registry``, ``/registry/``): made by the build."""
    rel = os.path.normpath(src.lstrip("/") or ".")
    return rel == BUILT_REGISTRY


class _Checker:
    """Collects the problems of one Kubefile."""

    def __init__(self, kf: m.Kubefile, source: tuple[str, ...]) -> None:
        self.kf = kf
        self.source = source
        self.errors: list[KubefileError] = []
        self.known_apps: frozenset[str] = frozenset()

    def add(self, inst: m.Instruction, message: str, token: str | None = None) -> None:
        """Record a problem at ``inst``, the caret under ``token`` if it is on the first line."""
        src = self.source[inst.line - 1] if 0 < inst.line <= len(self.source) else None
        col = 1
        if src is not None:
            col = len(src) - len(src.lstrip()) + 1
            if token:
                at = src.find(token)
                col = at + 1 if at >= 0 else col
        self.errors.append(KubefileError(f"{inst.keyword}: {message}", self.kf.filename, inst.line, col, src))

    def stages(self) -> None:
        """Duplicate stage names and ``COPY --from`` targets."""
        first: dict[str, m.Stage] = {}
        for st in self.kf.stages:
            if st.name is None:
                continue
            if st.name in first:
                self.add(st.from_, f"duplicate stage name {st.name!r} (first at line {first[st.name].from_.line})", st.name)
            else:
                first[st.name] = st
        for st in self.kf.stages:
            for inst in st.instructions:
                if isinstance(inst, m.Copy) and inst.from_ is not None:
                    self.copy_from(st, inst, first)

    def copy_from(self, st: m.Stage, inst: m.Copy, names: dict[str, m.Stage]) -> None:
        """``--from`` must be an earlier stage (by index or name) or an image reference."""
        ref = inst.from_ or ""
        if ref.isdigit():
            if int(ref) >= st.index:
                self.add(inst, f"--from={ref}: there is no earlier stage {ref} (this is stage {st.index})", ref)
            return
        target = names.get(ref.lower())
        if target is not None:
            if target.index >= st.index:
                self.add(inst, f"--from={ref}: stage {target.name!r} is not built before stage {st.index}", ref)
            return
        if not _REF_RE.fullmatch(ref):
            self.add(inst, f"--from={ref}: no such stage, and not a valid image reference", ref)

    def sealer(self) -> None:
        """LAUNCH/CMDS placement and counts, app names, CMD beside LAUNCH."""
        last = self.kf.instructions()[-1]
        for st in self.kf.stages:
            counts: dict[type, int] = {}
            apps: dict[str, m.Instruction] = {}
            for inst in st.instructions:
                self.sealer_one(st, inst, apps, counts, st is self.kf.final and inst is last)

    def sealer_one(
        self, st: m.Stage, inst: m.Instruction, apps: dict[str, m.Instruction], counts: dict[type, int], is_last: bool
    ) -> None:
        """Check one instruction against sealer's rules (``apps`` and ``counts`` accumulate per stage)."""
        if isinstance(inst, (m.App, m.Cni, m.Csi)):
            if inst.name in apps:
                self.add(inst, f"app {inst.name!r} is defined twice (first at line {apps[inst.name].line})", inst.name)
            apps[inst.name] = inst
        elif isinstance(inst, (m.AppCmds, m.AppEnv)) and inst.name not in apps:
            self.add(inst, f"app {inst.name!r} is not defined by an earlier APP, CNI or CSI", inst.name)
        elif isinstance(inst, (m.Launch, m.Cmds)):
            kind = type(inst)
            counts[kind] = counts.get(kind, 0) + 1
            if counts[kind] > 1:
                self.add(inst, "may appear only once")
            if not is_last:
                self.add(inst, "must be the last instruction of the Kubefile")
            if isinstance(inst, m.Launch):
                self.launch(st, inst, apps)

    def launch(self, st: m.Stage, inst: m.Launch, apps: dict[str, m.Instruction]) -> None:
        """LAUNCH names known apps and has no CMD beside it."""
        for app in inst.apps:
            if app not in apps and app not in self.known_apps:
                known = ", ".join(sorted(apps)) or "none"
                self.add(inst, f"app {app!r} is not defined in this image (defined: {known})", app)
        for other in st.instructions:
            if isinstance(other, m.Cmd):
                self.add(other, f"CMD and LAUNCH (line {inst.line}) cannot be used together")

    def context(self, ctx: Path) -> None:
        """Sources of COPY/ADD (without --from) and APP/CNI/CSI local:// must exist in ``ctx``."""
        root = ctx.resolve()
        for st in self.kf.stages:
            for inst in st.instructions:
                for src in _local_sources(inst):
                    self.source_exists(inst, root, src)

    def source_exists(self, inst: m.Instruction, root: Path, src: str) -> None:
        """One source path, relative to the context root."""
        rel = src.lstrip("/") or "."
        full = os.path.normpath(os.path.join(str(root), rel))
        if full != str(root) and not full.startswith(str(root) + os.sep):
            self.add(inst, f"source {src!r} is outside the build context", src)
            return
        if any(ch in rel for ch in _GLOB_CHARS):
            if not glob.glob(glob.escape(str(root)) + os.sep + rel):
                self.add(inst, f"no file in the build context matches {src!r}", src)
        elif not os.path.lexists(full) and not (isinstance(inst, (m.Copy, m.Add)) and made_by_build(src)):
            self.add(inst, f"source {src!r} is missing from the build context {root}", src)


def _local_sources(inst: m.Instruction) -> Iterable[str]:
    """The context-relative sources an instruction reads."""
    if isinstance(inst, (m.Copy, m.Add)) and getattr(inst, "from_", None) is None:
        yield from (s for s in inst.sources if not s.startswith(_URL_PREFIXES))
    elif isinstance(inst, (m.App, m.Cni, m.Csi)):
        yield from (s[len("local://") :] for s in inst.sources if s.startswith("local://"))


def check(
    kf: m.Kubefile,
    source: Iterable[str] = (),
    context_dir: str | os.PathLike[str] | None = None,
    known_apps: Iterable[str] = (),
) -> list[KubefileError]:
    """Every semantic problem of ``kf`` (with ``source`` lines for carets), in file order."""
    checker = _Checker(kf, tuple(source))
    checker.known_apps = frozenset(known_apps)
    checker.stages()
    checker.sealer()
    for st in kf.stages:
        for inst in st.instructions:
            if isinstance(inst, m.Copy) and inst.from_ is None:
                for s in inst.sources:
                    if s.startswith(_URL_PREFIXES):
                        checker.add(inst, f"COPY cannot fetch URLs ({s}); use ADD", s)
    if context_dir is not None:
        checker.context(Path(context_dir))
    return sorted(checker.errors, key=lambda e: (e.line or 0, e.column or 0))
