"""Kubefile + context + build args -> a :class:`BuildPlan`: per stage its base, ordered steps and config.

The plan is what ``imgbuild build --dry-run`` prints and what both builders
execute. It checks every context source up front (so a missing file fails
before any work, at its Kubefile line; ``registry/`` alone may be absent, as
sealos makes it from the images the context needs), picks the backend (``native`` unless a
stage has RUN), and computes each stage's config changes with
:func:`apply_config`, the one function both the plan and the native builder
use to turn an instruction into image-config changes.

Sealer's cluster instructions have no image-config field; they are recorded as
labels with the ``io.imgbuild.`` prefix, which the run engine reads:

==================================  ===========================================================
``io.imgbuild.apps``                JSON list of the apps (APP/CNI/CSI) in the image, in order
``io.imgbuild.app.<name>.cmds``     JSON list: APPCMDS of app ``<name>``
``io.imgbuild.app.<name>.env``      JSON object: APPENV of app ``<name>`` (merged in order)
``io.imgbuild.launch``              JSON list: LAUNCH apps
``io.imgbuild.cmds``                JSON list: CMDS commands
``io.imgbuild.cni`` / ``.csi``      the name of the app that is the network / storage plugin
``io.imgbuild.kubeversion``         KUBEVERSION constraint
==================================  ===========================================================

An app's files (APP/CNI/CSI ``local://`` sources) go under ``application/apps/<name>/``.
Each layer descriptor carries ``io.imgbuild.layer.role`` = rootfs | registry | scripts |
application. ``sealos.io.type`` defaults to ``rootfs`` for a FROM-scratch image
with ``scripts/init.sh`` or an ``init`` label, else ``application``; an explicit label wins.
The config's ``created`` is ``--timestamp``, else ``SOURCE_DATE_EPOCH``, else the
epoch (1970-01-01T00:00:00Z), so a rebuild of the same input has the same digest.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from imgbuild import labels as contract
from imgbuild.builder.context import BuildContext, default_kubefile
from imgbuild.errors import InputError, KubefileError
from imgbuild.kubefile import model as m
from imgbuild.kubefile.validate import BUILT_REGISTRY, made_by_build
from imgbuild.oci.model import Platform

__all__ = [
    "LABEL_PREFIX", "ROLE_ANNOTATION", "ROLES", "Step", "StagePlan", "BuildPlan", "make_plan",
    "apply_config", "sealer_labels", "detect_type", "role_of", "rfc3339", "build_epoch", "app_dir",
    "shell_words", "registry_made",
]

LABEL_PREFIX = contract.LABEL_PREFIX        # re-exported from imgbuild.labels, where the contract names live
ROLE_ANNOTATION = contract.ROLE_ANNOTATION
ROLES = contract.LAYER_ROLES
_LAYER_KEYWORDS = frozenset({"COPY", "ADD", "APP", "CNI", "CSI"})
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def rfc3339(epoch: int) -> str:
    """``epoch`` seconds as an RFC 3339 UTC timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def build_epoch(timestamp: int | None = None) -> int:
    """The build's fixed time: ``timestamp``, else ``$SOURCE_DATE_EPOCH``, else 0."""
    if timestamp is not None:
        return int(timestamp)
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    try:
        return int(raw) if raw else 0
    except ValueError as exc:
        raise InputError(f"SOURCE_DATE_EPOCH must be an integer, not {raw!r}") from exc


def role_of(arcname: str) -> str:
    """The layer role of a path in the image, by its top-level directory."""
    top = arcname.lstrip("/").split("/", 1)[0]
    return top if top in contract.LAYER_ROLES else "rootfs"


def app_dir(name: str) -> str:
    """Where an APP/CNI/CSI app's files live in the image."""
    return f"application/apps/{name}"


def shell_words(value: str | tuple[str, ...], shell: tuple[str, ...]) -> list[str]:
    """CMD/ENTRYPOINT value as a config list: exec form as is, shell form wrapped in the SHELL."""
    return list(value) if isinstance(value, tuple) else [*shell, value]


def _duration_ns(text: str | None, where: str) -> int | None:
    """A Go duration string (``30s``, ``1m30s``) in nanoseconds."""
    if text is None:
        return None
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for mt in _DURATION_PART.finditer(text):
        if mt.start() != pos:
            break
        total += float(mt.group(1)) * _UNITS[mt.group(2)]
        pos = mt.end()
    if pos != len(text) or not text:
        raise InputError(f"invalid duration {text!r}", where)
    return int(total)


