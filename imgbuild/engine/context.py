"""What one run of the engine knows: the hosts, the images, the layout on hosts, the state, the options.

A :class:`RunContext` is made by the applier and handed to every phase, as
invoke hands its context to every task: phases reach hosts only through the
executors it holds and record progress only through its :class:`Ledger`.
:meth:`RunContext.step` is the one way a phase acts on a host: it skips a step
whose key the state already holds (so a re-run after a crash resumes, and an
unchanged re-run does nothing), records the step in ``--dry-run`` instead of
running it, and saves the state after each step that ran, so a kill at any
moment loses at most the step in flight.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from imgbuild import labels as L
from imgbuild.engine.exec import Executor
from imgbuild.engine.report import NullReporter, Reporter
from imgbuild.errors import ImgbuildError

__all__ = ["HostRun", "ImageRun", "Options", "Ledger", "RunContext", "PhaseFailed", "Planned", "env_digest", "TOPOLOGY_ENV"]


class PhaseFailed(ImgbuildError):
    """A phase failed on one or more hosts; ``failures`` maps host -> the error it raised."""

    def __init__(self, phase: str, failures: Mapping[str, BaseException]) -> None:
        hosts = ", ".join(sorted(failures))
        first = next(iter(failures.values()))
        super().__init__(f"{phase} failed on {hosts}: {first}", hosts)
        self.phase = phase
        self.failures = dict(failures)
        self.exit_code = getattr(first, "exit_code", self.exit_code)


@dataclass
class HostRun:
    """One host of the run: where it is, its roles, its env and the executor that reaches it."""

    address: str
    port: int
    roles: tuple[str, ...]
    env: dict[str, str]
    executor: Executor | None
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``address`` or ``address:port`` when the port is not 22: how messages and the state name the host."""
        return self.address if self.port == 22 else f"{self.address}:{self.port}"

    def has(self, role: str) -> bool:
        """True when the host has ``role``."""
        return role in self.roles


@dataclass
class ImageRun:
    """One image of the cluster: its config, and once mounted, its tree on this machine."""

    ref: str
    digest: str
    id: str
    type: str
    labels: dict[str, str]
    env: dict[str, str]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...]
    workdir: str
    arch: str
    app: str
    path: Path | None = None
    scripts: tuple[str, ...] = ()
    setid: tuple[tuple[str, int], ...] = ()  # (path, mode) of its setuid/setgid files (the mount drops the bits)

    @property
    def is_rootfs(self) -> bool:
        """True for rootfs and patch images (their tree lands in the cluster's rootfs on every host)."""
        return self.type in (L.TYPE_ROOTFS, L.TYPE_PATCH)


@dataclass(frozen=True)
class Options:
    """What the user asked of this run beyond the Clusterfile."""

    dry_run: bool = False
    data_dir: str = L.DEFAULT_DATA_DIR
    cli_env: Mapping[str, str] = field(default_factory=dict)
    force: bool = False
    max_parallel: int = 32
    distribute: str | None = None
    """How the rootfs reaches hosts: ``ssh`` (streamed from this machine to each) or ``registry`` (non-registry
    hosts fetch it from the cluster registry, see :mod:`imgbuild.engine.fanout`); None: as the cluster's last
    apply did (``ssh`` for a new cluster)."""


@dataclass(frozen=True)
class Planned:
    """One step a run would take (``--dry-run``) or took: phase, host, what, and its state key."""

    phase: str
    host: str
    what: str
    key: str | None
    command: str | None = None

    def to_dict(self) -> dict:
        """As plain data for ``--json``."""
        return {"phase": self.phase, "host": self.host, "what": self.what, "key": self.key,
                "command": self.command}


class Ledger:
    """The done-steps of each host, backed by the cluster state and saved after every step (thread-safe)."""

    def __init__(self, state: Any, save: Callable[[], None]) -> None:
        self.state = state
        self._save = save
        self._lock = threading.Lock()

    def is_done(self, host: str, key: str) -> bool:
        """True when ``host`` already did the step ``key``."""
        with self._lock:
            return self.state.is_done(host, key)

    def done(self, host: str, key: str) -> None:
        """Record that ``host`` did ``key`` and save the state at once."""
        with self._lock:
            self.state.mark_done(host, key)
            self._save()

    def update(self, fn: Callable[[Any], None]) -> None:
        """Change the state under the lock (``fn(state)``) and save it."""
        with self._lock:
            fn(self.state)
            self._save()


