"""``imgbuild run``, ``apply``, ``add``, ``delete``, ``reset``, ``status``, ``clusters``: run cluster images on hosts.

Thin: each command calls its verb in :mod:`imgbuild.runs` with the flags and a
:class:`~imgbuild.cli.runreport.CliReporter` (steps on the terminal and in the
cluster's log), and prints the outcome.
"""

from __future__ import annotations

import time
from typing import List, Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app

__all__ = ["run", "apply", "add", "delete", "reset", "status", "clusters"]

_CLUSTER = typer.Option("default", "--cluster", "-c", help="The cluster's name (its state lives under the Home).")
_DRY = typer.Option(False, "--dry-run", help="Print every step that would run, per host, and touch nothing.")
_ENV = typer.Option(None, "--env", "-e", help="KEY=VALUE for the scripts (beats image, Clusterfile and host env).")
_FORCE = typer.Option(False, "--force", help="Take over a data dir another cluster left; reset: go on past failures.")
_JSON = typer.Option(False, "--json", help="Print the steps as JSON.")
_INSECURE = typer.Option(False, "--insecure-host-key", help="Do not check SSH host keys (trust on first use is the default).")
_PARALLEL = typer.Option(32, "--max-parallel", min=1, help="At most this many SSH sessions at once.")
_DATA = typer.Option(None, "--data-dir", help="Data directory on hosts (default /var/lib/sealos/data).")
_DISTRIBUTE = typer.Option(
    None, "--distribute", metavar="ssh|registry",
    help="How hosts get the rootfs: ssh (streamed from here to each) or registry (sent to the registry hosts, "
         "which serve it; every other host fetches it from there with curl|zstd -d|tar -x). Default: as the "
         "cluster's last run (ssh for a new one).")


def _options(dry_run: bool, env: Optional[List[str]], force: bool, max_parallel: int, data_dir: Optional[str],
             distribute: Optional[str] = None):
    from imgbuild.runs import options

    return options(dry_run=dry_run, env=env or [], force=force, max_parallel=max_parallel, data_dir=data_dir,
                   distribute=distribute)


def _reporting(home, log_cluster: str, dry_run: bool, verb, /, *args, prefix: str = "", **kw):
    """Call ``verb`` with a CliReporter writing ``log_cluster``'s log (none for a dry run), passed as ``reporter``."""
    from imgbuild.cli.runreport import CliReporter

    log = home.cluster_dir(log_cluster) / "logs" / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}.log"
    reporter = CliReporter(None if dry_run else log)
    try:
        return verb(*args, home=home, reporter=reporter, **kw)
    finally:
        reporter.close()


def _print_result(result, json_out: bool) -> None:
    if output.want_json(json_out):
        output.emit_json(result.to_dict())
        return
    if result.dry_run:
        for s in result.steps:
            output.echo(f"{s.phase:<10} {s.host:<22} {s.what}")
        output.info(f"dry run: {len(result.steps)} step(s) would run; nothing was touched")
        return
    ran = len(result.steps)
    output.info(f"cluster {result.cluster}: {ran} step(s) ran" + ("" if ran else " (nothing to do)")
                + (f"; removed {', '.join(result.removed)}" if result.removed else ""))


@app.command()
def run(
    images: List[str] = typer.Argument(..., metavar="IMAGE...", help="Cluster images: a rootfs image first, then apps."),
    masters: str = typer.Option("", "--masters", "-m",
                                help="Masters: 127.0.2.2,127.0.2.3 or 127.0.2.2-127.0.2.4, ip:port."),
    nodes: str = typer.Option("", "--nodes", "-n", help="Nodes, in the same forms."),
    user: str = typer.Option("root", "--user", "-u", help="SSH user (not root: commands run through sudo)."),
    passwd: str = typer.Option("", "--passwd", "-p", help="SSH password (prefer keys; never printed)."),
    pk: str = typer.Option("", "--pk", help="SSH private key file."),
    pk_passwd: str = typer.Option("", "--pk-passwd", help="Passphrase of --pk."),
    port: Optional[int] = typer.Option(None, "--port", help="SSH port (default 22)."),
    single: bool = typer.Option(False, "--single", help="Run everything on this machine."),
    cluster: str = _CLUSTER, env: Optional[List[str]] = _ENV, dry_run: bool = _DRY, force: bool = _FORCE,
    insecure_host_key: bool = _INSECURE, max_parallel: int = _PARALLEL, data_dir: Optional[str] = _DATA,
    distribute: Optional[str] = _DISTRIBUTE, json_out: bool = _JSON,
) -> None:
    """Run cluster images on hosts: a new cluster, or more images on an existing one (it adds those only).

    Example: imgbuild run localhost/etcd:v3 localhost/etcd-app:v1 --masters 127.0.2.2,127.0.2.3 --nodes 127.0.2.4
    --distribute registry
    """
    from imgbuild import runs
    from imgbuild.cli.edge import local_home as _home

    result = _reporting(_home(), cluster, dry_run, runs.run, images, masters=masters, nodes=nodes, user=user,
                        passwd=passwd, pk=pk, pk_passwd=pk_passwd, port=port, single=single, cluster=cluster,
                        options=_options(dry_run, env, force, max_parallel, data_dir, distribute),
                        insecure_host_key=insecure_host_key)
    _print_result(result, json_out)