def _healthcheck(ins: m.Healthcheck, where: str) -> dict[str, Any]:
    """The config ``Healthcheck`` object of a HEALTHCHECK instruction."""
    hc: dict[str, Any] = {"Test": list(ins.test)}
    for key, value in (("Interval", ins.interval), ("Timeout", ins.timeout),
                       ("StartPeriod", ins.start_period), ("StartInterval", ins.start_interval)):
        ns = _duration_ns(value, where)
        if ns:
            hc[key] = ns
    if ins.retries:
        hc["Retries"] = ins.retries
    return hc


def _set_env(section: dict, pairs: tuple[tuple[str, str], ...]) -> None:
    env = list(section.get("Env") or [])
    for key, value in pairs:
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    section["Env"] = env


def apply_config(section: dict, top: dict, ins: m.Instruction, state: dict) -> None:
    """Apply one instruction's effect on the image config (``section`` = config, ``top`` = top level).

    ``state`` carries what later instructions depend on: ``shell`` (SHELL), ``cmd_set``
    (whether CMD was set in this stage, for ENTRYPOINT's reset of an inherited CMD).
    """
    where = f"line {ins.line}"
    shell = tuple(state.get("shell") or ("/bin/sh", "-c"))
    if isinstance(ins, m.Env):
        _set_env(section, ins.pairs)
    elif isinstance(ins, m.Label):
        section["Labels"] = {**(section.get("Labels") or {}), **dict(ins.pairs)}
    elif isinstance(ins, m.Cmd):
        section["Cmd"] = shell_words(ins.value, shell)
        state["cmd_set"] = True
    elif isinstance(ins, m.Entrypoint):
        section["Entrypoint"] = shell_words(ins.value, shell)
        if not state.get("cmd_set"):
            section.pop("Cmd", None)
    elif isinstance(ins, m.Workdir):
        section["WorkingDir"] = posixpath.normpath(posixpath.join(section.get("WorkingDir") or "/", ins.path))
    elif isinstance(ins, m.User):
        section["User"] = ins.user
    elif isinstance(ins, m.Expose):
        ports = dict(section.get("ExposedPorts") or {})
        ports.update({(p if "/" in p else f"{p}/tcp").lower(): {} for p in ins.ports})
        section["ExposedPorts"] = dict(sorted(ports.items()))
    elif isinstance(ins, m.Volume):
        vols = dict(section.get("Volumes") or {})
        vols.update({p: {} for p in ins.paths})
        section["Volumes"] = dict(sorted(vols.items()))
    elif isinstance(ins, m.StopSignal):
        section["StopSignal"] = ins.signal
    elif isinstance(ins, m.Maintainer):
        top["author"] = ins.name
    elif isinstance(ins, m.Healthcheck):
        section["Healthcheck"] = _healthcheck(ins, where)
    elif isinstance(ins, m.Shell):
        state["shell"] = tuple(ins.value)
    else:
        labels = sealer_labels(ins, section.get("Labels") or {})
        if labels:
            section["Labels"] = {**(section.get("Labels") or {}), **labels}


def sealer_labels(ins: m.Instruction, current: Mapping[str, str]) -> dict[str, str]:
    """The ``io.imgbuild.*`` labels a sealer instruction records (empty for other instructions)."""
    p = LABEL_PREFIX
    if isinstance(ins, (m.App, m.Cni, m.Csi)):
        apps = json.loads(current.get(p + "apps", "[]"))
        out = {p + "apps": json.dumps([*[a for a in apps if a != ins.name], ins.name])}
        if isinstance(ins, m.Cni):
            out[p + "cni"] = ins.name
        if isinstance(ins, m.Csi):
            out[p + "csi"] = ins.name
        return out
    if isinstance(ins, m.AppCmds):
        return {f"{p}app.{ins.name}.cmds": json.dumps(list(ins.cmds))}
    if isinstance(ins, m.AppEnv):
        env = json.loads(current.get(f"{p}app.{ins.name}.env", "{}"))
        env.update(dict(ins.pairs))
        return {f"{p}app.{ins.name}.env": json.dumps(env, sort_keys=True)}
    if isinstance(ins, m.Launch):
        return {p + "launch": json.dumps(list(ins.apps))}
    if isinstance(ins, m.Cmds):
        return {p + "cmds": json.dumps(list(ins.cmds))}
    if isinstance(ins, m.KubeVersion):
        return {p + "kubeversion": ins.constraint}
    return {}


