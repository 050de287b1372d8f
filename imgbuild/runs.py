"""One-call verbs for the run side: what ``imgbuild run/apply/add/delete/reset/status/clusters/exec/scp`` do.

The run-side sibling of :mod:`imgbuild.api`, with the same rules: each function
does one user-level thing on the :class:`~imgbuild.home.Home` it is given and
returns plain values (an :class:`~imgbuild.engine.applier.ApplyResult`, or a dict
for :func:`status`); printing is the CLI's business. Steps are reported to the
``reporter`` given (an :class:`~imgbuild.engine.context.Reporter`; none: quiet).
``options`` (:func:`options` makes one from flag-like values) carries dry-run,
``-e`` env, ``--force``, ``--max-parallel``, ``--data-dir`` and ``--distribute``.

A cluster's state lives under the Home (``home.cluster_dir(name)``); :func:`run` on
a cluster that exists adds the images it does not have yet, as ``sealos run`` does,
and :func:`add`/:func:`delete` change the hosts of one that exists. :func:`hosts`
picks a cluster's machines by role and address; :func:`execute` runs a command on
them and :func:`scp` sends them a local tree (the machine itself through the local
executor, every other host over one SSH pool).
"""

from __future__ import annotations

from dataclasses import replace as _with
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from imgbuild.cluster.model import DEFAULT_CLUSTER_NAME as DEFAULT_CLUSTER
from imgbuild.engine.applier import ApplyResult, cluster_status, list_clusters, open_engine
from imgbuild.engine.context import Options
from imgbuild.errors import InputError
from imgbuild.home import Home

__all__ = ["options", "run", "apply", "add", "delete", "reset", "status", "clusters", "hosts", "execute", "scp"]


def options(*, dry_run: bool = False, env: Sequence[str] | Mapping[str, str] = (), force: bool = False,
            max_parallel: int = 32, data_dir: str | None = None, distribute: str | None = None) -> Options:
    """Options from flag-like values: ``env`` as ``KEY=VALUE`` items (or a mapping); InputError naming the flag."""
    from imgbuild.cluster.model import flag_env
    from imgbuild.labels import DEFAULT_DATA_DIR

    cli_env = dict(flag_env(env))
    if distribute not in (None, "ssh", "registry"):
        raise InputError(f"--distribute must be ssh or registry, not {distribute!r}", "--distribute")
    return Options(dry_run=dry_run, data_dir=data_dir or DEFAULT_DATA_DIR, cli_env=cli_env, force=force,
                   max_parallel=max_parallel, distribute=distribute)


def _engine(home: Home, opts: Options, reporter: Any, insecure_host_key: bool):
    return open_engine(home, reporter=reporter, insecure_host_key=insecure_host_key, max_parallel=opts.max_parallel)


def _apply(home: Home, desired: Any, opts: Options, reporter: Any, insecure_host_key: bool,
           configs: Sequence[Any] = ()) -> ApplyResult:
    with _engine(home, opts, reporter, insecure_host_key) as engine:
        return engine.apply(desired, opts, configs=configs)


def _existing(home: Home, cluster: str) -> Any:
    """The spec the state of ``cluster`` records; InputError when there is no such cluster."""
    from imgbuild.cluster.state import ClusterState

    state = ClusterState.load(home, cluster)
    if state is None or state.cluster is None:
        raise InputError(f"no cluster named {cluster!r} (run or apply one first; see `imgbuild clusters`)", cluster)
    return state.cluster


def run(images: Sequence[str], *, home: Home, masters: str = "", nodes: str = "", user: str = "root",
        passwd: str = "", pk: str = "", pk_passwd: str = "", port: int | None = None, single: bool = False,
        cluster: str = DEFAULT_CLUSTER, options: Options = Options(), reporter: Any = None,
        insecure_host_key: bool = False) -> ApplyResult:
    """Run ``images`` (a rootfs image first, then apps) on the hosts named: a new cluster ``cluster``, or, when it
    exists, the same cluster with the images it lacks added (its hosts and credentials stay as recorded)."""
    from imgbuild.cluster.model import Cluster
    from imgbuild.cluster.state import ClusterState

    state = ClusterState.load(home, cluster)
    if state is not None and state.cluster is not None:
        current = state.cluster
        desired = _with(current, images=current.images + tuple(i for i in images if i not in current.images))
    else:
        desired = Cluster.from_flags(list(images), masters=masters, nodes=nodes, user=user, passwd=passwd, pk=pk,
                                     pk_passwd=pk_passwd, port=port, cluster_name=cluster, single=single)
    return _apply(home, desired, options, reporter, insecure_host_key)


def apply(clusterfile: str | Path | Any, *, home: Home, values: Sequence[str | Path] = (), sets: Sequence[str] = (),
          options: Options = Options(), reporter: Any = None, insecure_host_key: bool = False) -> ApplyResult:
    """Make the hosts match a Clusterfile (a path, rendered with ``values``/``sets``, or one loaded with
    :func:`~imgbuild.cluster.clusterfile.load_clusterfile`): create, scale, add images, re-render what changed."""
    from imgbuild.cluster.clusterfile import Clusterfile, load_clusterfile

    doc = clusterfile if isinstance(clusterfile, Clusterfile) else \
        load_clusterfile(Path(clusterfile), values=[Path(v) for v in values], sets=list(sets))
    return _apply(home, doc.cluster, options, reporter, insecure_host_key, configs=tuple(doc.configs))


