"""The buildah backend: a plan with RUN (or ``--backend buildah``) built by ``buildah bud``.

The plan is translated into a Containerfile: Docker instructions are copied
from the Kubefile's own lines (heredocs included), FROM points at base images
moved from our store into buildah's storage (``buildah pull oci:<store>:<ref>``),
COPY/ADD whose sources were platform-substituted are written in JSON form, and
sealer's instructions become ``COPY`` into ``application/apps/<name>/`` and
``LABEL io.imgbuild.*`` (see :mod:`.plan`). ``buildah bud --isolation chroot``
runs with its output streamed; the image is exported with ``buildah push ...
oci:<dir>``, loaded into our store, and finished like a native build (bundled
registry/ layer, command-line labels/env, type, created). Working images are
removed in every case. A failure names the Kubefile line of the failing step
and buildah's last lines.

buildah copies from the context directory only, so a Kubefile that copies a
``registry/`` the build makes (the context has none, as ``sealos build`` would
write it) is built from a staged context: a tree of hard links to the context's
files with the bundled images' tree linked in as ``registry/`` (an empty one when
nothing is bundled). Nothing is copied and the user's context is not touched. A
tree on another filesystem than the Home cannot be linked: it is copied (a note
says how much), as buildah itself would have to read it all anyway.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from imgbuild.builder.native import BuildOptions, BuildResult, Reporter, finish_image
from imgbuild.builder.plan import BuildPlan, StagePlan, apply_config, app_dir, registry_made, sealer_labels
from imgbuild.engine.exec import Executor, require_tool
from imgbuild.errors import BuildError, ImageNotFound
from imgbuild.kubefile import model as m
from imgbuild.oci.model import Platform

__all__ = ["Containerfile", "translate", "build_buildah"]

_STEP_RE = re.compile(r"^(?:\[(\d+)/\d+\] )?STEP (\d+)/\d+: ")
_STORE_LINK = "imgbuild-store"  # lower case, no ':' (see _Buildah.__init__)
_SEALER = (m.App, m.Cni, m.Csi, m.AppCmds, m.AppEnv, m.Launch, m.Cmds, m.KubeVersion)


@dataclass
class Containerfile:
    """A generated Containerfile and, per stage, the Kubefile line of each of its steps."""

    lines: list[str] = field(default_factory=list)
    step_lines: list[list[int]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The Containerfile text."""
        return "\n".join(self.lines) + "\n"

    def kubefile_line(self, stage: int, step: int) -> int | None:
        """The Kubefile line of buildah's ``[stage] STEP step`` (both 1-based), if known."""
        try:
            return self.step_lines[stage - 1][step - 1]
        except IndexError:
            return None


def _label_line(labels: dict[str, str]) -> str:
    return "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in labels.items())


def _raw(plan: BuildPlan, ins: m.Instruction) -> str:
    """The instruction's own lines in the Kubefile (continuations and heredocs included)."""
    text = plan.kubefile.read_text(encoding="utf-8").splitlines()
    return "\n".join(text[ins.line - 1: ins.end_line])


def _copy_json(ins: m.Copy | m.Add, frm: str | None) -> str:
    flags = []
    if frm:
        flags.append(f"--from={frm}")
    for name in ("chown", "chmod"):
        if getattr(ins, name):
            flags.append(f"--{name}={getattr(ins, name)}")
    return " ".join([ins.keyword.upper(), *flags, json.dumps([*ins.sources, ins.dest])])


def _translate_stage(plan: BuildPlan, sp: StagePlan, bases: dict[str, str], out: Containerfile) -> None:
    lines: list[int] = []
    labels: dict = {}
    state: dict = {}
    stage_names = {s.name for s in plan.stages if s.name}
    for step in sp.steps:
        ins = step.instruction
        lines.append(ins.line)
        alias = f" AS {sp.name}" if sp.name else ""
        if isinstance(ins, m.From):
            base = sp.base if sp.base_stage is not None or sp.base.lower() == "scratch" else bases[sp.base]
            if sp.base_stage is not None:
                base = plan.stages[sp.base_stage].name or str(sp.base_stage)
            out.lines.append(f"FROM {base}{alias}")
        elif isinstance(ins, (m.App, m.Cni, m.Csi)):
            srcs = [s[len("local://"):] for s in ins.sources if s.startswith("local://")]
            if len(srcs) != len(ins.sources):
                raise BuildError("APP sources must be local:// in an offline build", plan.where(ins.line))
            out.lines.append("COPY " + json.dumps([*srcs, f"/{app_dir(ins.name)}/"]))
            out.lines.append(_label_line(sealer_labels(ins, labels)))
            lines.append(ins.line)
        elif isinstance(ins, _SEALER):
            out.lines.append(_label_line(sealer_labels(ins, labels)))
        elif isinstance(ins, (m.Copy, m.Add)):
            frm = getattr(ins, "from_", None)
            if frm and frm.lower() not in stage_names and not frm.isdigit():
                out.lines.append(_copy_json(ins, bases[frm]))
            elif ins.heredocs or "$" not in ins.original or ins.sources == ():
                out.lines.append(_raw(plan, ins))
            else:
                out.lines.append(_copy_json(ins, frm))
        else:
            out.lines.append(_raw(plan, ins))
        apply_config(labels_section := {"Labels": labels}, {}, ins, state)
        labels = labels_section.get("Labels") or {}
    out.step_lines.append(lines)


