"""``imgbuild version``: this version and the external tools found."""

from __future__ import annotations

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app

_TOOLS = {
    "buildah": ["buildah", "--version"],
    "skopeo": ["skopeo", "--version"],
    "registry": ["docker-registry", "--version"],
}


@app.command()
def version(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Print imgbuild's version and the versions of the tools it uses.

    Example: imgbuild version --json
    """
    from imgbuild import __version__
    from imgbuild.engine.exec import LOCAL, which

    found: dict[str, str | None] = {}
    for name, argv in _TOOLS.items():
        if not which(argv[0]):
            found[name] = None
            continue
        res = LOCAL.run(argv, check=False)
        text = (res.stdout or res.stderr).strip().splitlines()
        found[name] = text[0] if text else "unknown"
    if output.want_json(json_out):
        output.emit_json({"imgbuild": __version__, "tools": found})
        return
    output.echo(f"imgbuild {__version__}")
    for name, ver in found.items():
        output.echo(f"  {name}: {ver or 'not found'}")
