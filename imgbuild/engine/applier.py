"""The applier: make the hosts match a desired Cluster, resumably, as sealos' Applier does.

:func:`apply` compares the desired :class:`~imgbuild.cluster.model.Cluster`
with the cluster's saved state, cleans hosts the desired cluster no longer has
(scale down), then runs the phases (:mod:`imgbuild.engine.phases`) over every
desired host. Each step is keyed by what it depends on and recorded in the
state the moment it is done, so a new cluster, a scale-up, a new image, a
changed env and a re-run after a crash are all the same walk: what is done is
skipped, what is missing or changed runs. :func:`reset` undoes a cluster on
all its hosts and deletes its state. Everything a host sees goes through the
executors made here from the Clusterfile's SSH settings (the machine's own
address runs locally, as sealos' ``--single``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from imgbuild import labels as L
from imgbuild.engine import phases
from imgbuild.engine.context import HostRun, ImageRun, Ledger, Options, Planned, RunContext
from imgbuild.engine.exec import Executor
from imgbuild.engine.images import check_order, image_runs, mount_image, setid_files
from imgbuild.engine.pki import ClusterPKI, host_bundle
from imgbuild.engine.report import NullReporter, Reporter
from imgbuild.engine.units import Unit, common_key, common_layers, fans_out, host_units
from imgbuild.errors import ImgbuildError, InputError

__all__ = ["Engine", "ApplyResult", "open_engine", "cluster_status", "list_clusters"]


@dataclass(frozen=True)
class ApplyResult:
    """What an apply or reset did (or, in a dry run, would do): the steps, and hosts cleaned."""

    cluster: str
    steps: tuple[Planned, ...]
    removed: tuple[str, ...] = ()
    dry_run: bool = False
    actions: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return {"cluster": self.cluster, "dry_run": self.dry_run, "actions": list(self.actions),
                "removed": list(self.removed), "steps": [s.to_dict() for s in self.steps]}


@dataclass
class Engine:
    """The run engine bound to a Home, a store, a local executor and an SSH pool; one per CLI invocation."""

    home: Any
    store: Any
    local: Executor
    ssh_pool: Any
    reporter: Reporter = field(default_factory=NullReporter)
    mount: Callable[[str], Any] | None = None
    pull: Callable[[str], None] | None = None
    umount: Callable[[str], Any] | None = None

    # -- verbs ---------------------------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SSH connections."""
        if self.ssh_pool is not None:
            self.ssh_pool.close()

    def apply(self, desired: Any, options: Options = Options(), *, configs: Sequence[Any] = ()) -> ApplyResult:
        """Make the hosts match ``desired``; returns the steps taken (or, with ``dry_run``, those it would take)."""
        from imgbuild.cluster.clusterfile import Clusterfile
        from imgbuild.cluster.plan import plan
        from imgbuild.cluster.state import PHASE_IN_PROCESS, ClusterState, now

        state = ClusterState.load(self.home, desired.name)
        new = state is None
        if state is None:
            state = ClusterState.new(Clusterfile.new(desired, configs, name=desired.name))
            state.created = now()
        configs = tuple(configs) or tuple(state.clusterfile.configs)
        options = replace(options, distribute=options.distribute or state.distribute or "ssh")
        images = image_runs(desired.images, self.store, pull=None if options.dry_run else self.pull)
        check_order(images, new)
        actions = plan(desired, None if new else state, cli_env=options.cli_env)  # refuses what sealos refuses
        removed = [self._name_of(state, a.host) for a in actions if a.kind == "remove_host"]
        planned: list[Planned] = []
        if removed:
            self._clean(state, removed, options, planned)
        ctx = self._context(desired, state, images, options, configs)
        ctx.planned[:0] = planned
        if not options.dry_run:
            def begin(s: Any) -> None:
                s.applied(s.clusterfile.with_cluster(desired).with_configs(configs))
                s.phase = PHASE_IN_PROCESS
                s.cli_env = dict(options.cli_env)
                s.distribute = options.distribute
                s.set_condition("Applying", "True", "Started", f"{len(ctx.hosts)} host(s)")
            ctx.ledger.update(begin)
        try:
            for phase in phases.PHASES:
                phase(ctx)
        except Exception as exc:
            if not options.dry_run:
                failure = exc
                ctx.ledger.update(lambda s: _failed(s, failure))
            raise
        if not options.dry_run:
            ctx.ledger.update(lambda s: _succeeded(s, ctx))
        return ApplyResult(desired.name, tuple(ctx.planned), tuple(removed), options.dry_run,
                           tuple(f"{a.kind} {a.host or a.image or ''}".strip() for a in actions))

    def reset(self, name: str, options: Options = Options()) -> ApplyResult:
        """Undo the cluster on every host it has (``clean``, ``clean-registry``, files, /etc/hosts) and forget it."""
        from imgbuild.cluster.state import ClusterState

        state = ClusterState.load(self.home, name)
        if state is None:
            raise InputError(f"no cluster named {name!r} (see `imgbuild clusters`)", name)
        planned: list[Planned] = []
        hosts = [_host_name(m) for m in state.cluster.machines()]
        self._clean(state, hosts, options, planned)
        if not options.dry_run:
            shutil.rmtree(self.home.cluster_dir(name), ignore_errors=True)
            self._release_mounts(state)
        return ApplyResult(name, tuple(planned), tuple(hosts), options.dry_run)

    def _release_mounts(self, state: Any) -> None:
        """Unmount the reset cluster's images unless another cluster of this Home still runs them."""
        from imgbuild.cluster.state import ClusterState

        if self.umount is None:
            return
        in_use: set[str] = set()
        for other in list_clusters(self.home):
            other_state = ClusterState.load(self.home, other)
            if other_state is not None:
                in_use |= {rec.digest for rec in other_state.images.values()}
        for ref, rec in state.images.items():
            if rec.digest and rec.digest not in in_use:
                self.umount(rec.digest)

    # -- internals -------------------------------------------------------------------------------------
    @staticmethod
    def _name_of(state: Any, address: str) -> str:
        """The engine's name (``ip`` or ``ip:port``) of the applied host at ``address``."""
        machine = state.cluster.machine(address)
        return _host_name(machine) if machine is not None else address

    def _clean(self, state: Any, hosts: Sequence[str], options: Options, planned: list[Planned]) -> None:
        """Run the Clean phase on ``hosts`` of the cluster as the state knows it, then drop them from the state."""
        cluster = state.cluster
        images = image_runs(cluster.images, self.store, pull=None if options.dry_run else self.pull)
        ctx = self._context(cluster, state, images, options, tuple(state.clusterfile.configs))
        if not options.dry_run:
            for image in images:
                image.path, image.scripts = mount_image(image, self._mount)
        targets = [h for h in ctx.hosts if h.name in set(hosts)]
        phases.clean(ctx, targets)
        planned.extend(ctx.planned)
        if not options.dry_run:
            ctx.ledger.update(lambda s: [s.forget_host(h.name) for h in targets])

    def _context(self, cluster: Any, state: Any, images: list[ImageRun], options: Options,
                 configs: Sequence[Any]) -> RunContext:
        from imgbuild.cluster.env import effective_env, expand

        image_env: dict[str, str] = {}
        for image in images:
            image_env.update(image.env)
        hosts = []
        for m in cluster.machines():
            env = effective_env(image_env, cluster.env, m.env, options.cli_env)
            executor = None if options.dry_run else self._executor(m)
            hosts.append(HostRun(m.address, m.port, tuple(m.roles), env, executor))
        cluster_dir = Path(self.home.cluster_dir(cluster.name))
        ledger = Ledger(state, lambda: state.save(self.home))
        ctx = RunContext(cluster.name, hosts, images, ledger, options, self.reporter, configs=tuple(configs))
        ctx.extra.update(
            cluster_id=f"{cluster.name}@{state.created}", configs_digest=_configs_digest(configs),
            staging=cluster_dir / "staging", expander=lambda env: (lambda t: expand(t, env)),
            mount=lambda image: mount_image(image, self._mount), render=self._render, units=host_units,
            setid=lambda image: setid_files(image, self.store, self.home), ship=self._ship, fans_out=fans_out,
            publish=self._publish, fetch=self._fetch,
            apply_configs=self._apply_configs, rendered={}, configured={},
            pki=ClusterPKI(cluster_dir / "pki"), templates={}, ca=lambda: _ca_digest(cluster_dir / "pki"),
        )
        for host in hosts:  # what earlier runs learnt; Check refreshes it (a dry run keeps these)
            rec = state.hosts.get(host.name)
            if rec is not None and rec.hostname:
                host.facts.setdefault("hostname", rec.hostname)
        return ctx

    def _executor(self, machine: Any) -> Executor:
        from imgbuild.engine.ssh import executor_for, target_for

        return executor_for(target_for(machine), self.ssh_pool, self.local)

    def _mount(self, ref: str) -> Any:
        if self.mount is None:
            raise InputError("this engine was made without a way to mount images")
        return self.mount(ref)

    def _render(self, ctx: RunContext, host: HostRun) -> None:
        """Render every image's templates for ``host`` and make its PKI bundle, in the staging dir."""
        from imgbuild.cluster.render import TemplateSet

        staging: Path = ctx.extra["staging"]
        env = ctx.env_for(host)
        templates = ctx.extra["templates"]
        for image in ctx.images:
            if not image.is_rootfs and host is not ctx.master0:
                continue
            with ctx._plock:
                if image.id not in templates:
                    templates[image.id] = TemplateSet.load(image.path)
            tset = templates[image.id]
            if ctx.options.dry_run:
                digests = {t: _sha(text) for t, text in tset.render(env).items()}
            else:
                digests = tset.render_into(staging / "hosts" / host.name / image.id, env)
            ctx.extra["rendered"][(host.name, image.id)] = digests
        if not ctx.options.dry_run:
            host_bundle(ctx.extra["pki"], host.address, host.facts.get("hostname", ""),
                        host.has("master"), staging / "pki" / host.name)

    def _apply_configs(self, ctx: RunContext) -> None:
        from imgbuild.cluster.configs import apply_configs

        staging: Path = ctx.extra["staging"]
        trees = {image.ref: image.path for image in ctx.images}
        outs = {image.ref: staging / "configs" / image.id for image in ctx.images}
        changed = apply_configs(ctx.configs, trees, outs)
        for image in ctx.images:
            ctx.extra["configured"][image.id] = {p: "" for p in changed.get(image.ref, [])}

    def _ship(self, ctx: RunContext, host: HostRun, unit: Unit) -> None:
        """Send ``unit`` with the incremental transfer (only changed files go; swapped into place)."""
        from imgbuild.engine.transfer import Job, distribute, raise_failures

        results = distribute([Job(host.executor, unit.layers, unit.dest)], progress=_SentProgress(ctx.reporter))
        raise_failures(results)

    def _publish(self, ctx: RunContext) -> None:
        """Write the rootfs the non-registry hosts share as the fan-out artifact (kept while it is current)."""
        from imgbuild.engine.fanout import publish

        ctx.reporter.note("registry distribution: preparing the shared rootfs as one zstd stream (kept between runs)")
        art = publish(common_layers(ctx), ctx.extra["staging"] / "fanout", common_key(ctx))
        ctx.extra["fanout"] = art
        ctx.reporter.note(f"registry distribution: the shared rootfs is {art.size / 1e6:.1f} MB (zstd), "
                          f"served by {', '.join(h.name for h in ctx.registry_hosts)}")

    def _fetch(self, ctx: RunContext, host: HostRun, unit: Unit) -> None:
        """Seed ``unit.dest`` on ``host`` from the fan-out artifact: a registry host from the artifact it is sent,
        any other host from a registry host's registry (spread over them; again when :func:`~.fanout.refetch` says
        the change is too big for the transfer). A failure falls back to the transfer."""
        from imgbuild.engine.fanout import NO_TOOLS, blob_url, refetch, seed, seed_registry_host
        from imgbuild.engine.transfer import quick_pending

        art = ctx.extra["fanout"]
        try:
            if ctx.is_registry(host):
                got = seed_registry_host(host.executor, art, unit.dest, progress=_SentProgress(ctx.reporter))
            else:
                pending = quick_pending(host.executor, unit.layers, unit.dest)
                others = [h.name for h in ctx.hosts if not ctx.is_registry(h)]
                if not refetch(pending, art.tree_bytes, len(others)):
                    return  # it holds a tree and the change is small: the transfer sends the difference
                source = ctx.registry_hosts[others.index(host.name) % len(ctx.registry_hosts)]
                env = ctx.env_for(source)
                url = blob_url(source.address, env.get("registryPort", L.REGISTRY_ENV_DEFAULTS["registryPort"]),
                               art.digest)
                got = seed(host.executor, url, unit.dest, user=env.get("registryUsername", ""),
                           password=env.get("registryPassword", ""), replace=pending is not None)
        except ImgbuildError as exc:  # e.g. the registry is down: the transfer sends the whole tree instead
            ctx.reporter.note(f"{host.name}: {str(exc).splitlines()[0]}; its rootfs goes over SSH")
            return
        if got == NO_TOOLS:
            ctx.reporter.note(f"{host.name}: no curl or zstd there, so its rootfs goes over SSH")


