"""``imgbuild registry``: save images into a registry/ directory, serve it, list it.

The registry/ directory is docker distribution's filesystem layout (what a cluster
image carries for its cluster's container images). ``save`` fills it from a build
context (or a list of references), ``serve`` runs the stock registry on it in the
foreground, ``ls`` lists its repositories, tags and sizes. Logic lives in
:mod:`imgbuild.oci.regdir`, :mod:`imgbuild.oci.regserve` and :mod:`imgbuild.build.offline`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app

registry_app = typer.Typer(
    name="registry",
    help="Save images into a registry/ directory (docker distribution layout), serve it, list it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(registry_app, name="registry")


@registry_app.command("serve")
def serve_cmd(
    directory: Path = typer.Argument(..., help="The registry/ directory to serve."),
    port: int = typer.Option(5000, "--port", "-p", help="TCP port to listen on."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (0.0.0.0 for all)."),
    read_only: bool = typer.Option(False, "--read-only", help="Refuse pushes."),
) -> None:
    """Serve DIRECTORY with the stock registry in the foreground; Ctrl-C stops it cleanly.

    Example: imgbuild registry serve ./rootfs/registry --port 5000
    """
    from imgbuild.oci.regserve import ServeConfig, serve

    cfg = ServeConfig(directory.absolute(), port, address, read_only)
    output.info(f"serving {cfg.root} at http://{cfg.listen} (Ctrl-C to stop)")
    serve(cfg, on_line=output.info)
    output.info("registry stopped")


@registry_app.command("ls")
def ls_cmd(
    directory: Path = typer.Argument(..., help="The registry/ directory to list."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the repositories, tags, digests and sizes in a registry/ directory.

    Example: imgbuild registry ls ./rootfs/registry --json
    """
    from imgbuild.errors import InputError
    from imgbuild.oci.regdir import RegistryDir

    if not directory.is_dir():
        raise InputError("registry directory does not exist", str(directory))
    rd = RegistryDir(directory)
    tags = rd.listing()
    total = rd.total_size()
    if output.want_json(json_out):
        output.emit_json({"root": str(rd.root), "images": [t.to_dict() for t in tags], "totalSize": total})
        return
    output.table(
        ["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "SIZE"],
        [[t.repository, t.tag, t.digest.hex[:12], ",".join(t.platforms),
          output.human_size(t.size) + (" (incomplete)" if t.missing else "")] for t in tags],
    )
    repos = len({t.repository for t in tags})
    output.info(f"{repos} repositories, {len(tags)} tags, {output.human_size(total)} on disk (blobs stored once)")
