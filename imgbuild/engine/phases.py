"""The run phases, in sealos' order, each ``(ctx) -> None``: Check, Mount, Configs, Render, Distribute,
Registry, Init, Join, Guest; and Clean, which reset and scale-down use.

Every action on a host goes through :meth:`RunContext.step` with a key naming
what it depends on (an image digest, the host's env digest, the registry
hosts), so a step already done is skipped, a changed env re-runs only the
steps whose key holds that env, and ``--dry-run`` lists the steps instead of
running them. Failures are typed by phase and host (:class:`PhaseFailed`).
The callables a phase needs from elsewhere (mounting images, rendering
templates, applying Configs, shipping trees) arrive in ``ctx.extra`` from the
applier, so this module holds the order and the keys, not the mechanisms.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Callable

from imgbuild import labels as L
from imgbuild.engine.context import HostRun, ImageRun, RunContext
from imgbuild.engine.lifecycle import (cmd_command, hosts_block_command, hosts_unblock_command, lifecycle_command,
                                       remove_paths_command)
from imgbuild.errors import InputError

__all__ = ["PHASES", "check", "mount", "configs", "render", "distribute", "registry", "init", "join", "guest",
           "clean", "ARCH_NAMES"]

ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
              "riscv64": "riscv64"}
_OWNER = ".imgbuild-cluster"


def check(ctx: RunContext) -> None:
    """Reach every host; learn its arch and hostname; refuse a wrong arch, duplicate hostnames, a foreign install."""
    ctx.reporter.phase("Check", [h.name for h in ctx.hosts])
    owner = ctx.extra["cluster_id"]
    marker = f"{ctx.cluster_root}/{_OWNER}"
    if ctx.options.dry_run:
        for h in ctx.hosts:
            ctx.step("Check", h, f"owner@{owner}", f"claim {ctx.cluster_root}", lambda: None)
        return
    probe = (f"uname -m; hostname; date +%s; if [ -e {shlex.quote(marker)} ]; then cat {shlex.quote(marker)}; "
             f"elif [ -e {shlex.quote(ctx.cluster_root)} ]; then echo foreign; else echo none; fi")

    def one(host: HostRun) -> None:
        out = ctx.run(host, probe, env={}, stream=False).stdout.split("\n")
        arch, hostname, clock, mark = (out + ["", "", "", ""])[:4]
        host.facts.update(arch=ARCH_NAMES.get(arch.strip(), arch.strip()), hostname=hostname.strip(),
                          clock=clock.strip())
        if mark.strip() not in ("none", owner) and not ctx.options.force:
            raise InputError(f"{ctx.cluster_root} was not installed by this cluster (use --force to take it over)",
                             host.name)

    ctx.each("Check", ctx.hosts, one)
    _check_facts(ctx)
    claim = (f"mkdir -p {shlex.quote(ctx.cluster_root)} && printf '%s\\n' {shlex.quote(owner)} > "
             f"{shlex.quote(marker)}.tmp && mv {shlex.quote(marker)}.tmp {shlex.quote(marker)}")
    ctx.each("Check", ctx.hosts, lambda h: ctx.step("Check", h, f"owner@{owner}", f"claim {ctx.cluster_root}",
                                                     lambda: ctx.run(h, claim, env={}), claim))


def _check_facts(ctx: RunContext) -> None:
    seen: dict[str, str] = {}
    for host in ctx.hosts:
        name = host.facts.get("hostname", "")
        if name in seen:
            raise InputError(f"hostname {name!r} is used by {seen[name]} and {host.name}: hostnames must be unique",
                             host.name)
        seen[name] = host.name
        for image in ctx.images:
            if image.arch and host.facts.get("arch") and image.arch != host.facts["arch"]:
                raise InputError(f"image {image.ref} is {image.arch} but the host is {host.facts['arch']}",
                                 host.name)
    clocks = [int(h.facts["clock"]) for h in ctx.hosts if h.facts.get("clock", "").isdigit()]
    if clocks and max(clocks) - min(clocks) > 5:
        ctx.reporter.note(f"host clocks differ by {max(clocks) - min(clocks)} s (TLS and etcd dislike skew)")


def mount(ctx: RunContext) -> None:
    """Mount each image read-only on this machine (``ctx.extra['mount']``; a dry run too: it reads, never writes)."""
    ctx.reporter.phase("Mount", ["localhost"])
    for image in ctx.images:
        image.path, image.scripts = ctx.extra["mount"](image)
        if not ctx.options.dry_run:  # what the mount dropped: setuid/setgid bits (keys do not depend on them)
            image.setid = ctx.extra["setid"](image)


def configs(ctx: RunContext) -> None:
    """Apply the Clusterfile's Config documents to the images' files (written beside, never into, the mounts)."""
    if not ctx.configs or ctx.options.dry_run:
        return
    ctx.reporter.phase("Configs", ["localhost"])
    ctx.extra["apply_configs"](ctx)


def render(ctx: RunContext) -> None:
    """Render every image's ``*.tmpl`` per host with the host's env (a dry run renders in memory, for the keys)."""
    ctx.reporter.phase("Render", [h.name for h in ctx.hosts])
    if not ctx.options.dry_run and "pki" in ctx.extra:
        ctx.extra["pki"].ensure().token()  # once, before the hosts render in parallel: one CA, one token
    ctx.each("Render", ctx.hosts, lambda host: ctx.extra["render"](ctx, host))


def distribute(ctx: RunContext) -> None:
    """Ship to each host what it needs: the rootfs (registry/ only to registry hosts), apps to master0, its PKI.

    With ``--distribute registry`` the registry hosts go first, their registry is started at once (the Registry
    phase's steps for them), and every other host fetches the shared part of its rootfs from there before the
    transfer sends it the rest (see :mod:`imgbuild.engine.fanout`).
    """
    ctx.reporter.phase("Distribute", [h.name for h in ctx.hosts])
    if not ctx.extra["fans_out"](ctx):
        ctx.each("Distribute", ctx.hosts, lambda host: _send(ctx, host, fetch=False))
        return
    if not ctx.options.dry_run:
        ctx.extra["publish"](ctx)
    ctx.each("Distribute", ctx.registry_hosts, lambda host: _send(ctx, host, fetch=True))
    _registry_steps(ctx, ctx.registry_hosts)
    others = [h for h in ctx.hosts if not ctx.is_registry(h)]
    ctx.each("Distribute", others, lambda host: _send(ctx, host, fetch=True))


def _send(ctx: RunContext, host: HostRun, *, fetch: bool) -> None:
    """Every unit ``host`` lacks; with ``fetch``, the rootfs is first seeded from the fan-out artifact."""
    ship: Callable = ctx.extra["ship"]
    for unit in ctx.extra["units"](ctx, host):
        what = f"send {unit.what} to {unit.dest}"
        if fetch and unit.dest == ctx.rootfs:
            what = (f"send the fan-out artifact to {unit.dest}/registry, expand {unit.what} from it, send the rest"
                    if ctx.is_registry(host) else
                    f"fetch {unit.what} from the registry into {unit.dest}, send the rest")

        def act(unit=unit, seeded=fetch and unit.dest == ctx.rootfs) -> None:
            if seeded:
                ctx.extra["fetch"](ctx, host, unit)
            ship(ctx, host, unit)

        ctx.step("Distribute", host, f"sent:{unit.dest}@{unit.key}", what, act)


def registry(ctx: RunContext) -> None:
    """``/etc/hosts``: registryDomain -> the registry host on every host; then ``init-registry`` on registry hosts."""
    ctx.reporter.phase("Registry", [h.name for h in ctx.hosts])
    _registry_steps(ctx, ctx.hosts)


def _registry_steps(ctx: RunContext, hosts: list[HostRun]) -> None:
    """The Registry phase on ``hosts`` (each host once per run, whether the fan-out ran it early or not)."""
    done: set[str] = ctx.extra.setdefault("registry_ran", set())
    hosts = [h for h in hosts if h.name not in done]
    done.update(h.name for h in hosts)
    target = ctx.registry_hosts[0]

    def entry(host: HostRun) -> None:
        domain = ctx.env_for(host).get("registryDomain", L.REGISTRY_ENV_DEFAULTS["registryDomain"])
        entries = [(target.address, domain)]
        script = hosts_block_command(ctx.cluster_name, entries)
        key = "hosts@" + _digest(entries)
        ctx.step("Registry", host, key, f"/etc/hosts: {domain} -> {target.address}",
                 lambda: ctx.run(host, script, env={}), script)

    ctx.each("Registry", hosts, entry)
    ctx.each("Registry", [h for h in hosts if ctx.is_registry(h)],
             lambda h: _lifecycle(ctx, "Registry", h, L.INIT_REGISTRY))


def init(ctx: RunContext) -> None:
    """``check`` then ``init`` of every rootfs/patch image on every host: master0 first, then the rest together."""
    ctx.reporter.phase("Init", [h.name for h in ctx.hosts])

    def one(host: HostRun) -> None:
        for name in (L.CHECK, L.INIT):
            _lifecycle(ctx, "Init", host, name)

    one(ctx.master0)
    ctx.each("Init", [h for h in ctx.hosts if h is not ctx.master0], one)


def join(ctx: RunContext) -> None:
    """``join-master`` on the other masters one at a time (membership changes are serial), ``join-node`` on nodes."""
    others = [h for h in ctx.masters if h is not ctx.master0]
    ctx.reporter.phase("Join", [h.name for h in others + ctx.nodes])
    for host in others:
        _lifecycle(ctx, "Join", host, L.JOIN_MASTER)
    ctx.each("Join", ctx.nodes, lambda h: _lifecycle(ctx, "Join", h, L.JOIN_NODE))


def guest(ctx: RunContext) -> None:
    """The rootfs images' CMD on every host, then each application's CMD (and sealer's CMDS/LAUNCH) on master0."""
    ctx.reporter.phase("Guest", [h.name for h in ctx.hosts])

    def rootfs_cmd(host: HostRun) -> None:
        for image in ctx.images:
            if image.is_rootfs:
                _cmd(ctx, host, image, ctx.rootfs)

    ctx.each("Guest", ctx.hosts, rootfs_cmd)
    for image in ctx.images:
        if not image.is_rootfs:
            _cmd(ctx, ctx.master0, image, ctx.app_dir(image))
        for i, command in enumerate(_sealer_commands(ctx, image)):
            env = ctx.env_for(ctx.master0)
            key = f"sealer@{image.digest}@{i}@{ctx.env_key(ctx.master0)}"
            ctx.step("Guest", ctx.master0, key, f"{image.ref}: {command}",
                     lambda command=command: ctx.run(ctx.master0, command, env=env), command)


def clean(ctx: RunContext, hosts: list[HostRun]) -> None:
    """Undo a run on ``hosts``: ``clean`` (last image first), ``clean-registry``, the /etc/hosts block, the files."""
    ctx.reporter.phase("Clean", [h.name for h in hosts])

    def one(host: HostRun) -> None:
        for image in reversed([i for i in ctx.images if i.is_rootfs]):
            script = _script_for(ctx, host, image, L.CLEAN)
            if script:
                ctx.step("Clean", host, None, f"{L.CLEAN} of {image.ref}", lambda s=script: _run_ok(ctx, host, s),
                         script)
        if ctx.is_registry(host) or host.has("registry"):
            for image in ctx.images:
                script = _script_for(ctx, host, image, L.CLEAN_REGISTRY)
                if script and image.is_rootfs:
                    ctx.step("Clean", host, None, f"{L.CLEAN_REGISTRY} of {image.ref}",
                             lambda s=script: _run_ok(ctx, host, s), script)
        unblock = hosts_unblock_command(ctx.cluster_name)
        ctx.step("Clean", host, None, "remove the /etc/hosts entries", lambda: ctx.run(host, unblock, env={}), unblock)
        rm = remove_paths_command([ctx.cluster_root])
        ctx.step("Clean", host, None, f"remove {ctx.cluster_root}", lambda: ctx.run(host, rm, env={}), rm)

    ctx.each("Clean", hosts, one)


def _run_ok(ctx: RunContext, host: HostRun, script: str) -> None:
    """Run a cleanup script; with ``--force`` a failure is a note, not the end."""
    try:
        ctx.run(host, script)
    except Exception as exc:  # noqa: BLE001 - reset --force goes on past any failure
        if not ctx.options.force:
            raise
        ctx.reporter.note(f"{host.name}: {exc}")


def _script_for(ctx: RunContext, host: HostRun, image: ImageRun, name: str) -> str | None:
    env = ctx.env_for(host)
    return lifecycle_command(image.labels, name, ctx.rootfs, image.scripts, ctx.extra["expander"](env))


def _lifecycle(ctx: RunContext, phase: str, host: HostRun, name: str) -> None:
    """Run lifecycle step ``name`` of every rootfs/patch image on ``host``, keyed by image and env."""
    for image in ctx.images:
        if not image.is_rootfs:
            continue
        script = _script_for(ctx, host, image, name)
        if script is None:
            continue
        env = ctx.env_for(host)
        key = f"{name}@{image.digest}@{ctx.env_key(host)}"
        ctx.step(phase, host, key, f"{name} of {image.ref}", lambda s=script: ctx.run(host, s, env=env), script)


def _cmd(ctx: RunContext, host: HostRun, image: ImageRun, workdir: str) -> None:
    env = ctx.env_for(host)
    script = cmd_command(image.cmd, image.entrypoint, workdir, ctx.extra["expander"](env))
    if script is None:
        return
    key = f"cmd@{image.digest}@{ctx.env_key(host)}"
    ctx.step("Guest", host, key, f"CMD of {image.ref}", lambda: ctx.run(host, script, env=env), script)


def _sealer_commands(ctx: RunContext, image: ImageRun) -> list[str]:
    """Sealer's CMDS, then each LAUNCH app's APPCMDS (or ``kubectl apply`` / ``helm install`` of its files)."""
    p = L.LABEL_PREFIX
    out = [f"cd {shlex.quote(ctx.rootfs if image.is_rootfs else ctx.app_dir(image))} && {c}"
           for c in json.loads(image.labels.get(p + "cmds", "[]"))]
    base = ctx.rootfs if image.is_rootfs else ctx.app_dir(image)
    for app in json.loads(image.labels.get(p + "launch", "[]")):
        app_dir = f"{base}/application/apps/{app}"
        cmds = json.loads(image.labels.get(f"{p}app.{app}.cmds", "[]"))
        if not cmds:
            cmds = [f"if [ -e Chart.yaml ]; then helm upgrade --install {shlex.quote(app)} .; "
                    f"else kubectl apply -f .; fi"]
        out += [f"cd {shlex.quote(app_dir)} && {c}" for c in cmds]
    return out


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


PHASES = (check, mount, configs, render, distribute, registry, init, join, guest)
"""The run phases in order."""
