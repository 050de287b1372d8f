"""``imgbuild gen``: print the Clusterfile that ``run`` with the same flags would apply (sealos' ``gen``).

Passwords are secrets: on the terminal they are shown as ``******`` unless
``--show-secrets``; ``-o FILE`` writes the complete Clusterfile (secrets
included) to FILE with mode 0600, ready for ``imgbuild apply -f FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app

__all__ = ["gen"]


@app.command()
def gen(
    images: list[str] = typer.Argument(..., metavar="IMAGE...", help="Cluster images, the rootfs image first."),
    masters: str = typer.Option("", "--masters", help="Masters: IPs, ip:port, ranges 127.0.2.2-127.0.2.4, CIDRs."),
    nodes: str = typer.Option("", "--nodes", help="Nodes, written as --masters."),
    env: list[str] = typer.Option([], "--env", "-e", help="Cluster env K=V written to spec.env (repeatable)."),
    user: str = typer.Option("", "--user", "-u", help="SSH user (default root)."),
    passwd: str = typer.Option("", "--passwd", "-p", help="SSH password."),
    pk: str = typer.Option("", "--pk", "-i", help="SSH private key file."),
    pk_passwd: str = typer.Option("", "--pk-passwd", help="Passphrase of the private key."),
    port: Optional[int] = typer.Option(None, "--port", help="SSH port of hosts given without one (default 22)."),
    cluster: str = typer.Option("default", "--cluster", "-c", help="The cluster's name."),
    single: bool = typer.Option(False, "--single", help="One master: this machine (127.0.0.1)."),
    out_file: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the Clusterfile (mode 0600, "
                                            "secrets included) to FILE instead of printing it."),
    show_secrets: bool = typer.Option(False, "--show-secrets", help="Print passwords instead of ******."),
    json_out: bool = typer.Option(False, "--json", help="Print the Cluster as JSON."),
) -> None:
    """Print the Clusterfile for IMAGE... on --masters/--nodes (passwords masked unless --show-secrets).

    Example: imgbuild gen labring/kubernetes:v1.25.0 labring/helm:v3.8.2 --masters 127.0.2.2
    --nodes 127.0.2.3-127.0.2.5 -p 'pw' -o Clusterfile
    """
    from imgbuild.cluster import Cluster, Clusterfile, to_yaml

    c = Cluster.from_flags(images, masters=masters, nodes=nodes, user=user, passwd=passwd, pk=pk,
                           pk_passwd=pk_passwd, port=port, cluster_name=cluster, env=env, single=single)
    if out_file is not None:
        _write(out_file, Clusterfile.new(c).dump())
        output.info(f"wrote {out_file} (mode 0600)")
        return
    data = c.to_dict() if show_secrets else c.masked_dict()
    if output.want_json(json_out):
        output.emit_json(data)
    else:
        output.echo(to_yaml(data).rstrip("\n"))
    if not show_secrets and data != c.to_dict():
        output.warn("secrets are shown as ******: use -o FILE (or --show-secrets) for a Clusterfile to apply")


def _write(path: Path, text: str) -> None:
    from imgbuild.errors import InputError
    from imgbuild.fsutil import atomic_write

    try:
        atomic_write(path, text.encode("utf-8"), mode=0o600)
    except OSError as exc:
        raise InputError(f"cannot write the Clusterfile: {exc.strerror}", str(path)) from exc