@app.command()
def apply(
    clusterfile: str = typer.Option(..., "--clusterfile", "-f", help="The Clusterfile (apps.sealos.io/v1beta1)."),
    values: Optional[List[str]] = typer.Option(None, "--values", help="Values file(s) for {{ .Values.x }} in it."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="a.b=c values (beat --values)."),
    env: Optional[List[str]] = _ENV, dry_run: bool = _DRY, force: bool = _FORCE,
    insecure_host_key: bool = _INSECURE, max_parallel: int = _PARALLEL, data_dir: Optional[str] = _DATA,
    distribute: Optional[str] = _DISTRIBUTE, json_out: bool = _JSON,
) -> None:
    """Make the hosts match a Clusterfile: create, scale up/down, add images, re-render changed env.

    Example: imgbuild apply -f Clusterfile --set registry.port=5001 --dry-run
    """
    from pathlib import Path

    from imgbuild import runs
    from imgbuild.cluster.clusterfile import load_clusterfile
    from imgbuild.cli.edge import local_home as _home

    doc = load_clusterfile(Path(clusterfile), values=[Path(v) for v in values or []], sets=list(set_ or []))
    result = _reporting(_home(), doc.cluster.name, dry_run, runs.apply, doc,
                        options=_options(dry_run, env, force, max_parallel, data_dir, distribute),
                        insecure_host_key=insecure_host_key)
    _print_result(result, json_out)


def _scale(verb: str, masters: str, nodes: str, cluster: str, dry_run: bool, force: bool, insecure: bool,
           max_parallel: int, json_out: bool, distribute: Optional[str] = None) -> None:
    """``add`` / ``delete``: the cluster's hosts changed, applied."""
    from imgbuild import runs
    from imgbuild.cli.edge import local_home as _home

    result = _reporting(_home(), cluster, dry_run, getattr(runs, verb), masters=masters, nodes=nodes, cluster=cluster,
                        options=_options(dry_run, [], force, max_parallel, None, distribute),
                        insecure_host_key=insecure)
    _print_result(result, json_out)


@app.command()
def add(
    masters: str = typer.Option("", "--masters", "-m", help="Masters to add."),
    nodes: str = typer.Option("", "--nodes", "-n", help="Nodes to add."),
    cluster: str = _CLUSTER, dry_run: bool = _DRY, insecure_host_key: bool = _INSECURE,
    max_parallel: int = _PARALLEL, distribute: Optional[str] = _DISTRIBUTE, json_out: bool = _JSON,
) -> None:
    """Add hosts to a cluster: the phases run on the new hosts only.

    Example: imgbuild add --nodes 127.0.2.5 --distribute registry
    """
    _scale("add", masters, nodes, cluster, dry_run, False, insecure_host_key, max_parallel, json_out,
           distribute)


@app.command()
def delete(
    masters: str = typer.Option("", "--masters", "-m", help="Masters to remove."),
    nodes: str = typer.Option("", "--nodes", "-n", help="Nodes to remove."),
    cluster: str = _CLUSTER, dry_run: bool = _DRY, force: bool = _FORCE, insecure_host_key: bool = _INSECURE,
    max_parallel: int = _PARALLEL, json_out: bool = _JSON,
) -> None:
    """Remove hosts from a cluster: `clean` runs on them and what imgbuild put there goes.

    Example: imgbuild delete --nodes 127.0.2.5
    """
    _scale("delete", masters, nodes, cluster, dry_run, force, insecure_host_key, max_parallel, json_out)


@app.command()
def reset(
    cluster: str = _CLUSTER, dry_run: bool = _DRY, force: bool = _FORCE, insecure_host_key: bool = _INSECURE,
    max_parallel: int = _PARALLEL, json_out: bool = _JSON,
) -> None:
    """Undo a cluster on all its hosts (`clean`, `clean-registry`, files, /etc/hosts lines) and forget it.

    Example: imgbuild reset --cluster default
    """
    from imgbuild import runs
    from imgbuild.cli.edge import local_home as _home

    result = _reporting(_home(), cluster, dry_run, runs.reset, cluster, prefix="reset-",
                        options=_options(dry_run, [], force, max_parallel, None), insecure_host_key=insecure_host_key)
    _print_result(result, json_out)


@app.command()
def status(cluster: str = _CLUSTER, json_out: bool = _JSON) -> None:
    """Show a cluster as its state records it: hosts, roles, images, what each host has done, conditions.

    Example: imgbuild status --json
    """
    from imgbuild import runs
    from imgbuild.cli.edge import local_home as _home

    info = runs.status(cluster, home=_home())
    if output.want_json(json_out):
        output.emit_json(info)
        return
    output.echo(f"cluster {info['name']}  phase {info['phase']}")
    output.echo("images: " + ", ".join(info["images"]))
    output.table(["HOST", "ROLES", "ARCH", "HOSTNAME", "STEPS DONE"],
                 [(h["host"], ",".join(h["roles"]), h.get("arch", ""), h.get("hostname", ""), h["steps_done"])
                  for h in info["hosts"]])
    for c in info["conditions"]:
        output.echo(f"{c.get('type')}: {c.get('status')} {c.get('reason', '')} {c.get('message', '')}".rstrip())


@app.command()
def clusters(json_out: bool = _JSON) -> None:
    """List the clusters this Home knows.

    Example: imgbuild clusters
    """
    from imgbuild import runs
    from imgbuild.cli.edge import local_home as _home

    rows = runs.clusters(home=_home())
    if output.want_json(json_out):
        output.emit_json(rows)
        return
    output.table(["NAME", "PHASE", "HOSTS", "IMAGES"],
                 [(r["name"], r["phase"], len(r["hosts"]), ", ".join(r["images"])) for r in rows])
