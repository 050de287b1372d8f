"""``imgbuild store``: maintenance of the local store (verify, gc)."""

from __future__ import annotations

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_store
from imgbuild.cli.app import app

__all__ = ["store_app"]

store_app = typer.Typer(no_args_is_help=True, help="Check and tidy the local image store.")
app.add_typer(store_app, name="store")


@store_app.command()
def verify(
    repair: bool = typer.Option(False, "--repair", help="Remove corrupt blobs (pull or load the images again)."),
    json_out: bool = typer.Option(False, "--json", help="Print the problems as JSON."),
) -> None:
    """Re-hash every blob and check every image is complete; exit 1 if anything is wrong.

    Example: imgbuild store verify --repair
    """
    from imgbuild import api

    problems = api.verify(repair, store=local_store())
    if output.want_json(json_out):
        output.emit_json({"ok": not problems, "problems": problems})
    else:
        for p in problems:
            output.echo(p)
        output.info("store is consistent" if not problems else f"{len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


@store_app.command()
def gc(
    caches: bool = typer.Option(True, "--caches/--no-caches",
                                help="Also prune unpacked layers, diff listings and build-step cache entries "
                                     "that no image or live mount uses."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Remove blobs that no tag reaches and stale temp files, then cache entries nothing uses.

    Bundled-registry trees (cache/registry) and placed downloads (cache/downloads) are never pruned.

    Example: imgbuild store gc --no-caches
    """
    from imgbuild import api

    result = api.gc(store=local_store(), caches=caches)
    if output.want_json(json_out):
        output.emit_json(result.to_dict())
        return
    output.echo(f"removed {result.blobs_removed} blobs, freed {output.human_size(result.bytes_freed)}")
    for p in result.caches:
        if p.removed:
            output.echo(f"{p.cache} cache: removed {p.removed}, freed {output.human_size(p.bytes)}")
        if p.busy:
            output.info(f"{p.cache} cache: kept {p.busy} in use")
        if p.note:
            output.info(p.note)