def translate(plan: BuildPlan, bases: dict[str, str]) -> Containerfile:
    """The Containerfile for ``plan``; ``bases`` maps each image reference used to a buildah image ID."""
    out = Containerfile()
    for key, value in plan.parsed.directives.items():
        out.lines.append(f"# {key}={value}")
    for decl in plan.parsed.global_args:
        out.lines.append(f"ARG {decl.name}" + (f"={json.dumps(decl.value)}" if decl.value is not None else ""))
    for sp in plan.stages:
        _translate_stage(plan, sp, bases, out)
    return out


def _image_refs(plan: BuildPlan) -> list[str]:
    """Every image (not stage, not scratch) the plan builds FROM or copies --from."""
    names = {s.name for s in plan.stages if s.name}
    refs = [sp.base for sp in plan.stages if sp.base_stage is None and sp.base.lower() != "scratch"]
    for sp in plan.stages:
        for step in sp.steps:
            frm = getattr(step.instruction, "from_", None)
            if isinstance(step.instruction, (m.Copy, m.Add)) and frm and frm.lower() not in names \
                    and not frm.isdigit():
                refs.append(frm)
    return list(dict.fromkeys(refs))


class _Buildah:
    """One buildah session: the IDs it created, removed at the end."""

    def __init__(self, store, opts: BuildOptions, reporter: Reporter, tmp: Path, executor: Executor) -> None:
        self.buildah = require_tool("buildah")
        self.executor = executor
        # Images reach buildah only from our store, so it needs no credentials: an empty auth file
        # also keeps a REGISTRY_AUTH_FILE that points nowhere from failing the run.
        self.authfile = tmp / "auth.json"
        self.authfile.write_text('{"auths": {}}')
        self.store, self.opts, self.rep, self.tmp = store, opts, reporter, tmp
        # buildah names an image pulled from oci:<dir> after <dir> and splits the reference at its first
        # ':', so the store is reached through a fixed lower-case relative name, whatever the Home's path.
        (tmp / _STORE_LINK).symlink_to(store.root.absolute())
        self.created_ids: list[str] = []
        self.before = set(self._ids())

    def _ids(self) -> list[str]:
        res = self.executor.run([self.buildah, "images", "-q", "--no-trunc"], check=False)
        return [ln.strip().removeprefix("sha256:") for ln in res.stdout.splitlines() if ln.strip()]

    def base(self, ref: str, platform: Platform | None) -> str:
        """Move image ``ref`` from our store (pulling it first per policy) into buildah; return its ID."""
        policy = self.opts.pull
        from imgbuild.oci.daemon import base_in_store

        stored = base_in_store(ref, self.store, policy)
        if stored is not None:  # FROM docker-daemon:REF, now in the store
            ref, policy = stored, "never"
        try:
            if policy == "always":
                raise ImageNotFound(ref)
            self.store.image(ref, platform)
        except ImageNotFound:
            if policy == "never":
                raise ImageNotFound(f"base image {ref} is not in the local store (--pull=never)", ref) from None
            from imgbuild.oci.transfer import pull

            pull(ref, store=self.store, platform=platform, executor=self.executor)
        from imgbuild.reference import parse_reference

        name = parse_reference(ref).normalized
        argv = [self.buildah, "pull", "-q", "--authfile", str(self.authfile)]
        if platform:
            argv += ["--platform", str(platform)]
        res = self.executor.run([*argv, f"oci:{_STORE_LINK}:{name}"], check=False, cwd=str(self.tmp))
        if not res.ok:
            raise BuildError(f"buildah could not take the base image from the store:\n{res.tail()}", ref)
        image_id = res.stdout.strip().splitlines()[-1].removeprefix("sha256:")
        if image_id not in self.before:
            self.created_ids.append(image_id)
        return image_id

    def cleanup(self, name: str) -> None:
        """Remove the working image and the bases this session brought in."""
        self.executor.run([self.buildah, "rmi", "-f", name], check=False)
        for image_id in reversed(self.created_ids):
            self.executor.run([self.buildah, "rmi", "-f", image_id], check=False)


def _copied_registry_line(plan: BuildPlan) -> int | None:
    """The Kubefile line of the first COPY/ADD of a ``registry/`` the context lacks (the build makes it), or None."""
    for sp in plan.stages:
        for step in sp.steps:
            ins = step.instruction
            if isinstance(ins, (m.Copy, m.Add)) and not getattr(ins, "from_", None) \
                    and any(registry_made(plan.context, src) for src in ins.sources):
                return step.line
    return None


