"""``imgbuild version``: this version and the external tools found."""

from __future__ import annotations

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app
from imgbuild.cli.edge import local_executor

__all__ = ["version"]


@app.command()
def version(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Print imgbuild's version and the versions of the tools it uses.

    Example: imgbuild version --json
    """
    from imgbuild import api

    info = api.version(executor=local_executor())
    if output.want_json(json_out):
        output.emit_json(info)
        return
    output.echo(f"imgbuild {info['imgbuild']}")
    for name, ver in info["tools"].items():
        output.echo(f"  {name}: {ver or 'not found'}")