def add(*, home: Home, masters: str = "", nodes: str = "", cluster: str = DEFAULT_CLUSTER,
        options: Options = Options(), reporter: Any = None, insecure_host_key: bool = False) -> ApplyResult:
    """Add hosts to an existing cluster: the phases run on the new hosts only."""
    from imgbuild.cluster.edit import with_hosts

    desired = with_hosts(_existing(home, cluster), masters=masters, nodes=nodes)
    return _apply(home, desired, options, reporter, insecure_host_key)


def delete(*, home: Home, masters: str = "", nodes: str = "", cluster: str = DEFAULT_CLUSTER,
           options: Options = Options(), reporter: Any = None, insecure_host_key: bool = False) -> ApplyResult:
    """Remove hosts from an existing cluster: ``clean`` runs on them and what imgbuild put there goes."""
    from imgbuild.cluster.edit import without_hosts

    desired = without_hosts(_existing(home, cluster), masters=masters, nodes=nodes)
    return _apply(home, desired, options, reporter, insecure_host_key)


def reset(cluster: str = DEFAULT_CLUSTER, *, home: Home, options: Options = Options(), reporter: Any = None,
          insecure_host_key: bool = False) -> ApplyResult:
    """Undo a cluster on all its hosts (``clean``, ``clean-registry``, files, /etc/hosts lines) and forget it."""
    with _engine(home, options, reporter, insecure_host_key) as engine:
        return engine.reset(cluster, options)


def status(cluster: str = DEFAULT_CLUSTER, *, home: Home) -> dict:
    """What the state records of ``cluster``: phase, images, hosts (roles, facts, steps done), conditions."""
    return cluster_status(home, cluster)


def clusters(*, home: Home) -> list[dict]:
    """:func:`status` of every cluster this Home holds."""
    return [cluster_status(home, name) for name in list_clusters(home)]


def hosts(cluster: str = DEFAULT_CLUSTER, *, home: Home, roles: Sequence[str] = (),
          ips: Sequence[str] = ()) -> list[Any]:
    """The machines of ``cluster`` with one of ``roles`` (master, node, registry) and among ``ips`` (addresses,
    ranges ``a-b``, CIDRs); every one when neither is given. InputError for an address not in the cluster, or
    when nothing matches."""
    from imgbuild.cluster.hosts import REGISTRY, expand_hosts, parse_endpoint

    spec = _existing(home, cluster)
    machines = spec.machines()
    wanted = {r.strip() for r in roles if r.strip()}
    if wanted:
        registry = {m.address for m in spec.registry_hosts} if REGISTRY in wanted else set()
        machines = [m for m in machines if wanted & set(m.roles) or m.address in registry]
    if ips:
        try:
            named = [parse_endpoint(e) for item in ips for e in expand_hosts(item)]
        except ValueError as exc:
            raise InputError(f"--ips: {exc}") from None
        known = {m.address for m in spec.machines()}
        unknown = [a for a, _ in named if a not in known]
        if unknown:
            raise InputError(f"{unknown[0]} is not a host of cluster {cluster!r}", cluster)
        machines = [m for m in machines if any(m.address == a and p in (None, m.port) for a, p in named)]
    if not machines:
        raise InputError(f"no host of cluster {cluster!r} matches --roles/--ips", cluster)
    return machines


def _on_hosts(home: Home, machines: list[Any], max_parallel: int, insecure_host_key: bool, local: Any):
    """One SSH pool and an executor per machine (``local`` for this machine)."""
    from imgbuild.engine.exec import LocalExecutor
    from imgbuild.engine.ssh import SSHPool, executor_for, target_for

    pool = SSHPool(known_hosts=home.known_hosts, insecure_host_key=insecure_host_key, max_parallel=max_parallel)
    return pool, [executor_for(target_for(m), pool, local or LocalExecutor()) for m in machines]


def execute(command: str, *, home: Home, cluster: str = DEFAULT_CLUSTER, roles: Sequence[str] = (),
            ips: Sequence[str] = (), max_parallel: int = 32, insecure_host_key: bool = False,
            timeout: float | None = None, on_line: Callable[[str, str], None] | None = None,
            local: Any = None) -> list[tuple[str, Any]]:
    """Run ``command`` (with ``sh -c``) on the chosen hosts at once: per host, its Result (any exit code) or the
    error that stopped it (unreachable...). ``on_line(host, line)`` gets output lines as they come."""
    from imgbuild.engine.ssh import run_all

    machines = hosts(cluster, home=home, roles=roles, ips=ips)
    pool, executors = _on_hosts(home, machines, max_parallel, insecure_host_key, local)
    with pool:
        outcomes = run_all(executors, ["sh", "-c", command], on_line=on_line, timeout=timeout)
    return [(ex.host, o) for ex, o in zip(executors, outcomes)]


def scp(source: str | Path, dest: str, *, home: Home, cluster: str = DEFAULT_CLUSTER, roles: Sequence[str] = (),
        ips: Sequence[str] = (), max_parallel: int = 32, insecure_host_key: bool = False, replace: bool = False,
        compress: bool | None = None, progress: Any = None, local: Any = None) -> list[Any]:
    """Make ``dest`` on the chosen hosts a copy of the local ``source`` (one tar stream per host, only what
    changed, swapped in whole); per host a :class:`~imgbuild.engine.transfer.HostResult` (failures included)."""
    from imgbuild.engine.transfer import Job, distribute

    src = Path(source)
    if not src.exists():
        raise InputError(f"{source} does not exist")
    if not dest.startswith("/"):
        raise InputError(f"DEST must be an absolute path on the hosts, not {dest!r}")
    machines = hosts(cluster, home=home, roles=roles, ips=ips)
    pool, executors = _on_hosts(home, machines, max_parallel, insecure_host_key, local)
    with pool:
        return distribute([Job(ex, src, dest) for ex in executors], progress=progress, compress=compress,
                          replace=replace)
