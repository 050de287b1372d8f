"""``imgbuild pull`` and ``imgbuild push``: move images between the local store and a registry.

Progress goes to stderr through :func:`imgbuild.cli.output.transfer_progress`: tqdm bars on a
terminal, one line per blob otherwise, nothing with ``--quiet``; the result (the digest) goes to stdout. Logic lives in
:mod:`imgbuild.oci.transfer`; these commands only turn options into arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_executor, local_home, local_store
from imgbuild.cli.app import app

if TYPE_CHECKING:
    from imgbuild.progress import Progress

__all__ = ["pull_cmd", "push_cmd", "tls_verify_value", "progress_for_cli", "show_remote", "daemon_pull", "TLS_HELP",
           "CERT_HELP"]

TLS_HELP = "Verify TLS certificates (true/false); false also allows plain http. Default: verify."
CERT_HELP = "A CA certificate file, or a directory of *.crt files, to trust for this registry (or $REGISTRY_CA)."


def tls_verify_value(value: str | None) -> bool | None:
    """``--tls-verify`` text to a bool (None when not given)."""
    from imgbuild.errors import InputError

    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise InputError(f"--tls-verify takes true or false, not {value!r}")


def progress_for_cli() -> Progress:
    """Nothing with ``--quiet``, bars on a terminal, one line per blob otherwise (see output.transfer_progress)."""
    return output.transfer_progress()


def _client_kw(tls_verify: str | None, cert_dir: Path | None) -> dict:
    return {"tls_verify": tls_verify_value(tls_verify), "ca_file": str(cert_dir) if cert_dir else None}


def daemon_pull(text: str):
    """Export ``docker-daemon:REF`` from the daemon ``$DOCKER_HOST`` names into the store; what was loaded."""
    import os

    from imgbuild.errors import InputError
    from imgbuild.oci import daemon
    from imgbuild.oci.archive import Loaded

    ref = daemon.daemon_ref(text)
    if ref is None:
        raise InputError(f"{text} is not a docker-daemon:REF image")
    name = daemon.store_name(ref)
    desc = daemon.pull(daemon.connect(os.environ), ref, local_store(), name, progress_for_cli())
    return Loaded((name.normalized,) if name else (), desc)


@app.command("pull")
def pull_cmd(
    ref: str = typer.Argument(..., help="Image reference, e.g. localhost:5000/demo/app:v1, or docker-daemon:REF "
                              "(an image of the Docker daemon $DOCKER_HOST names)."),
    platform: str | None = typer.Option(None, "--platform", help="os/arch[/variant] to pick from an index "
                                        "(default: this machine)."),
    all_platforms: bool = typer.Option(False, "--all-platforms", help="Keep the whole index and every platform."),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, help="Blobs downloaded in parallel."),
    tls_verify: str | None = typer.Option(None, "--tls-verify", help=TLS_HELP),
    cert_dir: Path | None = typer.Option(None, "--cert-dir", help=CERT_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Pull an image from a registry into the local store; prints its digest.

    Example: imgbuild pull localhost:5000/demo/app:v1 --platform linux/arm64; imgbuild pull docker-daemon:app:v1
    """
    from imgbuild import api
    from imgbuild.errors import InputError

    if platform and all_platforms:
        raise InputError("give --platform or --all-platforms, not both")
    if ref.startswith("docker-daemon:"):
        loaded = daemon_pull(ref)
        _print_digest(ref, loaded.descriptor, json_out)
        return
    desc = api.pull(ref, store=local_store(), executor=local_executor(), platform=platform,
                    all_platforms=all_platforms, jobs=jobs, progress=progress_for_cli(), **_client_kw(tls_verify, cert_dir))
    _print_digest(ref, desc, json_out)


def _print_digest(ref: str, desc, json_out: bool) -> None:
    if output.want_json(json_out):
        output.emit_json({"reference": ref, "digest": str(desc.digest), "mediaType": desc.media_type,
                          "size": desc.size})
    else:
        output.echo(str(desc.digest))


@app.command("push")
def push_cmd(
    ref: str = typer.Argument(..., help="Local image to push."),
    dest: str | None = typer.Argument(None, help="Where to push it (default: REF itself); docker-daemon:NAME loads "
                                      "it into the Docker daemon $DOCKER_HOST names."),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, help="Blobs uploaded in parallel."),
    tls_verify: str | None = typer.Option(None, "--tls-verify", help=TLS_HELP),
    cert_dir: Path | None = typer.Option(None, "--cert-dir", help=CERT_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Push a local image (manifest or whole index) to a registry; prints the pushed digest.

    Example: imgbuild push localhost:5000/demo/app:v1 registry.example.com/demo/app:v1 --jobs 8;
    imgbuild push app:v1 docker-daemon:app:v1
    """
    from imgbuild import api

    if dest is not None and dest.startswith("docker-daemon:"):
        return _daemon_push(ref, dest, json_out)
    digest = api.push(ref, dest, store=local_store(), executor=local_executor(), jobs=jobs, progress=progress_for_cli(),
                      **_client_kw(tls_verify, cert_dir))
    if output.want_json(json_out):
        output.emit_json({"reference": dest or ref, "digest": str(digest)})
    else:
        output.echo(str(digest))


def _daemon_push(ref: str, dest: str, json_out: bool) -> None:
    """``push REF docker-daemon:NAME``: load the image into the daemon ``$DOCKER_HOST`` names; prints its ID."""
    import os

    from imgbuild.oci import daemon
    from imgbuild.reference import parse_reference

    name = parse_reference(daemon.daemon_ref(dest) or "")
    image_id = daemon.push(daemon.connect(os.environ), local_store(), ref, name, progress_for_cli())
    if output.want_json(json_out):
        output.emit_json({"reference": dest, "id": image_id})
    else:
        output.echo(image_id)


def show_remote(ref: str, tls_verify: str | None, json_out: bool) -> None:
    """Print a remote image's manifest summary (``imgbuild inspect --remote``); nothing is stored."""
    from imgbuild import api

    info = api.inspect_remote(ref, home=local_home(), executor=local_executor(), tls_verify=tls_verify_value(tls_verify))
    if output.want_json(json_out):
        output.emit_json(info)
        return
    for label, key in (("Reference", "reference"), ("Digest", "digest"), ("MediaType", "mediaType")):
        output.echo(f"{label + ':':<12}{info[key]}")
    if "platforms" in info:
        output.echo(f"{'Platforms:':<12}{', '.join(info['platforms']) or '-'}")
        return
    cfg = info["config"]
    output.echo(f"{'Platform:':<12}{cfg.get('os', '?')}/{cfg.get('architecture', '?')}")
    output.echo(f"Layers:     {len(info['layers'])}")
    for layer in info["layers"]:
        output.echo(f"  {layer['digest'][7:19]}  {output.human_size(layer['size']):>8}  {layer['mediaType']}")