def detect_type(labels: Mapping[str, str], has_init_script: bool, has_base: bool) -> str:
    """``sealos.io.type``: the explicit label, else rootfs for a base-less image with init, else application."""
    if labels.get(contract.TYPE_LABEL):
        return labels[contract.TYPE_LABEL]
    if not has_base and (has_init_script or labels.get(contract.INIT)):
        return contract.TYPE_ROOTFS
    return contract.TYPE_APPLICATION


@dataclass(frozen=True)
class Step:
    """One instruction of the build, numbered across all stages (``STEP n/total``)."""

    number: int
    stage: int
    line: int
    keyword: str
    text: str
    kind: str  # "from" | "layer" | "config" | "run" | "arg"
    instruction: m.Instruction = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        """As plain data for ``--dry-run --json``."""
        return {"step": self.number, "stage": self.stage, "line": self.line, "keyword": self.keyword,
                "text": self.text, "kind": self.kind}


@dataclass(frozen=True)
class StagePlan:
    """One stage: its base (``scratch``, an image reference, or an earlier stage), steps and config changes."""

    index: int
    name: str | None
    base: str
    base_stage: int | None
    platform: str | None
    steps: tuple[Step, ...]
    config: Mapping[str, Any]
    needs_run: bool
    stage: m.Stage = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        """As plain data for ``--dry-run --json``."""
        return {"index": self.index, "name": self.name, "base": self.base, "base_stage": self.base_stage,
                "platform": self.platform, "needs_run": self.needs_run,
                "steps": [s.to_dict() for s in self.steps], "config": dict(self.config)}


@dataclass(frozen=True)
class BuildPlan:
    """What a build will do: the Kubefile, the context, the stages and the backend that will run them."""

    kubefile: Path
    context: BuildContext
    parsed: m.Kubefile = field(repr=False)
    stages: tuple[StagePlan, ...]
    backend: str
    build_args: Mapping[str, str]
    epoch: int

    @property
    def total_steps(self) -> int:
        """The number of steps across all stages."""
        return sum(len(s.steps) for s in self.stages)

    def where(self, line: int) -> str:
        """``Kubefile:line`` for messages."""
        return f"{self.kubefile.name}:{line}"

    def copies_registry(self) -> bool:
        """True if a COPY/ADD of the context takes ``registry/`` (``COPY registry registry`` or ``COPY . .``)."""
        return any(isinstance(s.instruction, (m.Copy, m.Add)) and not getattr(s.instruction, "from_", None)
                   and any(made_by_build(src) or self.context.clean(src) == "" for src in s.instruction.sources)
                   for st in self.stages for s in st.steps)

    def to_dict(self) -> dict:
        """As plain data for ``--dry-run --json``."""
        return {"kubefile": str(self.kubefile), "context": str(self.context.root), "backend": self.backend,
                "ignore_file": self.context.ignore_file, "created": rfc3339(self.epoch),
                "build_args": dict(self.build_args), "stages": [s.to_dict() for s in self.stages]}

    def render(self) -> list[str]:
        """Human lines: one per stage header and step, then the final config."""
        lines = [f"Kubefile: {self.kubefile}   context: {self.context.root}   backend: {self.backend}"]
        for st in self.stages:
            name = f" AS {st.name}" if st.name else ""
            lines.append(f"stage {st.index}{name}: FROM {st.base}")
            lines.extend(f"  STEP {s.number}/{self.total_steps}: {s.text}" for s in st.steps)
        final = self.stages[-1].config
        if final:
            lines.append("config: " + json.dumps(final, sort_keys=True))
        return lines


def _kind(ins: m.Instruction) -> str:
    if isinstance(ins, m.From):
        return "from"
    if isinstance(ins, m.Run):
        return "run"
    if isinstance(ins, m.Arg):
        return "arg"
    return "layer" if ins.keyword.upper() in _LAYER_KEYWORDS else "config"


def registry_made(ctx: BuildContext, src: str) -> bool:
    """True when COPY source ``src`` is ``registry/`` and the context lacks it: the build makes it from its images."""
    return made_by_build(src) and not os.path.lexists(ctx.root / BUILT_REGISTRY)


def _check_sources(ctx: BuildContext, ins: m.Instruction, where: str) -> None:
    """Fail early when a context source of COPY/ADD/APP is missing, ignored or outside the context."""
    if isinstance(ins, (m.Copy, m.Add)) and not getattr(ins, "from_", None):
        for src in ins.sources:
            if not re.match(r"^[a-z][a-z0-9+.-]*://", src) and not src.startswith("git@") \
                    and not registry_made(ctx, src):
                ctx.resolve(src, where)
    elif isinstance(ins, (m.App, m.Cni, m.Csi)):
        for src in ins.sources:
            if src.startswith("local://"):
                ctx.resolve(src[len("local://"):], where)


