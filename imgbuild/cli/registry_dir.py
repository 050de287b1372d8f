"""``imgbuild registry``: save images into a registry/ directory, serve it, list it.

The registry/ directory is docker distribution's filesystem layout (what a cluster
image carries for its cluster's container images). ``save`` fills it from a build
context (or a list of references), ``serve`` runs the stock registry on it in the
foreground, ``ls`` lists its repositories, tags and sizes. The commands call
:func:`imgbuild.api.registry_save`, :func:`~imgbuild.api.registry_serve` and
:func:`~imgbuild.api.registry_ls` (logic in :mod:`imgbuild.oci.regsave`, ``regserve``, ``regdir``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app
from imgbuild.cli.edge import local_executor, local_store

__all__ = ["registry_app", "save_cmd", "serve_cmd", "ls_cmd"]

registry_app = typer.Typer(
    name="registry",
    help="Save images into a registry/ directory (docker distribution layout), serve it, list it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(registry_app, name="registry")


@registry_app.command("save")
def save_cmd(
    context: Path | None = typer.Argument(None, help="Build context whose images to save (manifests/, charts/, "
                                          "images/shim, images/skopeo/tar.txt)."),
    registry_dir: Path = typer.Option(..., "--registry-dir", "-d", help="The registry/ directory to write."),
    images: str | None = typer.Option(None, "--images", help="Comma-separated references to save (as well)."),
    image_list: list[Path] = typer.Option([], "--image-list", help="File of references to add (one a line)."),
    ignore_list: list[Path] = typer.Option([], "--ignore-image-list", help="File of references to leave out."),
    platform: str | None = typer.Option(None, "--platform", help="os/arch[/variant] (default: this machine)."),
    all_platforms: bool = typer.Option(False, "--all-platforms", help="Keep whole indexes, every platform."),
    skip_missing: bool = typer.Option(False, "--skip-missing-images", help="Warn about missing images, don't fail."),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, help="Blobs copied in parallel."),
    tls_verify: str | None = typer.Option(None, "--tls-verify", help="Verify TLS certificates (true/false); "
                                          "false also allows plain http. Default: verify."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Save the images a build context needs (and/or --images) into a registry/ directory.

    Example: imgbuild registry save . --registry-dir ./registry --images nginx:1.25,busybox
    """
    from imgbuild import api
    from imgbuild.cli.transfer import progress_for_cli, tls_verify_value

    report = api.registry_save(
        registry_dir, store=local_store(), executor=local_executor(), context=context,
        images=[r.strip() for r in (images or "").split(",") if r.strip()], image_lists=image_list,
        ignore_lists=ignore_list, platform=platform, all_platforms=all_platforms, skip_missing=skip_missing,
        jobs=jobs, tls_verify=tls_verify_value(tls_verify), progress=progress_for_cli(), notify=output.info,
        warn=output.warn,
    )
    for m in report.missing:
        output.warn(f"not saved: {m}")
    if output.want_json(json_out):
        output.emit_json(report.to_dict())
        return
    output.echo(f"{len(report.saved)} saved, {len(report.skipped_existing)} already present, "
                f"{len(report.missing)} missing; {report.blobs_copied} blobs "
                f"({output.human_size(report.bytes_copied)}) copied into {registry_dir}")


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
    from imgbuild import api
    from imgbuild.oci.regserve import ServeConfig

    cfg = ServeConfig(directory.absolute(), port, address, read_only)
    output.info(f"serving {cfg.root} at http://{cfg.listen} (Ctrl-C to stop)")
    api.registry_serve(cfg.root, executor=local_executor(), port=port, address=address, read_only=read_only,
                       on_line=output.info)
    output.info("registry stopped")


@registry_app.command("ls")
def ls_cmd(
    directory: Path = typer.Argument(..., help="The registry/ directory to list."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the repositories, tags, digests and sizes in a registry/ directory.

    Example: imgbuild registry ls ./rootfs/registry --json
    """
    from imgbuild import api

    listing = api.registry_ls(directory)
    tags, total = listing.images, listing.total_size
    if output.want_json(json_out):
        output.emit_json(listing.to_dict())
        return
    output.table(
        ["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "SIZE"],
        [[t.repository, t.tag, t.digest.hex[:12], ",".join(t.platforms),
          output.human_size(t.size) + (" (incomplete)" if t.missing else "")] for t in tags],
    )
    repos = len({t.repository for t in tags})
    output.info(f"{repos} repositories, {len(tags)} tags, {output.human_size(total)} on disk (blobs stored once)")
