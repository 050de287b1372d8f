"""``imgbuild tag``: give a local image another name."""

from __future__ import annotations

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_store
from imgbuild.cli.app import app

__all__ = ["tag"]


@app.command()
def tag(
    src: str = typer.Argument(..., metavar="SRC", help="An image in the local store (name, digest or ID)."),
    dst: str = typer.Argument(..., metavar="DST", help="The new name, e.g. localhost:5000/team/app:v2."),
) -> None:
    """Add the name DST to the local image SRC (replacing what DST named before).

    Example: imgbuild tag app:v1 localhost:5000/team/app:v1
    """
    from imgbuild import api

    ref = api.tag(src, dst, local_store())
    output.info(f"tagged {ref.normalized}")
