"""The typer application: global options, and the table of command modules loaded on demand.

A command module adds its commands to :data:`app` when it is imported. Importing all of them (and building
every click command) costs more start-up than many commands take to run, so :data:`COMMANDS` names the
module of each top-level command and the root group (:class:`LazyGroup`) imports only the one invoked.
``imgbuild --help`` and shell completion list every command and so import every module.
A new command module adds its commands' names to :data:`COMMANDS` (a test checks the two agree).
"""

from __future__ import annotations

import importlib

import click
import typer
import typer.core
import typer.main

from imgbuild import __version__
from imgbuild.cli import output

__all__ = ["app", "COMMANDS", "LazyGroup", "load_all"]

# Help is plain text. With rich importable, typer escapes "[default: x]" as "\[default: x]" even when markup
# is off, and importing rich slows start-up; so typer's rich path is switched off here, once.
typer.core.HAS_RICH = False

# Top-level command or group name -> the modules under imgbuild.cli that define it (a group's subcommands may
# live in a second module), in the order ``imgbuild --help`` lists them.
COMMANDS: dict[str, tuple[str, ...]] = {
    name: tuple(f"imgbuild.cli.{module}" for module in modules.split())
    for modules, names in (
        ("version", "version"),
        ("archive", "save load"),
        ("inspect", "inspect"),
        ("rmi", "rmi"),
        ("tag", "tag"),
        ("transfer", "pull push"),
        ("registry_auth", "login logout"),
        ("lint", "lint"),
        ("mount", "mount umount mounts commit diff"),
        ("build", "build"),
        ("cluster", "run apply add delete reset status clusters"),
        ("gen", "gen"),
        ("remote", "exec scp"),
        ("images images_find", "images"),
        ("store", "store"),
        ("registry_dir", "registry"),
        ("sandbox", "sandbox"),
    )
    for name in names.split()
}


class LazyGroup(typer.core.TyperGroup):
    """The root group: lists every name in :data:`COMMANDS` and imports a command's module only when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name: the table's, then any registered outside it (e.g. by a test)."""
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, its module imported and its click command built on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            for module in COMMANDS[cmd_name]:
                importlib.import_module(module)
            built = _build(cmd_name)
            if built is not None:
                self.add_command(built, cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """As click resolves it; an unknown name first loads every command, for click's "Did you mean" hint."""
        if args and args[0] not in COMMANDS and args[0] not in self.commands:
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _build(name: str) -> click.Command | None:
    """The click command (or group) registered on :data:`app` as ``name``, built as typer builds it."""
    style = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
    for info in app.registered_commands:
        if info.callback and (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            return typer.main.get_command_from_info(info, **style)
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(group, **style)
    return None


def load_all() -> None:
    """Import every command module, so that :data:`app` holds every command (for tests and introspection)."""
    for modules in COMMANDS.values():
        for module in modules:
            importlib.import_module(module)


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
    cls=LazyGroup,
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
