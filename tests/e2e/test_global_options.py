"""Global options (-q/--quiet, --json, --debug) are accepted before or after the command, in every group."""

from __future__ import annotations

import click
import pytest
import typer.main

from imgbuild.cli import output
from imgbuild.cli.app import app
from imgbuild.cli.main import GLOBAL_FLAGS, hoist_globals, run
from imgbuild.oci.store import open_store
from imgbuild.home import home
from tests.support.oci_images import make_image


def _commands(cmd: click.Command, path: tuple[str, ...] = ()):
    """Every command path of the app, groups included."""
    if path:
        yield path
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(click.Context(cmd)):
            yield from _commands(cmd.get_command(click.Context(cmd), name), (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = list(_commands(ROOT))


@pytest.mark.parametrize("flag", sorted(GLOBAL_FLAGS))
def test_every_command_accepts_every_global_flag_after_it(flag: str, capsys: pytest.CaptureFixture) -> None:
    assert len(COMMANDS) > 20 and ("store", "gc") in COMMANDS and ("registry", "ls") in COMMANDS
    refused = []
    for path in COMMANDS:
        if run([*path, "--help", flag]) != 0:
            refused.append(" ".join(path))
        capsys.readouterr()
    assert refused == []


def test_hoisting_keeps_a_commands_own_flag_values_and_the_end_of_options() -> None:
    assert hoist_globals(ROOT, ["push", "a", "b", "-q", "--debug"]) == ["-q", "--debug", "push", "a", "b"]
    assert hoist_globals(ROOT, ["images", "-q"]) == ["images", "-q"]  # images' own -q: only IDs
    assert hoist_globals(ROOT, ["build", "--json", "-q", "."]) == ["build", "--json", "-q", "."]
    assert hoist_globals(ROOT, ["tag", "--json", "x", "y"]) == ["--json", "tag", "x", "y"]
    assert hoist_globals(ROOT, ["build", "-t", "-q", "."]) == ["build", "-t", "-q", "."]  # a value, not a flag
    assert hoist_globals(ROOT, ["store", "gc", "--debug"]) == ["--debug", "store", "gc"]
    assert hoist_globals(ROOT, ["save", "-o", "f", "x", "--", "-q"]) == ["save", "-o", "f", "x", "--", "-q"]
    assert hoist_globals(ROOT, ["-q", "nosuch", "--json"]) == ["-q", "nosuch", "--json"]


def test_global_flags_after_the_command_take_effect(capsys: pytest.CaptureFixture) -> None:
    make_image(open_store(home()), "tool:2", {"bin/t": b"t"})
    assert run(["tag", "tool:2", "tool:3", "-q", "--debug"]) == 0
    assert output.state.quiet and output.state.debug
    assert run(["store", "verify", "--json"]) == 0  # its own --json
    assert capsys.readouterr().out.lstrip().startswith(("[", "{"))
    assert run(["images", "-q"]) == 0  # images' own -q: one ID per line
    assert len(capsys.readouterr().out.split()) == 1


@pytest.mark.registry
def test_push_with_quiet_after_the_command(registry, capsys: pytest.CaptureFixture) -> None:
    make_image(open_store(home()), "tool:2", {"bin/t": b"t" * 4096})
    assert run(["push", "tool:2", f"{registry.host}/demo/tool:2", "-q"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("sha256:") and output.state.quiet
    assert run(["pull", f"{registry.host}/demo/tool:2", "--debug"]) == 0
    assert output.state.debug and not output.state.quiet
