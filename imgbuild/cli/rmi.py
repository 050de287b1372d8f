"""``imgbuild rmi``: remove local images (tags), then free the blobs no tag reaches."""

from __future__ import annotations

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_store
from imgbuild.cli.app import app

__all__ = ["rmi"]


@app.command()
def rmi(
    refs: list[str] = typer.Argument(..., metavar="REF...", help="Images: tags, digests or ID prefixes."),
    force: bool = typer.Option(False, "--force", "-f", help="By ID: remove the image even if several tags name it."),
    json_out: bool = typer.Option(False, "--json", help="Print what was removed as JSON."),
) -> None:
    """Remove images: a tag removes that name only; an ID or digest the image (-f when several tags name it).

    Example: imgbuild rmi app:v1 3f4e5d6c7b8a -f
    """
    from dataclasses import asdict

    from imgbuild import api

    res = api.rmi(refs, force=force, store=local_store())
    if output.want_json(json_out):
        output.emit_json(asdict(res))
        return
    for name in res.untagged:
        output.echo(f"Untagged: {name}")
    for digest in res.deleted:
        output.echo(f"Deleted: {digest}")
    output.info(f"freed {output.human_size(res.bytes_freed)} ({res.blobs_removed} blobs)")