def open_engine(home: Any, *, reporter: Reporter | None = None, insecure_host_key: bool = False,
                max_parallel: int = 32, store: Any = None) -> Engine:
    """An :class:`Engine` over ``home``'s store, mounting and pulling with the library verbs, SSH per the Home."""
    from imgbuild import api
    from imgbuild.engine.exec import LocalExecutor
    from imgbuild.engine.ssh import SSHPool
    from imgbuild.oci.store import open_store

    store = store if store is not None else open_store(home)
    local = LocalExecutor()
    pool = SSHPool(known_hosts=home.known_hosts, insecure_host_key=insecure_host_key, max_parallel=max_parallel)
    return Engine(home, store, local, pool, reporter or NullReporter(),
                  mount=lambda ref: api.mount(ref, reuse=True, store=store, executor=local),
                  pull=lambda ref: api.pull(ref, store=store, executor=local),
                  umount=lambda digest: api.umount(digest, home=home, executor=local))


def list_clusters(home: Any) -> list[str]:
    """The names of the clusters whose state this Home holds."""
    root = Path(home.clusters)
    return sorted(p.name for p in root.iterdir() if (p / "Clusterfile").exists()) if root.is_dir() else []


def cluster_status(home: Any, name: str) -> dict:
    """What the state records of cluster ``name``: phase, images, hosts (roles, facts, steps done), conditions."""
    from imgbuild.cluster.state import ClusterState

    state = ClusterState.load(home, name)
    if state is None:
        raise InputError(f"no cluster named {name!r} (see `imgbuild clusters`)", name)
    hosts = []
    for m in state.cluster.machines():
        host = _host_name(m)
        rec = state.hosts.get(host)
        hosts.append({"host": host, "roles": list(m.roles), "arch": rec.arch if rec else "",
                      "hostname": rec.hostname if rec else "", "steps_done": len(rec.done) if rec else 0})
    return {"name": name, "phase": state.phase, "images": list(state.cluster.images), "hosts": hosts,
            "conditions": [c.to_dict() for c in state.conditions]}


