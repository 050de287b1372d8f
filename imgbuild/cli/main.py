"""The entry point: runs the typer app and maps every outcome to one line and an exit code.

Start-up is a large part of a short command (``imgbuild push`` of one layer takes about a second), so this
module imports little at the top, commands are loaded on demand (:mod:`imgbuild.cli.app`), the garbage
collector runs less often while modules load, and the process leaves without the interpreter's last
collections walking every object it made.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys

import click

from imgbuild.cli import output
from imgbuild.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, ImgbuildError, Interrupted, KubefileError

__all__ = ["main", "hoist_globals"]

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "--json", "--debug"})


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default sys.argv[1:]) and exit with its code."""
    # A command imports a few hundred modules whose objects live until exit; at the default threshold (700
    # allocations) the collector walks them some 70 times on the way (~40 ms of CPU before a push starts).
    # A young collection every 100,000 allocations still collects cycles in a long run.
    gc.set_threshold(100_000, *gc.get_threshold()[1:])
    code = run(argv)
    # What is alive now is freed with the process: frozen, it is no longer walked by the collections the
    # interpreter runs while it shuts down (about 0.1 s of CPU after a push; atexit handlers still run).
    gc.freeze()
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code instead of exiting (used by tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    output.state.debug = "--debug" in args or os.environ.get("IMGBUILD_DEBUG") == "1"
    import typer.main

    from imgbuild.cli.app import app

    try:
        command = typer.main.get_command(app)
        rv = command.main(args=hoist_globals(command, args), prog_name="imgbuild", standalone_mode=False)
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
            _print_traceback()
        detail = exc.detail() if isinstance(exc, KubefileError) else ""
        output.error_line(str(exc), detail)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # a bug: say so briefly, trace only with --debug
        if output.state.debug:
            _print_traceback()
        output.error_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return EXIT_FAILED


def _print_traceback() -> None:
    """The current exception's traceback on stderr (``--debug``); traceback is imported only then."""
    import traceback

    traceback.print_exc()


def hoist_globals(root: click.Group, args: list[str]) -> list[str]:
    """``args`` with the global flags given after a command moved before it, as docker and podman accept them.

    A flag the command defines itself (``images -q``, ``build --json``) stays with it; nothing after ``--``
    and no option's value moves.
    """
    cmd: click.Command = root
    hoisted: list[str] = []
    rest: list[str] = []
    it = iter(args)
    for tok in it:
        if tok == "--":
            rest += [tok, *it]
            break
        if tok in GLOBAL_FLAGS and cmd is not root and _option(cmd, tok) is None:
            hoisted.append(tok)
            continue
        rest.append(tok)
        if tok.startswith("-"):
            opt = _option(cmd, tok)
            if opt is not None and "=" not in tok and not (opt.is_flag or opt.count):
                rest += itertools.islice(it, opt.nargs)
        elif isinstance(cmd, click.Group):
            cmd = cmd.get_command(click.Context(cmd), tok) or cmd
    return [*hoisted, *rest]


def _option(cmd: click.Command, tok: str) -> click.Option | None:
    """The option of ``cmd`` spelled ``tok`` (without an ``=value``), if it has one."""
    name = tok.split("=", 1)[0]
    for param in cmd.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None
