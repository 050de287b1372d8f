"""The native builder: a BuildPlan with no RUN -> an image in the local store, in pure Python.

Each stage starts from ``scratch``, an earlier stage, or an image (from the
store; pulled by ``--pull=always|missing|never``). COPY/ADD/APP steps become
layers through :mod:`.copying`, split by role (``registry/``, ``scripts/``,
``application/``, the rest) so that a host fetches only what it needs and an
unchanged part keeps its digest; config instructions change the config via
:func:`.plan.apply_config`. The step cache (:mod:`.cache`) makes an unchanged
layer cost a stat per file. Images the context needs (charts, manifests,
``images/shim``) are saved into a registry/ tree, merged into a ``COPY`` of
``registry`` or appended as a final registry layer. Everything is deterministic:
sorted entries, fixed mtimes, ``created`` from the plan's epoch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from imgbuild.builder import copying
from imgbuild.builder.cache import StepCache, step_cache_dir, step_key
from imgbuild.builder.context import BuildContext, Source
from imgbuild.builder.plan import (ROLE_ANNOTATION, BuildPlan, StagePlan, app_dir, apply_config, detect_type,
                                 registry_made, rfc3339, role_of)
from imgbuild.engine.exec import Executor
from imgbuild.errors import BuildError, ImageNotFound, ImgbuildError, InputError
from imgbuild.kubefile import model as m
from imgbuild.labels import INIT, TYPE_LABEL
from imgbuild.oci.layer import Entry, LayerResult, extract_layer, iter_layer_members, open_layer, write_layer
from imgbuild.oci.model import Descriptor, ImageConfig, Manifest, MediaType, Platform, canonical_json
from imgbuild.rootfs.policy import DEFAULT_POLICY
from imgbuild.rootfs.unpack import HashingReader

__all__ = ["BuildOptions", "BuildResult", "Reporter", "build_native", "finish_image", "tag_image", "pull_base"]

_ROLE_ORDER = ("rootfs", "application", "scripts", "registry")  # the order of a step's role layers (LAYER_ROLES)


class Reporter:
    """Progress callbacks; the default does nothing (the CLI prints lines and bars)."""

    def step(self, number: int, total: int, text: str) -> None:
        """A step starts."""

    def note(self, text: str) -> None:
        """A detail of the current step (cache hit, layer written)."""

    def log(self, line: str) -> None:
        """A line of a tool's output (buildah), passed through."""

    def copy_bytes(self, total: int) -> Callable[[int], None] | None:
        """A copy of about ``total`` bytes of tar starts; return a callback fed with bytes as they are tarred, or None."""
        return None


@dataclass(frozen=True)
class BuildOptions:
    """What the command line adds to a plan: tags, compression, pull policy, extra config, platform."""

    tags: tuple[str, ...] = ()
    compression: str = "zstd"
    pull: str = "missing"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    cache: bool = True
    registry_dir: Path | None = None


@dataclass(frozen=True)
class BuildResult:
    """A built image: its manifest descriptor, config, layers and how much the cache saved."""

    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig
    cached_layers: int
    image_type: str

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return str(self.descriptor.digest)

    @property
    def size(self) -> int:
        """Config plus layers, compressed."""
        return self.manifest.config.size + sum(d.size for d in self.manifest.layers)

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return {"digest": self.digest, "size": self.size, "type": self.image_type,
                "platform": str(self.config.platform), "cached_layers": self.cached_layers,
                "layers": [{"digest": str(d.digest), "size": d.size, "role": d.annotations.get(ROLE_ANNOTATION)}
                           for d in self.manifest.layers]}


@dataclass
class _Stage:
    """A stage being built: its layers, config document and file tree."""

    layers: list[Descriptor]
    doc: dict[str, Any]
    tree: copying.FsTree
    has_base: bool
    state: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None


