"""``imgbuild images find``: the container images a build context needs, and where each was found.

The command is a thin shell over :func:`imgbuild.api.find_images`: it
prints a table of references with their first source (``file:line``, ``+N
more``), the images shipped as archives, and then, on stderr, the values that
were skipped (templated or invalid) and notes (disabled subcharts, files read
line by line). ``--json`` prints the whole result.
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
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """List the images a build context needs and where each was found (file:line).

    Example: imgbuild images find ./my-app --ignore-image-list skip.txt
    """
    from imgbuild import api

    result = api.find_images(context, image_lists=image_list or (), ignore_lists=ignore_image_list or ())
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
    for f in result.ignored:
        output.info(f"ignored (ignore list): {f.ref} ({f.where})")
    for note in result.notes:
        output.info(f"note: {note}")
    for s in result.skipped:
        output.warn(f"{s.file}:{s.line}: skipped {s.value!r}: {s.reason}")
