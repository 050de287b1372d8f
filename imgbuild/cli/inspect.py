"""``imgbuild inspect``: one image's manifest, config, labels, env, cmd and layers."""

from __future__ import annotations

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_store
from imgbuild.cli.app import app

__all__ = ["inspect"]


@app.command()
def inspect(
    ref: str = typer.Argument(..., metavar="REF", help="Image: name[:tag], name@digest, sha256:..., or an ID prefix."),
    json_out: bool = typer.Option(False, "--json", help="Print the raw manifest and config documents as JSON."),
    remote: bool = typer.Option(False, "--remote", help="Read REF from its registry; nothing is stored."),
    tls_verify: str | None = typer.Option(None, "--tls-verify", help="With --remote: verify TLS (true/false)."),
) -> None:
    """Show an image: reference, digests, platform, type, labels, env, cmd and layers.

    Example: imgbuild inspect docker.io/library/app:v1 --json
    """
    if remote:
        from imgbuild.cli.transfer import show_remote

        return show_remote(ref, tls_verify, json_out)
    from imgbuild import api
    from imgbuild.cli.images import relative_time

    d = api.inspect(ref, local_store())
    if output.want_json(json_out):
        output.emit_json(d.to_dict())
        return
    created = f"{d.created} ({relative_time(d.created)})" if d.created else "N/A"
    for key, value in (("Reference", d.reference), ("Digest", d.digest), ("Image ID", api.image_id(d.image_id)),
                       ("Created", created), ("Platform", d.platform), ("Type", d.type or "-"),
                       ("Size", output.human_size(d.size))):
        output.echo(f"{key + ':':<12}{value}")
    _section("Labels", [f"{k}={v}" for k, v in sorted(d.labels.items())])
    _section("Env", d.env)
    output.echo(f"{'Cmd:':<12}{_argv(d.cmd)}")
    output.echo(f"{'Entrypoint:':<12}{_argv(d.entrypoint)}")
    output.echo(f"Layers:     {len(d.layers)}")
    for layer in d.layers:
        role = f"  role={layer['role']}" if layer["role"] else ""
        output.echo(f"  {layer['digest'][7:19]}  {output.human_size(layer['size']):>8}  {layer['media_type']}{role}")


def _section(title: str, lines: list[str]) -> None:
    output.echo(f"{title + ':':<12}{'' if lines else '-'}".rstrip())
    for line in lines:
        output.echo(f"  {line}")


def _argv(argv: list[str]) -> str:
    import json

    return json.dumps(argv) if argv else "-"