class _Builder:
    """Runs one plan for one platform."""

    def __init__(self, plan: BuildPlan, store, opts: BuildOptions, reporter: Reporter, tmp: Path,
                 executor: Executor | None = None) -> None:
        self.plan, self.store, self.opts, self.rep, self.tmp = plan, store, opts, reporter, tmp
        self.executor = executor
        self.platform = opts.platform or Platform.current()
        # the step cache is the store's Home's; a store without a Home (a scratch layout) builds uncached
        home = store.home
        self.cache = StepCache(step_cache_dir(home) if home else tmp, enabled=opts.cache and home is not None)
        self.created = rfc3339(plan.epoch)
        self.stages: list[_Stage] = []
        self.cached = 0

    # -- stages -----------------------------------------------------------------------------------

    def run(self) -> _Stage:
        """Build every stage; return the last."""
        for sp in self.plan.stages:
            self.stages.append(self._stage(sp))
        return self.stages[-1]

    def _stage(self, sp: StagePlan) -> _Stage:
        st: _Stage | None = None
        for step in sp.steps:
            self.rep.step(step.number, self.plan.total_steps, step.text)
            if st is None:
                st = self._base(sp, self.plan.where(step.line))
                continue
            self._apply(st, step.instruction, self.plan.where(step.line))
        assert st is not None
        return st

    def _base(self, sp: StagePlan, where: str) -> _Stage:
        if sp.base_stage is not None:
            src = self.stages[sp.base_stage]
            return _Stage(list(src.layers), json.loads(json.dumps(src.doc)), src.tree.copy(), src.has_base,
                          dict(src.state))
        if sp.base.lower() == "scratch":
            doc = json.loads(ImageConfig.new(self.platform).raw)
            doc.pop("created", None)
            return _Stage([], doc, copying.FsTree(), False)
        image = self._base_image(sp.base, where, Platform.parse(sp.platform) if sp.platform else None)
        doc = json.loads(image.config.raw)
        tree = copying.FsTree()
        st = _Stage(list(image.layers), doc, tree, True)
        st.state["base_image"] = image
        return st

    def _base_image(self, ref: str, where: str, platform: Platform | None = None):
        """The base image (for ``FROM --platform`` or the build's platform), pulled per the pull policy."""
        platform = platform or self.platform
        policy = self.opts.pull
        if policy not in ("always", "missing", "never"):
            raise InputError(f"--pull must be always, missing or never, not {policy!r}")
        from imgbuild.oci.daemon import base_in_store

        if (stored := base_in_store(ref, self.store, policy)) is not None:
            return self.store.image(stored, platform)
        if policy != "always":
            try:
                return self.store.image(ref, platform)
            except ImageNotFound:
                if policy == "never":
                    raise ImageNotFound(f"base image {ref} is not in the local store (--pull=never)", where)
        self.rep.note(f"pulling {ref}")
        desc = pull_base(ref, self.store, platform, self.executor, where)
        return self.store.image(desc, platform)

    def _load_base_tree(self, st: _Stage) -> None:
        """Read the base image's paths once, the first time a COPY needs to know them."""
        image = st.state.pop("base_image", None)
        if image is None:
            return
        for desc in image.layers:
            with image.open_layer(desc) as fh:
                for member in iter_layer_members(fh, desc.media_type):
                    name = _member_path(member.name)
                    base = name.rsplit("/", 1)[-1]
                    if not base.startswith(".wh."):
                        st.tree.kinds[name] = "dir" if member.isdir() else "file"

    # -- instructions -----------------------------------------------------------------------------

    def _apply(self, st: _Stage, ins: m.Instruction, where: str) -> None:
        if isinstance(ins, (m.Copy, m.Add)):
            self._copy(st, ins, where)
        elif isinstance(ins, (m.App, m.Cni, m.Csi)):
            self._app(st, ins, where)
        elif isinstance(ins, m.Run):
            raise BuildError("RUN needs the buildah backend", where)
        elif isinstance(ins, m.Workdir):
            apply_config(st.doc.setdefault("config", {}), st.doc, ins, st.state)
            self._workdir(st, ins)
        else:
            apply_config(st.doc.setdefault("config", {}), st.doc, ins, st.state)
            self._history(st, ins.original, empty=True)

    def _workdir(self, st: _Stage, ins: m.Workdir) -> None:
        """WORKDIR creates its directory when the stage does not have it yet, as Docker does."""
        self._load_base_tree(st)
        path = st.doc["config"]["WorkingDir"].strip("/")
        if not path or st.tree.is_dir(path):
            self._history(st, ins.original, empty=True)
            return
        planned = copying.add_parents([copying.Planned(Entry(path, "dir", mode=0o755), (path, "dir", 0o755))],
                                      st.tree)
        self._commit(st, planned, ins.original)

    def _history(self, st: _Stage, text: str, empty: bool, comment: str | None = None) -> None:
        entry: dict[str, Any] = {"created": self.created, "created_by": " ".join(text.split())}
        if comment:
            entry["comment"] = comment
        if empty:
            entry["empty_layer"] = True
        st.doc.setdefault("history", []).append(entry)

    def _copy(self, st: _Stage, ins: m.Copy | m.Add, where: str) -> None:
        self._load_base_tree(st)
        uid, gid = copying.parse_chown(ins.chown, where)
        chmod = copying.parse_chmod(ins.chmod, where)
        dest, named_dir = copying.dest_path(ins.dest, st.doc.get("config", {}).get("WorkingDir"))
        if getattr(ins, "parents", False):
            raise BuildError("COPY --parents is not supported by the native builder; use --backend buildah", where)
        sources = self._sources(st, ins, where)
        planned = copying.copy_entries(sources, dest, named_dir, st.tree, uid=uid, gid=gid, chmod=chmod,
                                       exclude=ins.exclude)
        for doc in ins.heredocs:
            arc = f"{dest}/{doc.name}" if dest and (named_dir or st.tree.is_dir(dest)) else dest
            planned.append(copying.bytes_entry(arc, doc.content.encode(), chmod or 0o644, uid, gid))
        planned = copying.add_parents(planned, st.tree, uid, gid)
        target = self._registry_target(ins, dest)
        if self.opts.registry_dir is not None and target is not None:
            have = {p.entry.arcname for p in planned}  # a prepared registry/ in the context wins over the bundle
            planned += [p for p in self._registry_entries(target, st) if p.entry.arcname not in have]
        elif target and any(registry_made(self.plan.context, src) for src in ins.sources):
            self.rep.note("no images to bundle: registry/ is empty")  # and the context has none
            planned = copying.add_parents([copying.Planned(Entry(target, "dir", mode=0o755), (target, "dir", 0o755))],
                                          st.tree)
        self._commit(st, planned, ins.original)

    def _registry_target(self, ins: m.Copy | m.Add, dest: str) -> str | None:
        """Where a COPY puts the context's registry/ (``dest`` for ``registry``, ``dest/registry`` for ``.``)."""
        if getattr(ins, "from_", None):
            return None
        for src in ins.sources:
            rel = self.plan.context.clean(src)
            if rel == "registry":
                return dest
            if rel == "":
                return f"{dest}/registry" if dest else "registry"
        return None

    def _registry_entries(self, target: str, st: _Stage) -> list[copying.Planned]:
        """The saved images' registry/ tree copied to ``target`` (once per build)."""
        root = self.opts.registry_dir
        assert root is not None
        src = Source("", root, True, "registry")
        planned = copying.copy_entries([(BuildContext(root), src)], target, True, st.tree,
                                       exclude=("docker/registry/v2/.tmp",))
        self.opts = BuildOptions(**{**self.opts.__dict__, "registry_dir": None})
        return planned

    def _sources(self, st: _Stage, ins: m.Copy | m.Add, where: str) -> list[tuple[BuildContext, Source]]:
        frm = getattr(ins, "from_", None)
        ctx = self._from_context(frm, where) if frm else self.plan.context
        out: list[tuple[BuildContext, Source]] = []
        for src in ins.sources:
            if "://" in src or src.startswith("git@"):
                raise BuildError(f"{ins.keyword} of a URL ({src}) needs the network; download it into the context",
                                 where)
            if not frm and registry_made(ctx, src):
                continue  # registry/ is made by the build: the bundled images (see _registry_target)
            for s in ctx.resolve(src, where):
                if isinstance(ins, m.Add) and not s.is_dir and copying.archive_kind(s.path):
                    out.append(self._unpacked(s, where))
                else:
                    out.append((ctx, s))
        return out

    def _unpacked(self, s: Source, where: str) -> tuple[BuildContext, Source]:
        """An ADD archive extracted into a scratch directory, as a directory source."""
        dest = Path(tempfile.mkdtemp(dir=self.tmp, prefix="add-"))
        dest.chmod(0o755)  # the directory ADD creates is 0755, as buildah and docker make it (mkdtemp gives 0700)
        copying.extract_archive(s.path, dest, where)
        return BuildContext(dest), Source("", dest, True, s.pattern)

    def _from_context(self, frm: str, where: str) -> BuildContext:
        """COPY --from: an earlier stage (by name or index) or an image, extracted once."""
        try:
            idx = self.plan.parsed.stage(frm).index
        except KeyError:
            idx = None
        if idx is not None and idx < len(self.stages):
            st = self.stages[idx]
            if st.root is None:
                st.root = self._extract(st.layers, f"stage-{idx}-")
            return BuildContext(st.root)
        image = self._base_image(frm, where)
        return BuildContext(self._extract(list(image.layers), "from-"))

    def _extract(self, layers: list[Descriptor], prefix: str) -> Path:
        root = Path(tempfile.mkdtemp(dir=self.tmp, prefix=prefix))
        for desc in layers:  # bounded as mount bounds layers: a decompression bomb stops with an error
            with self.store.open_blob(desc.digest) as fh:
                reader = HashingReader(open_layer(fh, desc.media_type), DEFAULT_POLICY.allowance(desc.size),
                                       f"layer {desc.digest} expands past {DEFAULT_POLICY.allowance(desc.size):,} "
                                       f"bytes (over {DEFAULT_POLICY.max_ratio}x its {desc.size:,} compressed "
                                       "bytes): refusing a possible decompression bomb in COPY --from",
                                       f"layer {desc.digest}")
                extract_layer(reader, MediaType.OCI_LAYER, root, setid=True)  # keeps setuid bits, as docker
        return root

    def _app(self, st: _Stage, ins: m.App | m.Cni | m.Csi, where: str) -> None:
        self._load_base_tree(st)
        sources = []
        for src in ins.sources:
            if src.startswith("local://"):
                sources.extend((self.plan.context, s) for s in self.plan.context.resolve(src[8:], where))
            else:
                sources.append(self._download_cache(src, where))
        planned = copying.copy_entries(sources, app_dir(ins.name), True, st.tree)
        apply_config(st.doc.setdefault("config", {}), st.doc, ins, st.state)
        self._commit(st, planned, ins.original)

    def _download_cache(self, url: str, where: str) -> tuple[BuildContext, Source]:
        cached = self.store.needs_home(f"the download of {url}").cache / "downloads" / hashlib.sha256(url.encode()).hexdigest()
        name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
        if not cached.is_dir() or not (cached / name).is_file():
            raise BuildError(f"{url} is not downloaded and imgbuild builds offline; put the file in the "
                             f"context and use local://, or place it at {cached}/{name}", where)
        return BuildContext(cached), Source(name, cached / name, False, url)

    # -- layers -----------------------------------------------------------------------------------

    def _commit(self, st: _Stage, planned: list[copying.Planned], text: str) -> None:
        """Write the entries as up to four role layers (cache first), add them to the stage."""
        groups: dict[str, list[copying.Planned]] = {}
        for p in planned:
            groups.setdefault(role_of(p.entry.arcname), []).append(p)
        if not groups:
            self._history(st, text, empty=True)
            return
        for role in _ROLE_ORDER:
            if role in groups:
                result = self._layer(groups[role])
                st.layers.append(result.descriptor({ROLE_ANNOTATION: role}))
                st.doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(result.diff_id)
                self._history(st, text, empty=False, comment=f"role={role}")
                st.tree.add([p.entry for p in groups[role]])
        st.root = None

    def _layer(self, planned: list[copying.Planned]) -> LayerResult:
        key = step_key(sorted(p.stamp for p in planned), self.opts.compression, self.plan.epoch)
        hit = self.cache.get(key, self.store)
        if hit is not None:
            self.cached += 1
            self.rep.note(f"using cache {hit.digest.hex[:12]}")
            return hit
        feed = self.rep.copy_bytes(_tar_size(planned))
        with self.store.blob_writer() as w:
            result = write_layer([p.entry for p in planned], w, compression=self.opts.compression,
                                 epoch=self.plan.epoch, on_progress=feed)
        self.cache.put(key, result)
        return result


