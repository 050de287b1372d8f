"""CLI start-up: the lazy command table names every command, in the module that defines it, and a run loads only that.

:data:`imgbuild.cli.app.COMMANDS` maps each top-level command to its module(s); the root group imports a module
only when its command is invoked (start-up: ``imgbuild push`` must not pay for ``build`` or ``sandbox``).
These tests check the table against what the modules register and against the sources (a new module that
adds commands but no row fails here), that a run imports what it needs and nothing else, and the process's
garbage-collector settings (:func:`imgbuild.cli.main.main`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from imgbuild.cli import app as app_module
from imgbuild.cli.app import COMMANDS, app, load_all

CLI_DIR = Path(app_module.__file__).parent
COMMAND_MODULES = {m for modules in COMMANDS.values() for m in modules}


def _registered() -> dict[str, set[str]]:
    """Every top-level name registered on the app once all modules are loaded -> the modules defining it."""
    import typer.main

    load_all()
    out: dict[str, set[str]] = {}
    for info in app.registered_commands:
        if info.callback and not info.hidden:
            name = info.name or typer.main.get_command_name(info.callback.__name__)
            out.setdefault(name, set()).add(info.callback.__module__)
    for group in app.registered_groups:
        sub = group.typer_instance
        callbacks = [c.callback for c in sub.registered_commands]
        if sub.registered_callback:
            callbacks.append(sub.registered_callback.callback)
        out.setdefault(group.name, set()).update(c.__module__ for c in callbacks if c)
    return out


def test_the_table_names_every_registered_command_and_its_modules() -> None:
    registered = _registered()
    assert set(registered) == set(COMMANDS), "COMMANDS and the registered commands differ"
    wrong = {name: sorted(mods - set(COMMANDS[name])) for name, mods in registered.items()
             if mods - set(COMMANDS[name])}
    assert not wrong, f"commands defined in modules their COMMANDS row does not name: {wrong}"


def test_every_module_that_adds_commands_has_a_row() -> None:
    adds = re.compile(r"^@\w*app\.command\(|^\w*app\.add_typer\(", re.MULTILINE)
    modules = {f"imgbuild.cli.{p.stem}" for p in CLI_DIR.glob("*.py") if p.stem != "app" and adds.search(p.read_text())}
    assert modules, "no command module found: the pattern is stale"
    assert modules == COMMAND_MODULES


def _run_and_list_modules(argv: list[str]) -> tuple[str, list[str]]:
    """Run the CLI with ``argv`` in a fresh interpreter; its stdout and the imgbuild.cli modules it imported."""
    code = ("import json, sys\nfrom imgbuild.cli.main import run\nrun(json.loads(sys.argv[1]))\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('imgbuild.cli.'))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True,
                         check=True).stdout
    *text, loaded = out.rstrip("\n").split("\n")
    return "\n".join(text), json.loads(loaded)


def test_a_command_imports_its_own_module_only() -> None:
    _, loaded = _run_and_list_modules(["push", "--help", "-q"])
    assert "imgbuild.cli.transfer" in loaded
    assert not (COMMAND_MODULES - {"imgbuild.cli.transfer"}) & set(loaded), loaded
    _, loaded = _run_and_list_modules(["--version"])
    assert not COMMAND_MODULES & set(loaded), loaded


def test_a_subcommand_of_a_lazy_group_runs() -> None:
    text, loaded = _run_and_list_modules(["images", "find", "--help"])
    assert "Usage: imgbuild images find" in text
    assert {"imgbuild.cli.images", "imgbuild.cli.images_find"} <= set(loaded)
    assert "imgbuild.cli.build" not in loaded


def test_top_level_help_lists_every_command_with_its_help() -> None:
    text, _ = _run_and_list_modules(["--help"])
    listed = dict(re.findall(r"^  (\S+)\s+(\S.*)$", text.split("Commands:", 1)[1], re.MULTILINE))
    assert list(listed) == list(COMMANDS)
    assert listed["push"].startswith("Push a local image") and listed["store"].startswith("Check and tidy")


def test_completion_lists_lazy_commands_and_subcommands() -> None:
    def complete(words: str) -> list[str]:
        env = {"_IMGBUILD_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
        done = subprocess.run([sys.executable, "-m", "imgbuild"], capture_output=True, text=True,
                              env={**os.environ, **env})
        return done.stdout.split()

    assert complete("imgbuild pu") == ["pull", "push"]
    assert set(complete("imgbuild store ")) == {"gc", "verify"}
    assert "--jobs" in complete("imgbuild push --")


def test_an_unknown_command_still_gets_a_did_you_mean_hint() -> None:
    done = subprocess.run([sys.executable, "-m", "imgbuild", "pussh", "x"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == "error: No such command 'pussh'. Did you mean 'push'?\n"


def test_the_cli_process_collects_less_while_starting_and_not_at_exit() -> None:
    code = ("import atexit, gc\nfrom imgbuild.cli.main import main\n"
            "atexit.register(lambda: print(gc.get_threshold()[0], gc.get_freeze_count() > 0))\nmain(['--version'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "100000 True", done
