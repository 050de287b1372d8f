"""``imgbuild lint``: parse and validate a Kubefile, report every problem with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app
from imgbuild.cli.options import parse_pairs

__all__ = ["lint"]


def _error_dict(err) -> dict:  # noqa: ANN001
    return {
        "message": err.message,
        "file": err.file,
        "line": err.line,
        "column": err.column,
        "source_line": err.source_line,
    }


def _summary(kf) -> str:  # noqa: ANN001
    n = sum(1 + len(st.instructions) for st in kf.stages)
    stages = f"{len(kf.stages)} stage{'s' if len(kf.stages) != 1 else ''}"
    apps = kf.final.apps
    tail = f", apps: {', '.join(apps)}" if apps else ""
    return f"{kf.filename}: ok ({stages}, {n} instructions{tail})"


@app.command()
def lint(
    context: Optional[Path] = typer.Argument(
        None, help="Build context: also check that COPY/ADD/APP sources exist in it.", show_default=False
    ),
    file: Optional[Path] = typer.Option(
        None, "--file", "-f", help="The Kubefile (default: CONTEXT/Kubefile, Sealfile, Dockerfile, Containerfile)."
    ),
    build_arg: list[str] = typer.Option([], "--build-arg", help="Set a build argument K=V (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="Print the parsed model (or the errors) as JSON."),
) -> None:
    """Parse and validate a Kubefile; exit 0 if it is valid, 2 with every problem found.

    Without CONTEXT only the Kubefile itself is checked.

    Example: imgbuild lint -f Kubefile . --build-arg VERSION=v1.2 --json
    """
    from imgbuild import api
    from imgbuild.errors import EXIT_USAGE

    result = api.lint(file, context=context, build_args=parse_pairs(build_arg, "--build-arg", from_env=True))
    path, kf, errors = result.path, result.kubefile, result.errors
    if errors:
        if output.want_json(json_out):
            output.emit_json({"ok": False, "file": str(path), "errors": [_error_dict(e) for e in errors]})
        else:
            for err in errors:
                output.error_line(str(err), err.detail())
        raise typer.Exit(EXIT_USAGE)
    if kf.unused_build_args:
        output.warn(f"build arguments not used by any ARG: {', '.join(kf.unused_build_args)}")
    if output.want_json(json_out):
        output.emit_json({"ok": True, "file": str(path), "kubefile": kf.to_dict()})
        return
    output.echo(_summary(kf))
