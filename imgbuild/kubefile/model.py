"""The typed Kubefile model: frozen values the parser produces and the builder consumes.

A :class:`Kubefile` holds the parser directives, the global ARGs (those before
the first FROM) and the :class:`Stage` list. A stage holds its instructions in
file order; every instruction carries its keyword, first and last physical line,
the original (continuation-joined) text, its flags and its *resolved* arguments:
variables are already substituted where Docker substitutes them, and left as
written where Docker does not (RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK,
ONBUILD, APPCMDS, CMDS). Every value has ``to_dict()`` for ``lint --json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Mapping

__all__ = [
    "Heredoc",
    "ArgDecl",
    "Instruction",
    "From",
    "Run",
    "Cmd",
    "Entrypoint",
    "Shell",
    "Copy",
    "Add",
    "Env",
    "Label",
    "Arg",
    "Expose",
    "Volume",
    "User",
    "Workdir",
    "StopSignal",
    "Maintainer",
    "Healthcheck",
    "Onbuild",
    "App",
    "AppCmds",
    "AppEnv",
    "Launch",
    "Cmds",
    "Cni",
    "Csi",
    "KubeVersion",
    "Stage",
    "Kubefile",
    "to_plain",
]


def to_plain(value: Any) -> Any:
    """Turn a model value (dataclass, tuple, mapping) into JSON-ready plain data."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            if f.metadata.get("json") is False:
                continue
            out[f.name.rstrip("_")] = to_plain(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


class _Plain:
    """Mixin giving every model value a ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        """This value as plain JSON-ready data."""
        return to_plain(self)


@dataclass(frozen=True, kw_only=True)
class Heredoc(_Plain):
    """A here-document attached to RUN/COPY/ADD: ``<<NAME`` ... ``NAME``."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    fd: int | None = None


@dataclass(frozen=True, kw_only=True)
class ArgDecl(_Plain):
    """One declared build argument: its written default and its effective value (None = unset)."""

    name: str
    default: str | None = None
    value: str | None = None


@dataclass(frozen=True, kw_only=True)
class Instruction(_Plain):
    """Fields every instruction has; subclasses add the resolved arguments.

    ``flags`` maps a flag name to its value as written, before substitution
    (``True``/``False`` for boolean flags; a tuple for repeatable flags such as
    ``--mount``); the typed fields hold the resolved values. Treat it as read-only.
    """

    keyword: str
    line: int
    end_line: int
    original: str
    flags: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    """``FROM [--platform=P] image [AS name]`` with ``image`` resolved from global ARGs."""

    image: str
    name: str | None = None
    platform: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    """``RUN``: ``command`` is raw shell text (shell form) or a tuple of argv (exec form)."""

    command: str | tuple[str, ...]
    exec_form: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[str, ...] = ()
    network: str | None = None
    security: str | None = None


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    """``CMD``: raw text kept verbatim (sealos' ``$(VAR)`` survives) or exec-form argv."""

    value: str | tuple[str, ...]
    exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    """``ENTRYPOINT``: raw text or exec-form argv."""

    value: str | tuple[str, ...]
    exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    """``SHELL ["exe", "arg"...]`` (exec form only)."""

    value: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    """``COPY``: resolved sources and destination; ``heredocs`` are inline sources."""

    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Add(Instruction):
    """``ADD``: like COPY, sources may also be URLs or git repositories."""

    sources: tuple[str, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    keep_git_dir: bool = False
    exclude: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    """``ENV``: resolved ``(key, value)`` pairs in order."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    """``LABEL``: resolved ``(key, value)`` pairs in order."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    """``ARG name[=default] ...``: declarations with their effective values."""

    decls: tuple[ArgDecl, ...]


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    """``EXPOSE``: resolved port specs such as ``80/tcp``."""

    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    """``VOLUME``: resolved mount points."""

    paths: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    """``USER user[:group]`` resolved."""

    user: str


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    """``WORKDIR path`` resolved."""

    path: str


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    """``STOPSIGNAL signal`` resolved."""

    signal: str


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    """``MAINTAINER name`` (deprecated in Docker, still accepted)."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    """``HEALTHCHECK``: ``test`` as in an image config (``["NONE"]``, ``["CMD-SHELL", s]``, ``["CMD", ...]``)."""

    test: tuple[str, ...]
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    start_interval: str | None = None
    retries: int | None = None


@dataclass(frozen=True, kw_only=True)
class Onbuild(Instruction):
    """``ONBUILD <instruction>``: the trigger kept raw (it runs, substituted, in a child build)."""

    trigger_keyword: str
    expression: str


@dataclass(frozen=True, kw_only=True)
class App(Instruction):
    """sealer ``APP name local://path|http(s)://url ...``."""

    name: str
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AppCmds(Instruction):
    """sealer ``APPCMDS name ["cmd", ...]``: commands that launch one app (kept raw)."""

    name: str
    cmds: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AppEnv(Instruction):
    """sealer ``APPENV name k=v ...``: env for one app."""

    name: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class Launch(Instruction):
    """sealer ``LAUNCH ["app", ...]``: the apps to start at run time (the last instruction)."""

    apps: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Cmds(Instruction):
    """sealer ``CMDS ["cmd", ...]``: raw commands run at the end of `run` (the last instruction)."""

    cmds: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Cni(Instruction):
    """sealer ``CNI name scheme://path``: an app that is the cluster's network plugin."""

    name: str
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Csi(Instruction):
    """sealer ``CSI name scheme://path``: an app that is the cluster's storage plugin."""

    name: str
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class KubeVersion(Instruction):
    """sealer ``KUBEVERSION constraint``: the Kubernetes versions an app image supports."""

    constraint: str


@dataclass(frozen=True, kw_only=True)
class Stage(_Plain):
    """One build stage: its base (resolved), optional name, and instructions after FROM.

    ``args`` are the effective values of the ARGs declared in the stage (in
    declaration order, last declaration wins); ``env`` the ENV pairs in effect
    at the end of the stage, including those inherited from ``parent`` (the
    index of the earlier stage this one is built FROM, None for an image).
    """

    index: int
    name: str | None
    base: str
    platform: str | None
    from_: From
    instructions: tuple[Instruction, ...]
    args: Mapping[str, str | None] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    parent: int | None = None

    @property
    def apps(self) -> tuple[str, ...]:
        """Names of the apps (APP, CNI, CSI) this stage defines, in order."""
        return tuple(i.name for i in self.instructions if isinstance(i, (App, Cni, Csi)))


@dataclass(frozen=True, kw_only=True)
class Kubefile(_Plain):
    """A parsed Kubefile: directives, global ARGs, stages; the last stage is the image.

    ``unused_build_args`` are ``--build-arg`` names no ARG declared; ``source``
    holds the physical lines (for error carets, not serialised).
    """

    filename: str
    directives: Mapping[str, str]
    global_args: tuple[ArgDecl, ...]
    stages: tuple[Stage, ...]
    unused_build_args: tuple[str, ...] = ()
    source: tuple[str, ...] = field(default=(), repr=False, compare=False, metadata={"json": False})

    @property
    def final(self) -> Stage:
        """The stage that becomes the image (the last one)."""
        return self.stages[-1]

    def stage(self, ref: str | int) -> Stage:
        """The stage named ``ref`` (case-insensitive) or at index ``ref``; KeyError if none."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            idx = int(ref)
            if 0 <= idx < len(self.stages):
                return self.stages[idx]
            raise KeyError(ref)
        for st in self.stages:
            if st.name is not None and st.name == ref.lower():
                return st
        raise KeyError(ref)

    def instructions(self) -> list[Instruction]:
        """Every instruction of every stage, in file order (FROM lines included)."""
        out: list[Instruction] = []
        for st in self.stages:
            out.append(st.from_)
            out.extend(st.instructions)
        return out