def pull_base(ref: str, store, platform: Platform | None, executor: Executor | None, where: str) -> Descriptor:
    """Pull base image ``ref`` into ``store``; a failure names the image and the Kubefile line (``where``)."""
    from imgbuild.oci.transfer import pull

    try:
        return pull(ref, store=store, platform=platform, executor=executor)
    except ImageNotFound as exc:
        raise ImageNotFound(f"base image {ref} cannot be pulled: {exc}", where) from exc
    except ImgbuildError as exc:
        raise BuildError(f"base image {ref} cannot be pulled: {exc}", where) from exc


def _member_path(name: str) -> str:
    """A tar member name as an arcname: no leading ``./`` or ``/``, no trailing ``/``."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/") if name != "." else ""


def _tar_size(planned: list[copying.Planned]) -> int:
    """About how many bytes of tar ``planned`` makes: a 512-byte header per entry, file data padded to 512."""
    size = 1024
    for p in planned:
        data = p.stamp[6] if p.entry.kind == "file" and len(p.stamp) > 6 else 0
        size += 512 + -(-data // 512) * 512
    return size


def _finish(b: _Builder, st: _Stage, opts: BuildOptions) -> tuple[ImageConfig, str]:
    """Apply command-line labels/env, the image type and ``created``; return the final config."""
    section = st.doc.setdefault("config", {})
    if opts.env:
        apply_config(section, st.doc, m.Env(keyword="ENV", line=0, end_line=0, original="",
                                            pairs=tuple(opts.env.items())), {})
    labels = {**(section.get("Labels") or {}), **opts.labels}
    kind = detect_type(labels, f"scripts/{INIT}.sh" in st.tree.kinds, st.has_base)
    labels.setdefault(TYPE_LABEL, kind)
    section["Labels"] = dict(sorted(labels.items()))
    st.doc["created"] = b.created
    order = ["created", "author", "architecture", "os", "variant", "config", "rootfs", "history"]
    doc = {k: st.doc[k] for k in order if k in st.doc}
    doc.update({k: v for k, v in st.doc.items() if k not in doc})
    return ImageConfig(canonical_json(doc)), kind


def tag_image(store, desc: Descriptor, tags: tuple[str, ...]) -> None:
    """Tag ``desc`` with every tag, or keep it as an untagged image when there are none."""
    if not tags:
        store.add_untagged(desc)
    for t in tags:
        store.tag(t, desc)


def _complete(b: _Builder, st: _Stage, opts: BuildOptions) -> BuildResult:
    """Append the bundled registry/ if no COPY took it, finish the config, store config and manifest."""
    store = b.store
    if b.opts.registry_dir is not None:  # nothing copied registry/: append it as its own layer
        b._load_base_tree(st)
        planned = b._registry_entries("registry", st)
        b._commit(st, planned, "imgbuild: bundled images (registry/)")
    config, kind = _finish(b, st, opts)
    cfg_desc = store.put_config(config)
    manifest = Manifest.build(cfg_desc, st.layers, dict(opts.annotations) or None)
    desc = store.put_manifest(manifest)
    desc = Descriptor(desc.media_type, desc.digest, desc.size, {}, config.platform)
    return BuildResult(desc, manifest, config, b.cached, kind)


def _annotated(store, desc: Descriptor) -> Descriptor:
    """``desc`` with the role its entries share (rootfs when they are mixed)."""
    with store.open_blob(desc.digest) as fh:
        roles = {role_of(_member_path(mb.name)) for mb in iter_layer_members(fh, desc.media_type)
                 if _member_path(mb.name)}
    return desc.with_annotations(**{ROLE_ANNOTATION: roles.pop() if len(roles) == 1 else "rootfs"})


def finish_image(plan: BuildPlan, store, opts: BuildOptions, reporter: Reporter, image, has_base: bool, *,
                 executor: Executor | None = None) -> BuildResult:
    """Finish an image another backend built (in ``store``): bundled registry/, labels, env, type, created."""
    tmp = Path(tempfile.mkdtemp(prefix="finish-", dir=store.tmp_dir))  # owned: gc sweeps it
    try:
        b = _Builder(plan, store, opts, reporter, tmp, executor)
        st = _Stage(list(image.layers), json.loads(image.config.raw), copying.FsTree(), has_base,
                    {"base_image": image})
        b._load_base_tree(st)
        st.layers = [d if ROLE_ANNOTATION in d.annotations else _annotated(store, d) for d in st.layers]
        return _complete(b, st, opts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_native(plan: BuildPlan, store, opts: BuildOptions = BuildOptions(), reporter: Reporter | None = None,
                 *, tag: bool = True, executor: Executor | None = None) -> BuildResult:
    """Build ``plan`` for ``opts.platform`` into ``store``; tag it unless ``tag`` is False.

    The step cache and downloads are those of the Home ``store`` carries; ``executor`` runs registry
    credential helpers when a base image is pulled (none asked without one).
    """
    rep = reporter or Reporter()
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=store.tmp_dir))  # owned: gc sweeps it
    try:
        b = _Builder(plan, store, opts, rep, tmp, executor)
        result = _complete(b, b.run(), opts)
        if tag:
            tag_image(store, result.descriptor, opts.tags)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
