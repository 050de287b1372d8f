"""The typer application: global options and the registration of every command module."""

from __future__ import annotations

import typer
import typer.core

from imgbuild import __version__
from imgbuild.cli import output

__all__ = ["app"]

# Help is plain text. With rich importable, typer escapes "[default: x]" as "\[default: x]" even when markup
# is off, and importing rich slows start-up; so typer's rich path is switched off here, once.
typer.core.HAS_RICH = False

app = typer.Typer(
    name="imgbuild",
    help=(
        "Build, ship and run cluster images (sealos/sealer compatible).\n\n"
        "Examples:\n\n"
        "  imgbuild build -t localhost:5000/demo/app:v1 .\n\n"
        "  imgbuild images\n\n"
        "  imgbuild push localhost:5000/demo/app:v1\n\n"
        "Global options (--debug, --json, -q) may come before or after the command.\n\n"
        "Exit codes: 0 success, 1 operation failed, 2 bad usage or input, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        output.echo(f"imgbuild {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and verbose logs."),
    json_out: bool = typer.Option(False, "--json", help="Print data as JSON where a command prints data."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print results, no progress."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Global options, applied before any command runs."""
    output.state.debug = output.state.debug or debug
    output.state.json = json_out
    output.state.quiet = quiet
    if output.state.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="debug: %(name)s: %(message)s")


def _register() -> None:
    """Import every command module; each adds its commands to :data:`app`."""
    from imgbuild.cli import version  # noqa: F401
    from imgbuild.cli import archive, images, inspect, rmi, store, tag  # noqa: F401
    from imgbuild.cli import registry_auth, transfer  # noqa: F401
    from imgbuild.cli import images_find  # noqa: F401
    from imgbuild.cli import lint  # noqa: F401
    from imgbuild.cli import registry_dir  # noqa: F401
    from imgbuild.cli import mount  # noqa: F401
    from imgbuild.cli import build  # noqa: F401
    from imgbuild.cli import cluster  # noqa: F401
    from imgbuild.cli import sandbox  # noqa: F401
    from imgbuild.cli import gen  # noqa: F401
    from imgbuild.cli import remote  # noqa: F401


_register()
