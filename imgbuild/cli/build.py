"""``imgbuild build``: a Kubefile and its context -> a cluster image in the local store.

Steps print to stderr (``STEP 3/7: COPY bin bin``, a bar for large copies on a
terminal), the summary (digest, size, layers) to stdout; ``--quiet`` prints the
digest only, ``--json`` the result as data, ``--dry-run`` the plan and the
images it would bundle into registry/, without building. The logic is
:func:`imgbuild.api.build` and :func:`imgbuild.api.plan`; the dry run's image
list is :func:`imgbuild.builder.request.preview_bundle`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app
from imgbuild.cli.edge import local_executor, local_store
from imgbuild.cli.options import parse_pairs

__all__ = ["build_cmd"]


class _CliReporter:
    """Prints steps and notes to stderr; a tqdm bar for copies over 32 MB on a terminal."""

    def __init__(self) -> None:
        self._bar = None

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def step(self, number: int, total: int, text: str) -> None:
        self._close()
        output.info(f"STEP {number}/{total}: {text}")

    def note(self, text: str) -> None:
        self._close()
        output.info(f"--> {text}")

    def log(self, line: str) -> None:
        self._close()
        output.info(line)

    def copy_bytes(self, total: int):
        self._close()
        if total < 32_000_000 or output.state.quiet or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="B", unit_scale=True, desc="copying", leave=False, file=sys.stderr)
        return self._bar.update

    def close(self) -> None:
        self._close()


def _bool(value: str, flag: str) -> bool:
    """A true/false option value (``--save-image=false``, as sealos spells it)."""
    from imgbuild.errors import InputError

    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise InputError(f"{flag} takes true or false, not {value!r}")


def _dry_run(context: Path, request: dict, json_out: bool) -> None:
    """Print each platform's plan and the images the build would bundle into registry/."""
    from imgbuild import api
    from imgbuild.builder.request import BuildRequest, preview_bundle

    plans = api.plan(context, **request)
    req = BuildRequest(context=Path(context), **request)
    bundles = [preview_bundle(req, p, local_executor()) for p in plans[:1]] * len(plans)
    if output.want_json(json_out):
        data = [{**p.to_dict(), "bundle": b.to_dict() if b else None} for p, b in zip(plans, bundles)]
        output.emit_json(data if len(data) > 1 else data[0])
        return
    for p in plans:
        for line in p.render():
            output.echo(line)
    bp = bundles[0]
    if bp is None:
        output.echo("registry/: --save-image=false, no images bundled")
    elif not bp.count:
        output.echo("registry/: no images found to bundle")
    else:
        output.echo(f"registry/: {bp.count} image(s) to bundle")
        output.table(["IMAGE", "FOUND IN", "FROM"], bp.rows())
    for w in bp.fetch.warnings if bp else ():
        output.warn(str(w))


def _summary(outcome) -> None:
    """Print the digest, size and layers of what was built."""
    from imgbuild.cli.output import human_size
    from imgbuild.labels import ROLE_ANNOTATION

    for r in outcome.results:
        if len(outcome.results) > 1:
            output.echo(f"platform {r.config.platform}: {r.digest}")
        for d in r.manifest.layers:
            role = d.annotations.get(ROLE_ANNOTATION, "base")
            output.echo(f"  layer {d.digest.hex[:12]}  {human_size(d.size):>9}  {role}")
        cached = f", {r.cached_layers} from cache" if r.cached_layers else ""
        output.echo(f"type {r.image_type}, {len(r.manifest.layers)} layers{cached}, {human_size(r.size)}")
    output.echo(f"digest {outcome.digest}")


@app.command("build")
def build_cmd(
    context: Path = typer.Argument(Path("."), help="The build context directory."),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="Name the image (repeatable)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="The Kubefile (default: Kubefile, Sealfile, "
                                     "Dockerfile or Containerfile in the context)."),
    build_arg: list[str] = typer.Option(None, "--build-arg", help="KEY=VALUE for an ARG (repeatable)."),
    platform: list[str] = typer.Option(None, "--platform", help="os/arch; repeat (or comma-separate) for a "
                                       "multi-platform index."),
    backend: str = typer.Option("auto", "--backend", help="auto (native unless RUN), native or buildah."),
    target: str | None = typer.Option(None, "--target", help="Build up to this stage."),
    pull: str = typer.Option("missing", "--pull", help="Base images: always, missing or never pull."),
    label: list[str] = typer.Option(None, "--label", help="KEY=VALUE label added to the image (repeatable)."),
    annotation: list[str] = typer.Option(None, "--annotation", help="KEY=VALUE manifest annotation (repeatable)."),
    env: list[str] = typer.Option(None, "--env", help="KEY=VALUE env added to the image (repeatable)."),
    compression: str = typer.Option("zstd", "--compression", help="Layer compression: zstd, gzip or none."),
    timestamp: int | None = typer.Option(None, "--timestamp", help="Seconds since the epoch for 'created' "
                                         "(default $SOURCE_DATE_EPOCH, else 0)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the step cache."),
    save_image: str = typer.Option("true", "--save-image", metavar="BOOL",
                                   help="Bundle the images the context needs into registry/ (sealos' flag; "
                                        "--save-image=false bundles none)."),
    skip_missing_images: bool = typer.Option(False, "--skip-missing-images",
                                             help="Leave out, with a warning, images that cannot be fetched."),
    helm: str = typer.Option("auto", "--helm", help="Render charts with the helm binary: auto (when on PATH), "
                             "always or never (the built-in renderer)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the build plan and the images it would bundle; "
                                 "build nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the image digest."),
    json_out: bool = typer.Option(False, "--json", help="Print the result (or the plan) as JSON."),
) -> None:
    """Build a cluster image from a Kubefile and its context into the local store.

    Example: imgbuild build -t localhost:5000/demo/app:v1 kubefiles/app-demo

    Example: imgbuild build --dry-run --skip-missing-images ./my-app   (plan and images, nothing built)
    """
    from imgbuild import api

    if quiet:
        output.state.quiet = True
    platforms = tuple(p.strip() for item in (platform or []) for p in item.split(",") if p.strip())
    request = dict(
        kubefile=file, tags=tuple(tag or ()), build_args=parse_pairs(build_arg, "--build-arg", from_env=True),
        platforms=platforms, backend=backend, target=target, timestamp=timestamp, compression=compression,
        pull=pull, labels=parse_pairs(label, "--label"), annotations=parse_pairs(annotation, "--annotation"),
        env=parse_pairs(env, "--env"), cache=not no_cache, helm=helm, save_image=_bool(save_image, "--save-image"),
        skip_missing_images=skip_missing_images,
    )
    if dry_run:
        _dry_run(context, request, json_out)
        return
    reporter = _CliReporter()
    try:
        outcome = api.build(context, store=local_store(), executor=local_executor(), reporter=reporter, **request)
    finally:
        reporter.close()
    for w in outcome.warnings:
        output.warn(w)
    if output.want_json(json_out):
        output.emit_json(outcome.to_dict())
    elif quiet or output.state.quiet:
        output.echo(outcome.digest)
    else:
        _summary(outcome)
        for t in request["tags"]:
            output.info(f"tagged {t}")