def _staged_context(plan: BuildPlan, registry: Path | None, dest: Path, line: int, rep: Reporter) -> Path:
    """``dest``: hard links to the context's tree plus ``registry/`` (the bundled tree, or empty); see the module."""
    copied = [0]

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copy2(src, dst, follow_symlinks=False)  # another filesystem: a link cannot cross it
            copied[0] += os.lstat(dst).st_size

    try:
        shutil.copytree(plan.context.root, dest, symlinks=True, copy_function=link)
        if registry is not None:
            shutil.copytree(registry, dest / "registry", symlinks=True, copy_function=link,
                            ignore=shutil.ignore_patterns(".tmp"))
        else:
            (dest / "registry").mkdir(mode=0o755)
    except (OSError, shutil.Error) as exc:
        raise BuildError(f"the buildah backend (RUN) copies registry/ from the context, which has none, and "
                         f"staging a context with it failed: {exc}", plan.where(line)) from None
    if copied[0]:
        rep.note(f"the context is on another filesystem than imgbuild's Home: {copied[0] / 1e6:.1f} MB copied "
                 "to stage it with registry/")
    return dest


def _bud_argv(session: "_Buildah", plan: BuildPlan, cf_path: Path, name: str, platform: Platform | None,
              context: Path) -> list[str]:
    argv = [session.buildah, "bud", "--authfile", str(session.authfile), "--isolation", "chroot", "--layers=false",
            "--timestamp", str(plan.epoch),
            "-f", str(cf_path), "-t", name]
    if platform:
        argv += ["--platform", str(platform)]
    if plan.context.ignore_file:
        argv += ["--ignorefile", str(plan.context.root / plan.context.ignore_file)]
    for key, value in plan.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, str(context)]


def _failure(plan: BuildPlan, cf: Containerfile, last_step: tuple[int, int] | None, tail: str) -> BuildError:
    line = cf.kubefile_line(*last_step) if last_step else None
    where = plan.where(line) if line else str(plan.kubefile)
    return BuildError(f"buildah bud failed{f' at line {line}' if line else ''}:\n{tail}", where)


def build_buildah(plan: BuildPlan, store, opts: BuildOptions, reporter: Reporter | None = None, *,
                  executor: Executor) -> BuildResult:
    """Build ``plan`` with buildah (run through ``executor``), import the result into ``store``, finish it; not tagged."""
    rep = reporter or Reporter()
    name = f"localhost/imgbuild-work-{uuid.uuid4().hex[:12]}:build"
    tmp = Path(tempfile.mkdtemp(prefix="buildah-", dir=store.tmp_dir))  # owned: gc sweeps it
    session = _Buildah(store, opts, rep, tmp, executor)
    try:
        bases = {ref: session.base(ref, opts.platform) for ref in _image_refs(plan)}
        cf = translate(plan, bases)
        cf_path = tmp / "Containerfile"
        cf_path.write_text(cf.text)
        context = plan.context.root
        copies_registry = _copied_registry_line(plan)
        if copies_registry is not None:  # the COPY takes the bundled tree: it is not appended again when finishing
            context = _staged_context(plan, opts.registry_dir, tmp / "context", copies_registry, rep)
            opts = replace(opts, registry_dir=None)
        last: list[tuple[int, int]] = []

        def on_line(line: str) -> None:
            mt = _STEP_RE.match(line)
            if mt:
                last.append((int(mt.group(1) or 1), int(mt.group(2))))
            rep.log(line)

        res = executor.run(_bud_argv(session, plan, cf_path, name, opts.platform, context), check=False,
                           on_line=on_line)
        if not res.ok:
            raise _failure(plan, cf, last[-1] if last else None, res.tail(8))
        image = _export(session, store, name, tmp / "layout", opts)
        has_base = _has_base(plan, plan.stages[-1])
        return finish_image(plan, store, opts, rep, image, has_base, executor=executor)
    finally:
        session.cleanup(name)
        shutil.rmtree(tmp, ignore_errors=True)


def _export(session: _Buildah, store, name: str, layout: Path, opts: BuildOptions):
    """``buildah push`` the working image into an OCI layout and load it into ``store``."""
    from imgbuild.oci.archive import load

    argv = [session.buildah, "push", "-q", "--authfile", str(session.authfile)]
    argv += ["-D"] if opts.compression == "none" else ["--compression-format", opts.compression]
    res = session.executor.run([*argv, name, f"oci:{layout.name}:build"], check=False, cwd=str(layout.parent))
    if not res.ok:
        raise BuildError(f"buildah push to an OCI layout failed:\n{res.tail()}", name)
    [loaded] = load(store, layout)
    return store.image(loaded.descriptor, opts.platform)


def _has_base(plan: BuildPlan, sp: StagePlan) -> bool:
    while sp.base_stage is not None:
        sp = plan.stages[sp.base_stage]
    return sp.base.lower() != "scratch"