_ARCH_RE = re.compile(r"\$(\{)?(TARGETARCH|TARGETOS|TARGETPLATFORM|ARCH)\b")


def _arch_sources(ins: m.Instruction, st: m.Stage, auto: Mapping[str, str]) -> m.Instruction:
    """Re-expand COPY/ADD sources with ``$ARCH``/``${TARGETARCH}`` set even when undeclared (sealer's way)."""
    if not isinstance(ins, (m.Copy, m.Add)) or not auto or not _ARCH_RE.search(ins.original):
        return ins
    from imgbuild.kubefile.substitution import expand_word, split_words

    values = {**{k: v for k, v in st.args.items() if v is not None}, **st.env, **auto}
    words = [w for w, _ in split_words(ins.original.split(None, 1)[1])]
    words = [w for w in words if not w.startswith("--")]
    if len(words) < 2 or len(words) - 1 != len(ins.sources):
        return ins
    sources = tuple(expand_word(w, values.get) for w in words[:-1])
    return replace(ins, sources=sources)


def _stage_plan(ctx: BuildContext, st: m.Stage, counter: list[int], filename: str,
                auto: Mapping[str, str]) -> StagePlan:
    section: dict[str, Any] = {}
    top: dict[str, Any] = {}
    state: dict[str, Any] = {}
    steps = []
    for ins in (st.from_, *st.instructions):
        ins = _arch_sources(ins, st, auto)
        where = f"{filename}:{ins.line}"
        if isinstance(ins, m.Onbuild):
            raise KubefileError("ONBUILD is not supported by imgbuild build", filename, ins.line)
        _check_sources(ctx, ins, where)
        counter[0] += 1
        text = " ".join(ins.original.split())
        steps.append(Step(counter[0], st.index, ins.line, ins.keyword.upper(), text, _kind(ins), ins))
        apply_config(section, top, ins, state)
    config = {**top, **({"config": section} if section else {})}
    needs_run = any(isinstance(i, m.Run) for i in st.instructions)
    return StagePlan(st.index, st.name, st.base, st.parent, st.platform, tuple(steps), config, needs_run, st)


def _platform_args(p: Platform) -> dict[str, str]:
    """TARGETPLATFORM/TARGETOS/TARGETARCH/TARGETVARIANT and sealer's ARCH for ``p``."""
    return {"TARGETPLATFORM": str(p), "TARGETOS": p.os, "TARGETARCH": p.architecture,
            "TARGETVARIANT": p.variant or "", "ARCH": p.architecture}


def make_plan(context: str | Path, *, kubefile: str | Path | None = None, build_args: Mapping[str, str] | None = None,
              backend: str = "auto", target: str | None = None, timestamp: int | None = None,
              platform: Platform | None = None) -> BuildPlan:
    """Parse the Kubefile (default: found in ``context``), check its sources, and plan every stage.

    With ``platform``, BuildKit's TARGET* args and sealer's ``ARCH`` are set for it, and
    ``$ARCH``/``${TARGETARCH}`` in COPY/ADD sources are substituted even when undeclared.
    """
    from imgbuild.kubefile import read_kubefile
    from imgbuild.kubefile.parser import parse

    ctx = BuildContext.open(context)
    path = Path(kubefile) if kubefile else default_kubefile(Path(context))
    text = read_kubefile(path, path.name)
    args = dict(build_args or {})
    auto = _platform_args(platform) if platform else {}
    parsed = parse(text, filename=path.name, build_args={**auto, **args})
    stages = parsed.stages
    if target is not None:
        try:
            last = parsed.stage(target).index
        except KeyError:
            raise InputError(f"no stage named {target!r} in the Kubefile", str(path)) from None
        stages = stages[: last + 1]
    counter = [0]
    plans = tuple(_stage_plan(ctx, st, counter, path.name, auto) for st in stages)
    if backend not in ("auto", "native", "buildah"):
        raise InputError(f"unknown backend {backend!r}: expected auto, native or buildah")
    chosen = backend if backend != "auto" else ("buildah" if any(s.needs_run for s in plans) else "native")
    if chosen == "native" and any(s.needs_run for s in plans):
        line = next(st.line for p in plans for st in p.steps if st.kind == "run")
        raise KubefileError("RUN needs a container: use --backend buildah (or auto)", path.name, line)
    return BuildPlan(path, ctx, parsed, plans, chosen, args, build_epoch(timestamp))