class _SentProgress:
    """Transfer progress -> the reporter's byte counts."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def started(self, label: str, total: int) -> None:
        self.reporter.sent(label, 0, total)

    def advanced(self, label: str, n: int) -> None:
        self.reporter.sent(label, n)

    def finished(self, label: str, note: str) -> None:
        """Nothing to add: the step's outcome is reported by the phase."""


def _failed(state: Any, exc: BaseException) -> None:
    from imgbuild.cluster.state import PHASE_FAILED

    state.phase = PHASE_FAILED
    state.set_condition("Applying", "False", "Failed", str(exc).splitlines()[0][:300])


def _succeeded(state: Any, ctx: RunContext) -> None:
    from imgbuild.cluster.state import PHASE_SUCCESS, ImageRecord

    for host in ctx.hosts:
        rec = state.host(host.name)
        rec.arch = host.facts.get("arch", rec.arch)
        rec.hostname = host.facts.get("hostname", rec.hostname)
    for image in ctx.images:
        state.images[image.ref] = ImageRecord(image.digest, image.type)
    state.phase = PHASE_SUCCESS
    state.set_condition("Applying", "False", "Succeeded", "every host matches the Clusterfile")


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _ca_digest(pki_dir: Path) -> str:
    """A digest of the cluster CA certificate ('' before there is one): host bundles change with it."""
    crt = pki_dir / "ca.crt"
    return _sha(crt.read_text()) if crt.exists() else ""


def _configs_digest(configs: Sequence[Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps([c.to_dict() for c in configs], sort_keys=True).encode()).hexdigest()[:12]


def _host_name(machine: Any) -> str:
    return machine.address if machine.port == 22 else f"{machine.address}:{machine.port}"


