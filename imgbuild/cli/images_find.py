"""``imgbuild images find``: the container images a build context needs, and where each was found.

The command is a thin shell over :func:`imgbuild.builder.images.find_images`
(called directly: it needs the executor for ``--helm``, which
:func:`imgbuild.api.find_images` does not take yet): it prints a table of the
images a build bundles, each with its first source (``file:line``, ``+N
more``), the images shipped as archives, and then, on stderr, charts that had
to be read statically (warnings), the values that were skipped (templated or
invalid) and notes (disabled subcharts, files read line by line). ``--json``
prints the whole result.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.images import images_app

__all__ = ["find"]


@images_app.command("find")
def find(
    context: Path = typer.Argument(..., help="The build context directory (charts/, manifests/, images/shim/)."),
    image_list: Optional[List[Path]] = typer.Option(None, "--image-list", help="A file of extra images, one a line."),
    ignore_image_list: Optional[List[Path]] = typer.Option(
        None, "--ignore-image-list", help="A file of images to leave out, one a line."
    ),
    helm: str = typer.Option("auto", "--helm", help="Render charts with the helm binary: auto (when on PATH), "
                             "always or never (the built-in renderer)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """List the images a build of the context bundles and where each was found (file:line).

    Charts are rendered as helm template renders them (with their charts/<chart>.values.yaml).

    Example: imgbuild images find ./my-app --ignore-image-list skip.txt
    """
    from imgbuild.builder.images import find_images
    from imgbuild.cli.edge import local_executor

    result = find_images(context, image_lists=image_list or (), ignore_lists=ignore_image_list or (), helm=helm,
                         executor=local_executor())
    if output.want_json(json_out):
        output.emit_json(result.to_dict())
        return
    if result.found:
        output.table(["REFERENCE", "FOUND IN"], [(f.ref, f.where) for f in result.found])
    else:
        output.info(f"no images found in {context}")
    if result.archives:
        output.echo()
        output.table(["ARCHIVE IMAGE", "FILE", "LISTED IN"],
                     [(a.ref, f"{a.transport}:{a.path}", str(a.source)) for a in result.archives])
    for w in result.warnings:
        output.warn(str(w))
    for f in result.ignored:
        output.info(f"ignored (ignore list): {f.ref} ({f.where})")
    for note in result.notes:
        output.info(f"note: {note}")
    for s in result.skipped:
        output.warn(f"{s.file}:{s.line}: skipped {s.value!r}: {s.reason}")
