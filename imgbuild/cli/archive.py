"""``imgbuild save`` and ``imgbuild load``: images to and from oci-archive / docker-archive files."""

from __future__ import annotations

from pathlib import Path

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_store
from imgbuild.cli.app import app

__all__ = ["save", "load"]


@app.command()
def save(
    refs: list[str] = typer.Argument(..., metavar="REF...", help="Images to save."),
    out: Path = typer.Option(..., "--output", "-o", help="The archive file to write."),
    fmt: str = typer.Option("oci-archive", "--format", help="oci-archive or docker-archive (for docker load)."),
) -> None:
    """Save images to one archive file, written atomically.

    Example: imgbuild save app:v1 -o app.tar --format docker-archive
    """
    from imgbuild import api

    path = api.save(refs, out, fmt, store=local_store())
    output.info(f"saved {len(refs)} image(s) to {path} ({fmt})")


@app.command()
def load(
    image: str | None = typer.Argument(None, metavar="[docker-daemon:REF]",
                                       help="An image of the Docker daemon ($DOCKER_HOST) to load instead of a file."),
    source: Path | None = typer.Option(None, "--input", "-i",
                                       help="An oci-archive, docker-archive or OCI layout directory."),
    max_expansion: int = typer.Option(100, "--max-expansion", min=0, help="Refuse a compressed archive that "
                                      "expands past this many times its size (at least 256 MiB; 0: no limit)."),
    json_out: bool = typer.Option(False, "--json", help="Print the loaded images as JSON."),
) -> None:
    """Load images from an oci-archive, a docker-archive (tar or tar.gz), an OCI layout directory or a Docker daemon.

    Example: imgbuild load -i app.tar; imgbuild load docker-daemon:app:v1
    """
    from imgbuild import api
    from imgbuild.errors import InputError

    if (image is None) == (source is None):
        raise InputError("give --input FILE or docker-daemon:REF (one of them)")
    if image is not None:
        from imgbuild.cli.transfer import daemon_pull

        loaded = [daemon_pull(image)]
    else:
        from imgbuild.rootfs.policy import UnpackPolicy

        loaded = api.load(source, store=local_store(), policy=UnpackPolicy(max_ratio=max_expansion))
    if output.want_json(json_out):
        output.emit_json([{"names": list(x.names), "digest": str(x.descriptor.digest)} for x in loaded])
        return
    for x in loaded:
        for name in x.names or ("<none>",):
            output.echo(f"Loaded image: {name} ({x.descriptor.digest})")
        if not x.names:
            output.info(f"the archive gives this image no name (it is listed as <none>); name it with: "
                        f"imgbuild tag {_short_id(x.descriptor)} NAME")


def _short_id(desc) -> str:
    """The IMAGE ID ``imgbuild images`` shows for ``desc`` (its manifest digest's prefix if it has no one config)."""
    from imgbuild import api
    from imgbuild.errors import ImgbuildError

    try:
        return api.image_id(local_store().image(desc).id)
    except ImgbuildError:
        return desc.digest.hex[:12]