@dataclass
class RunContext:
    """Everything a phase needs: hosts, images, layout, ledger, options, reporter."""

    cluster_name: str
    hosts: list[HostRun]
    images: list[ImageRun]
    ledger: Ledger
    options: Options = field(default_factory=Options)
    reporter: Reporter = field(default_factory=NullReporter)
    workdir: Path | None = None
    configs: Sequence[Any] = ()
    planned: list[Planned] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _plock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)

    # -- layout on hosts ------------------------------------------------------------------------
    @property
    def cluster_root(self) -> str:
        """``<data-dir>/<cluster>`` on every host."""
        return posixpath.join(self.options.data_dir, self.cluster_name)

    @property
    def rootfs(self) -> str:
        """Where the merged rootfs of the rootfs/patch images lands on every host."""
        return posixpath.join(self.cluster_root, "rootfs")

    @property
    def pki(self) -> str:
        """Where the cluster PKI lands on every host."""
        return posixpath.join(self.cluster_root, "pki")

    def app_dir(self, image: ImageRun) -> str:
        """The workdir of an application image on master0."""
        return posixpath.join(self.cluster_root, "applications", image.app, "workdir")

    # -- hosts ------------------------------------------------------------------------------------
    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` computed once per run (the host list does not change during a run)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def master0(self) -> HostRun:
        """The first master."""
        return self.masters[0]

    @property
    def masters(self) -> list[HostRun]:
        """Every master, master0 first."""
        return self._once("masters", lambda: [h for h in self.hosts if h.has("master")])

    @property
    def nodes(self) -> list[HostRun]:
        """Every host that is not a master."""
        return self._once("nodes", lambda: [h for h in self.hosts if not h.has("master")])

    @property
    def registry_hosts(self) -> list[HostRun]:
        """Hosts with the registry role, or master0 when none has it."""
        return self._once("registry", lambda: [h for h in self.hosts if h.has("registry")] or [self.master0])

    def is_registry(self, host: HostRun) -> bool:
        """True when ``host`` serves the cluster's registry."""
        return host.name in self._once("registry_names", lambda: {h.name for h in self.registry_hosts})

    # -- env ----------------------------------------------------------------------------------------
    def env_key(self, host: HostRun) -> str:
        """A digest of the host's env without the cluster's topology (the keys of lifecycle steps and CMDs).

        ``MASTERS``, ``NODES`` and ``REGISTRY_HOSTS`` change whenever a host is added or removed; a script is
        not re-run for that (adding a node runs the phases on the new node only, as sealos does). Files
        rendered from them do change, and are re-sent: units are keyed by what was rendered.
        """
        def make() -> str:
            return env_digest({k: v for k, v in self.env_for(host).items() if k not in TOPOLOGY_ENV})

        return self._once(f"envkey:{host.name}", make)

    def env_for(self, host: HostRun) -> dict[str, str]:
        """The host's full script env: its effective env plus what the engine adds (labels.ENGINE_ENV)."""
        cluster = self._once("cluster_env", lambda: {
            "MASTER0": self.master0.address,
            "MASTERS": ",".join(h.address for h in self.masters),
            "NODES": ",".join(h.address for h in self.nodes),
            "REGISTRY_HOSTS": ",".join(h.address for h in self.registry_hosts),
        })
        env = dict(host.env)
        env.update(cluster)
        env.update({
            "SEALOS_SYS_CLUSTER_NAME": self.cluster_name,
            "SEALOS_SYS_ROOTFS": self.rootfs,
            "SEALOS_SYS_PKI": self.pki,
            "HOST_IP": host.address,
            "HOST_ROLES": ",".join(host.roles),
        })
        return env

    # -- steps ----------------------------------------------------------------------------------------
    def step(self, phase: str, host: HostRun, key: str | None, what: str, fn: Callable[[], None],
             command: str | None = None) -> bool:
        """Run one step on ``host`` unless its ``key`` is done; in dry-run only record it. True if it ran."""
        if key is not None and self.ledger.is_done(host.name, key):
            self.reporter.step(phase, host.name, "skip", what)
            return False
        with self._plock:
            self.planned.append(Planned(phase, host.name, what, key, command))
        if self.options.dry_run:
            return False
        self.reporter.step(phase, host.name, "run", what)
        try:
            fn()
        except BaseException:
            self.reporter.step(phase, host.name, "fail", what)
            raise
        if key is not None:
            self.ledger.done(host.name, key)
        self.reporter.step(phase, host.name, "ok", what)
        return True

    def each(self, phase: str, hosts: Sequence[HostRun], fn: Callable[[HostRun], None]) -> None:
        """Run ``fn(host)`` for every host in parallel (bounded); every host finishes its step, then failures raise."""
        if not hosts:
            return
        failures: dict[str, BaseException] = {}
        if self.options.dry_run:  # nothing blocks: threads would only add hand-offs
            for host in hosts:
                fn(host)
            return
        with ThreadPoolExecutor(max_workers=max(1, min(self.options.max_parallel, len(hosts)))) as pool:
            futures = {pool.submit(fn, h): h for h in hosts}
            for fut, host in futures.items():
                exc = fut.exception()
                if exc is not None:
                    failures[host.name] = exc
        if failures:
            if len(failures) == 1 and isinstance(next(iter(failures.values())), PhaseFailed):
                raise next(iter(failures.values()))
            raise PhaseFailed(phase, failures)

    def run(self, host: HostRun, script: str, *, env: Mapping[str, str] | None = None,
            timeout: float | None = None, stream: bool = True) -> Any:
        """Run ``sh -c script`` on ``host`` with its env; ``stream`` sends output lines to the reporter."""
        assert host.executor is not None, host.name
        on_line = (lambda line: self.reporter.line(host.name, line)) if stream else None
        return host.executor.run(["sh", "-c", script], env=dict(env if env is not None else self.env_for(host)),
                                 on_line=on_line, timeout=timeout)


TOPOLOGY_ENV = frozenset({"MASTERS", "NODES", "REGISTRY_HOSTS"})
"""Engine env that changes with scale up/down; left out of lifecycle step keys (see RunContext.env_key)."""


def env_digest(env: Mapping[str, str]) -> str:
    """A short digest of an env, part of the keys of steps whose outcome depends on it."""
    return hashlib.sha256(json.dumps(dict(sorted(env.items()))).encode()).hexdigest()[:12]
