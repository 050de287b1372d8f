"""One-call verbs for the run side: what ``imgbuild run/apply/add/delete/reset/status/clusters`` do, from Python.

The run-side sibling of :mod:`imgbuild.api`, with the same rules: each function
does one user-level thing on the :class:`~imgbuild.home.Home` it is given and
returns plain values (an :class:`~imgbuild.engine.applier.ApplyResult`, or a dict
for :func:`status`); printing is the CLI's business. Steps are reported to the
``reporter`` given (an :class:`~imgbuild.engine.context.Reporter`; none: quiet).
``options`` (:func:`options` makes one from flag-like values) carries dry-run,
``-e`` env, ``--force``, ``--max-parallel``, ``--data-dir`` and ``--distribute``.

A cluster's state lives under the Home (``home.cluster_dir(name)``); :func:`run` on
a cluster that exists adds the images it does not have yet, as ``sealos run`` does,
and :func:`add`/:func:`delete` change the hosts of one that exists.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from imgbuild.engine.applier import ApplyResult, cluster_status, list_clusters, open_engine
from imgbuild.engine.context import Options
from imgbuild.errors import InputError
from imgbuild.home import Home

__all__ = ["options", "run", "apply", "add", "delete", "reset", "status", "clusters"]

DEFAULT_CLUSTER = "default"


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


def _apply(home: Home, desired: Any, opts: Options, reporter: Any, insecure_host_key: bool,
           configs: Sequence[Any] = ()) -> ApplyResult:
    with open_engine(home, reporter=reporter, insecure_host_key=insecure_host_key,
                     max_parallel=opts.max_parallel) as engine:
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
        desired = replace(current, images=current.images + tuple(i for i in images if i not in current.images))
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
    with open_engine(home, reporter=reporter, insecure_host_key=insecure_host_key,
                     max_parallel=options.max_parallel) as engine:
        return engine.reset(cluster, options)


def status(cluster: str = DEFAULT_CLUSTER, *, home: Home) -> dict:
    """What the state records of ``cluster``: phase, images, hosts (roles, facts, steps done), conditions."""
    return cluster_status(home, cluster)


def clusters(*, home: Home) -> list[dict]:
    """:func:`status` of every cluster this Home holds."""
    return [cluster_status(home, name) for name in list_clusters(home)]
