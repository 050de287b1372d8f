"""The entry point: runs the typer app and maps every outcome to one line and an exit code."""

from __future__ import annotations

import os
import sys
import traceback

import click

from imgbuild.cli import output
from imgbuild.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, ImgbuildError, Interrupted, KubefileError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default sys.argv[1:]) and exit with its code."""
    code = run(argv)
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code instead of exiting (used by tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    output.state.debug = "--debug" in args or os.environ.get("IMGBUILD_DEBUG") == "1"
    from imgbuild.cli.app import app

    try:
        rv = app(args=args, prog_name="imgbuild", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.UsageError as exc:
        where = f" (imgbuild {exc.ctx.command_path.split(' ', 1)[1]})" if exc.ctx and " " in exc.ctx.command_path else ""
        output.error_line(exc.format_message() + where)
        return EXIT_USAGE
    except click.exceptions.ClickException as exc:
        output.error_line(exc.format_message())
        return exc.exit_code or EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort, Interrupted):
        output.error_line("interrupted")
        return EXIT_INTERRUPTED
    except ImgbuildError as exc:
        if output.state.debug:
            traceback.print_exc()
        detail = exc.detail() if isinstance(exc, KubefileError) else ""
        output.error_line(str(exc), detail)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # a bug: say so briefly, trace only with --debug
        if output.state.debug:
            traceback.print_exc()
        output.error_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return EXIT_FAILED
