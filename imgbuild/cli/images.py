"""``imgbuild images``: list the local images (a sub-app, so ``images find`` etc. can join it)."""

from __future__ import annotations

from datetime import datetime, timezone

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_store

__all__ = ["images_app", "relative_time"]

images_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
)

# Imported after images_app exists: importing app registers modules (images find) that extend images_app.
from imgbuild.cli.app import app  # noqa: E402

app.add_typer(images_app, name="images")


def relative_time(created: str | None, now: datetime | None = None) -> str:
    """An RFC 3339 time as docker shows it ("3 days ago"); "N/A" if missing, the date if it is the epoch."""
    if not created:
        return "N/A"
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if when.timestamp() <= 0:
        return when.strftime("%Y-%m-%d")
    secs = int(((now or datetime.now(timezone.utc)) - when).total_seconds())
    if secs < 0:
        return when.strftime("%Y-%m-%d %H:%M")
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago" if secs > 1 else "Now"


@images_app.callback()
def images(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print image IDs."),
    digests: bool = typer.Option(False, "--digests", help="Show manifest digests."),
) -> None:
    """List local images: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE, TYPE (the sealos.io.type label).

    With a subcommand (see below), work on images instead.

    Example: imgbuild images --digests
    """
    if ctx.invoked_subcommand is not None:
        return
    from imgbuild import api

    rows = api.images(local_store())
    if output.want_json(json_out):
        output.emit_json([r.to_dict() for r in rows])
        return
    if quiet:
        for image_id in dict.fromkeys(api.image_id(r.image_id) for r in rows):
            output.echo(image_id)
        return
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE", "TYPE"]
    output.table(headers, [
        [r.repository, r.tag, *([r.digest] if digests else []), api.image_id(r.image_id),
         relative_time(r.created), output.human_size(r.size), r.type or "-"]
        for r in rows
    ])
